"""Bring a window of one service's logs back from the lake into a dated index of its own.

ELT's pay-off: the daily indices hold WARN+ for a week; the lake holds every line for a
month. A debug session asks for a service and an event-time window; every line of it (all
severities) is read from the lake and indexed into
``app-logs-rehydrated-<service>-<from>-<to>``, where on-call searches it like any other.

The lake is partitioned by arrival hour, and a line arrives after its event, so the hours
read run from the window's start to ``ARRIVAL_SLACK`` after its end. Re-running the same
window re-indexes the same documents (ids are the lines' digests): no copy.
The index expires with the others' TTL (counted from its creation).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flowgate.logs import lake, search

ARRIVAL_SLACK = timedelta(hours=1)
MAX_WINDOW = timedelta(days=2)  # a debug session's window, not a reindex of the lake
BULK_SIZE = 5_000


@dataclass(frozen=True)
class Rehydration:
    index: str
    service: str
    start: datetime
    end: datetime
    objects_read: int
    lines_read: int
    indexed: int
    rejected: int


def rehydrated_index(service: str, start: datetime, end: datetime) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", service.lower())
    return f"{search.REHYDRATED_PREFIX}-{name}-{start:%Y%m%dt%H%M}-{end:%Y%m%dt%H%M}"


def window_of(start: str | datetime, end: str | datetime) -> tuple[datetime, datetime]:
    """Parse and check a window (ISO 8601; naive means UTC)."""
    parse = lambda v: (v if isinstance(v, datetime) else datetime.fromisoformat(v))  # noqa: E731
    start_at, end_at = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in map(parse, (start, end)))
    if end_at <= start_at:
        raise ValueError(f"the window ends ({end_at}) before it starts ({start_at})")
    if end_at - start_at > MAX_WINDOW:
        raise ValueError(f"a window of {end_at - start_at} is longer than {MAX_WINDOW}: ask for a shorter one")
    return start_at, end_at


def _in_window(line: bytes, service: str, start_ns: int, end_ns: int) -> bool:
    try:
        record = json.loads(line)
        return (record["resource"]["service.name"] == service and start_ns <= record["timestamp"] < end_ns)
    except (ValueError, TypeError, KeyError):
        return False  # malformed lines have no service to match


def rehydrate(s3, client: search.SearchClient, service: str, start: datetime, end: datetime,
              bucket: str = lake.LAKE_BUCKET) -> Rehydration:
    start, end = window_of(start, end)
    index = rehydrated_index(service, start, end)
    client.ensure_template()
    start_ns, end_ns = int(start.timestamp() * 1e9), int(end.timestamp() * 1e9)
    objects = lines_read = indexed = rejected = 0
    batch: list[search.Document] = []

    def flush() -> None:
        nonlocal indexed, rejected
        result = client.bulk(batch)
        indexed, rejected = indexed + result.indexed, rejected + result.rejected
        batch.clear()

    for day, hour in lake.hours_between(start, end + ARRIVAL_SLACK):
        for key in lake.list_keys(s3, lake.hour_prefix(day, hour), bucket):
            if key.endswith(lake.MANIFEST):
                continue
            objects += 1
            for stored in lake.read_lines(s3, key, bucket):
                lines_read += 1
                line = lake.original_line(stored)
                if _in_window(line, service, start_ns, end_ns):
                    doc = search.document(line, index=lambda _day: index, min_severity=0)
                    if doc:
                        batch.append(doc)
                if len(batch) >= BULK_SIZE:
                    flush()
    flush()
    client.refresh(index) if indexed else None
    return Rehydration(index, service, start, end, objects, lines_read, indexed, rejected)
