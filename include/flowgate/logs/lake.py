"""The raw log lake: lines as received, gzip'd, under ``raw/app_logs/dt=YYYY-MM-DD/hour=HH/``.

ELT: nothing is parsed or dropped on the way in. A line that is valid UTF-8 without a
newline is stored byte for byte; any other (invalid UTF-8, a raw newline inside, or one that
starts like an envelope) is stored
as an *envelope* line, ``{"flowgate_malformed": reason, "kafka": "p-o", "value_base64": ...}``,
which keeps its exact bytes and still leaves every object one valid line per record.

Partitioned by arrival time (the Kafka record timestamp, set when the forwarder produced
the line): every line has one, malformed or not, and an hour stops growing once it is
past, which is what lets the hourly compaction close it. Event-time reads (rehydrate)
read the hours around their window and filter.

Object names come from the micro-batch: ``q<query>-b<batch>-p<partition>-o<first offset>.jsonl.gz``.
Spark replays a failed batch with the same id and the same offsets, so a replay rewrites
the same objects rather than adding copies. ``<query>`` is the streaming query's id, which
its checkpoint keeps (:func:`query_tag`): a new checkpoint, or another stream writing to
the bucket, starts again at batch 0 and, on a new topic, at offset 0, and without it would
overwrite the objects an earlier one wrote. Each object is one PUT: a reader outside Spark
sees a whole object or none (no partial files).

The hourly compaction merges an hour's batch objects into objects of about
``COMPACT_TARGET_BYTES`` each: it writes them, checks their line count against the inputs,
records a manifest, and only then deletes the inputs (a crash in between is finished by the
next run, from the manifest: no line lost, none doubled once it completes).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

LAKE_BUCKET = "flowgate-lake"
PREFIX = "raw/app_logs"
COMPACT_TARGET_BYTES = 128 * 1024 * 1024  # compressed bytes per compacted object
MANIFEST = "_compaction.json"

_BATCH_OBJECT = re.compile(r"/(?:q[0-9a-f]+-)?b(?P<batch>\d+)-p(?P<partition>\d+)-o(?P<offset>\d+)\.jsonl\.gz$")
_HOUR_PREFIX = re.compile(rf"^{PREFIX}/dt=(?P<day>\d{{4}}-\d{{2}}-\d{{2}})/hour=(?P<hour>\d{{2}})/")


@dataclass(frozen=True)
class LakeObject:
    key: str
    body: bytes  # gzip'd lines
    lines: int
    malformed: int  # lines stored as envelopes


def hour_prefix(day: date, hour: int) -> str:
    return f"{PREFIX}/dt={day.isoformat()}/hour={hour:02d}/"


ENVELOPE_PREFIX = b'{"flowgate_malformed"'


def stored_line(value: bytes, partition: int, offset: int) -> tuple[bytes, bool]:
    """(the line as stored, whether it had to be wrapped in an envelope)."""
    reason = None
    if b"\n" in value or b"\r" in value:
        reason = "raw_newline"
    elif value.startswith(ENVELOPE_PREFIX):
        # A line that looks like an envelope is one, or original_line would unwrap it.
        reason = "looks_like_envelope"
    else:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            reason = "invalid_utf8"
    if reason is None:
        return value, False
    envelope = {"flowgate_malformed": reason, "kafka": f"{partition}-{offset}",
                "value_base64": base64.b64encode(value).decode()}
    return json.dumps(envelope, separators=(",", ":")).encode(), True


def original_line(stored: bytes) -> bytes:
    """The bytes as received, from a stored line (the inverse of :func:`stored_line`)."""
    if stored.startswith(ENVELOPE_PREFIX):
        return base64.b64decode(json.loads(stored)["value_base64"])
    return stored


def _lines_of(values: list[bytes], offsets: list[int], partition: int, rows: list[int]) -> tuple[bytes, int]:
    """(the rows' lines as stored, newline-terminated; how many went in an envelope).

    The usual case, every line clean, is checked on the joined bytes at once (a newline
    count, one scan for CR, one for a line starting like an envelope, one UTF-8 check: the
    pieces are valid UTF-8 exactly when the whole is, a newline being ASCII), not line by
    line in Python: the same verdicts as :func:`stored_line`'s."""
    joined = b"\n".join([values[i] for i in rows])
    looks_like_envelope = joined.startswith(ENVELOPE_PREFIX) or b"\n" + ENVELOPE_PREFIX in joined
    if joined.count(b"\n") == len(rows) - 1 and b"\r" not in joined and not looks_like_envelope:
        try:
            if not joined.isascii():
                joined.decode("utf-8")
            return joined + b"\n", 0
        except UnicodeDecodeError:
            pass
    stored = [stored_line(values[i], partition, offsets[i]) for i in rows]
    return b"".join(line + b"\n" for line, _ in stored), sum(wrapped for _, wrapped in stored)


def query_tag(query_id: str) -> str:
    """A streaming query's id, short, for object names (the id lives in the query's
    checkpoint: the same across restarts and replays, a new one for a new checkpoint)."""
    return query_id.replace("-", "")[:8]


def batch_objects(batch_id: int, partitions: list[int], offsets: list[int], timestamps_ms: list[int],
                  values: list[bytes], level: int = 6, query: str = "") -> list[LakeObject]:
    """One object per Kafka partition and arrival hour of a micro-batch, lines in offset order.

    The objects are compressed on threads, one each (zlib lets go of the GIL): a batch's
    partitions use the cores there are instead of one."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (partition, ts) in enumerate(zip(partitions, timestamps_ms, strict=True)):
        groups.setdefault((partition, ts // 3_600_000), []).append(i)

    def build(item) -> LakeObject:
        (partition, hour), rows = item
        rows.sort(key=offsets.__getitem__)
        arrived = datetime.fromtimestamp(hour * 3600, UTC)
        lines, wrapped = _lines_of(values, offsets, partition, rows)
        return LakeObject(f"{hour_prefix(arrived.date(), arrived.hour)}{f'q{query}-' if query else ''}"
                          f"b{batch_id:012d}-p{partition}"
                          f"-o{offsets[rows[0]]}.jsonl.gz", gzip.compress(lines, compresslevel=level, mtime=0),
                          len(rows), wrapped)

    items = sorted(groups.items())
    if len(items) <= 1:
        return [build(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(build, items))


def put_objects(s3, objects: Iterable[LakeObject], bucket: str = LAKE_BUCKET) -> int:
    """PUT the objects, a few at a time (each PUT waits on the network and the server)."""
    def put(obj: LakeObject) -> None:
        s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.body, ContentType="application/x-ndjson",
                      ContentEncoding="gzip")

    objects = list(objects)
    with ThreadPoolExecutor(max_workers=max(1, min(len(objects), 4))) as pool:
        for _ in pool.map(put, objects):  # re-raises the first failure: the batch fails, Spark replays it
            pass
    return len(objects)


def list_keys(s3, prefix: str, bucket: str = LAKE_BUCKET) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


def read_lines(s3, key: str, bucket: str = LAKE_BUCKET) -> list[bytes]:
    body = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return body.split(b"\n")[:-1]


def hours_between(start: datetime, end: datetime) -> Iterator[tuple[date, int]]:
    """The arrival hours (day, hour) from ``start``'s hour to ``end``'s, both included."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour <= end:
        yield hour.date(), hour.hour
        hour += timedelta(hours=1)


# --------------------------------------------------------------------------- compaction


@dataclass(frozen=True)
class Compaction:
    prefix: str
    inputs: int
    outputs: int
    lines: int


def compact_hour(s3, day: date, hour: int, bucket: str = LAKE_BUCKET,
                 target_bytes: int = COMPACT_TARGET_BYTES) -> Compaction:
    """Merge the hour's batch objects into few large ones; no line lost, none doubled.

    A gzip file may be several gzip members end to end (every gzip reader, Spark's
    included, reads them all), so merging is concatenating the inputs' bytes: nothing is
    recompressed, and the hour streams through a temp file instead of memory.
    """
    prefix = hour_prefix(day, hour)
    _finish_interrupted(s3, prefix, bucket)
    inputs = [k for k in list_keys(s3, prefix, bucket) if _BATCH_OBJECT.search(k)]
    if len(inputs) <= 1:
        return Compaction(prefix, len(inputs), 0, 0)
    run = hashlib.sha256("\n".join(inputs).encode()).hexdigest()[:12]
    outputs: list[str] = []
    lines_in = lines_out = 0
    with tempfile.TemporaryDirectory(prefix="flowgate-compact-") as tmp:
        chunk = None
        for key in inputs:
            if chunk is None:
                chunk = open(Path(tmp) / f"{len(outputs):03d}", "wb")  # noqa: SIM115 - closed in _put_compacted
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            lines_in += gzip.decompress(data).count(b"\n")
            chunk.write(data)
            if chunk.tell() >= target_bytes:
                outputs.append(_put_compacted(s3, bucket, prefix, run, len(outputs), chunk))
                lines_out, chunk = lines_out + _lines_in_file(Path(chunk.name)), None
        if chunk is not None:
            outputs.append(_put_compacted(s3, bucket, prefix, run, len(outputs), chunk))
            lines_out += _lines_in_file(Path(chunk.name))
    if lines_out != lines_in:  # never delete an input whose lines are not all in an output
        raise RuntimeError(f"compaction of {prefix}: {lines_in} lines read, {lines_out} written; inputs kept")
    manifest = {"inputs": inputs, "outputs": outputs, "lines": lines_in}
    s3.put_object(Bucket=bucket, Key=prefix + MANIFEST, Body=json.dumps(manifest).encode())
    _finish_interrupted(s3, prefix, bucket)
    return Compaction(prefix, len(inputs), len(outputs), lines_in)


def _lines_in_file(path: Path) -> int:
    with gzip.open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def _put_compacted(s3, bucket: str, prefix: str, run: str, index: int, chunk) -> str:
    chunk.close()
    key = f"{prefix}compacted-{run}-{index:03d}.jsonl.gz"
    s3.upload_file(chunk.name, bucket, key,
                   ExtraArgs={"ContentType": "application/x-ndjson", "ContentEncoding": "gzip"})
    stored = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    if stored != Path(chunk.name).stat().st_size:
        raise RuntimeError(f"compaction of {prefix}: {key} holds {stored} bytes, "
                           f"{Path(chunk.name).stat().st_size} were written; inputs kept")
    return key


def _finish_interrupted(s3, prefix: str, bucket: str) -> None:
    """Delete the inputs a manifest names (its outputs are complete), then the manifest."""
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix + MANIFEST)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return
    delete_keys(s3, manifest["inputs"], bucket)
    s3.delete_object(Bucket=bucket, Key=prefix + MANIFEST)


def delete_keys(s3, keys: list[str], bucket: str = LAKE_BUCKET) -> None:
    """Delete ``keys``, a thousand a request (the S3 API's most)."""
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]],
                                                 "Quiet": True})


def closed_hours(s3, now: datetime, lateness: timedelta, bucket: str = LAKE_BUCKET) -> list[tuple[date, int]]:
    """Hours in the lake that no batch writes to any more (ended more than ``lateness`` ago)."""
    hours = set()
    for key in list_keys(s3, PREFIX + "/", bucket):
        match = _HOUR_PREFIX.match(key)
        if match:
            day, hour = date.fromisoformat(match["day"]), int(match["hour"])
            end = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(hours=1)
            if end + lateness <= now:
                hours.add((day, hour))
    return sorted(hours)


# --------------------------------------------------------------------------- retention


def lifecycle_rule(days: int) -> dict:
    """The bucket's lifecycle configuration: raw logs expire after ``days`` (MinIO enforces it)."""
    return {"Rules": [{"ID": "app-logs-raw-ttl", "Status": "Enabled", "Filter": {"Prefix": PREFIX + "/"},
                       "Expiration": {"Days": days}}]}


def apply_lifecycle(s3, days: int, bucket: str = LAKE_BUCKET) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle_rule(days))


def expired_keys(s3, days: int, now: Callable[[], datetime], bucket: str = LAKE_BUCKET) -> list[str]:
    """Objects whose arrival day is older than ``days`` before ``now()``: what lifecycle would expire."""
    cutoff = now().astimezone(UTC).date() - timedelta(days=days)
    return [k for k in list_keys(s3, PREFIX + "/", bucket)
            if (m := _HOUR_PREFIX.match(k)) and date.fromisoformat(m["day"]) < cutoff]


def delete_expired(s3, days: int, now: Callable[[], datetime], bucket: str = LAKE_BUCKET) -> list[str]:
    """The retention janitor: moto stores lifecycle rules but never expires anything."""
    keys = expired_keys(s3, days, now, bucket)
    delete_keys(s3, keys, bucket)
    return keys
