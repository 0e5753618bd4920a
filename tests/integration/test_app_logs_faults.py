"""The app_logs stream's fault drills on the real stack (issue 12, "Faults"): malformed
lines, OpenSearch stopped, Alertmanager stopped, and the driver killed with kill -9 in the
middle of an incident burst, then resubmitted as the DAG's ``resubmit`` does.

One stream for the module (starting Spark is the slow part): its own topic and state
folder, fed by a forwarder. Each test plays its own services and environment, so its
lines, documents and alerts are its own: the bursting service is renamed per test
(``payments-<run>``), because Alertmanager rightly merges an alert with the same labels
as one another test left firing. Event time only moves forward through the module (see
:meth:`Drill.generator`), so no test's lines are late for the rule engine.

Kafka stopped is the forwarder's fault (tests/integration/test_logs_forwarder.py).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from flowgate.common.waiting import wait_until

from flowgate.common import stream_supervisor as supervisor
from flowgate.common.heartbeat import read_heartbeat
from flowgate.devstack import alertmanager, kafka, opensearch, process, stack
from flowgate.devstack.services import alerts_file, s3_client
from flowgate.logs import TOPIC, lake, search
from flowgate.logs.forwarder import Forwarder
from flowgate.logs.generator import DEFAULT_SERVICES, MALFORMED_KINDS, ErrorBurst, LoadMix, LogGenerator
from flowgate.logs.record import encode

pytestmark = pytest.mark.integration

SERVICES = ("kafka", "s3", "alert-sink", "alertmanager", "opensearch")
# Lines a second of event time. ErrorBurst fires at 50 errors a minute from one service:
# at 100 lines/s the busiest service (api-gateway) writes ~27 a minute, so only an
# incident fires it. Faster, the normal error rate would fire it for every big service.
RATE = 100.0


def wait_for(what: str, check, timeout_s: float = 180, every_s: float = 0.5):
    return wait_until(what, check, timeout_s, every_s)


@dataclass
class Drill:
    """The module's stream and what the tests read it through."""

    cfg: object
    spec: supervisor.StreamSpec
    forwarder: Forwarder
    since: datetime
    s3: object = None
    search: search.SearchClient = None
    event_clock_ns: int = 0  # the newest event time produced so far
    _lake: dict[str, list[bytes]] = field(default_factory=dict)  # key -> original lines (objects are immutable)

    # ------------------------------------------------------------------ producing

    def generator(self, run: str, incidents=(), rate: float = RATE, services: dict[str, str] | None = None):
        """Lines of services of this test's own (``services``: default name -> this test's
        name), in environment ``test-<run>``, starting after every line produced so far."""
        renamed = services or {}
        mix = LoadMix(rate_per_s=rate, incidents=tuple(incidents), environment=f"test-{run}",
                      services=tuple(replace(s, name=renamed.get(s.name, s.name)) for s in DEFAULT_SERVICES))
        start = max(time.time_ns(), self.event_clock_ns + 1_000_000_000)
        return LogGenerator(mix, seed=int(run, 16) & 0xFFFF, start_ns=start)

    def send(self, lines: list[bytes], generator: LogGenerator | None = None) -> None:
        self.forwarder.send_many(lines)
        assert self.forwarder.flush(timeout_s=120), "the forwarder delivered every line to Kafka"
        if generator is not None:
            next_ns = generator.start_ns + int(generator.seq * 1e9 / generator.mix.rate_per_s)
            self.event_clock_ns = max(self.event_clock_ns, next_ns)

    # ------------------------------------------------------------------ reading

    def heartbeat(self):
        return read_heartbeat(self.spec.heartbeat_file)

    def app(self) -> dict:
        hb = self.heartbeat()
        return hb.app if hb and hb.app else {}

    def current_app(self) -> dict:
        """The counters of the running driver (its heartbeat, not one an earlier driver left)."""
        started = supervisor.driver_started_at(self.spec)
        return wait_for("a heartbeat of the running driver",
                        lambda: (hb := self.heartbeat()) and hb.written_at >= started and hb.app and hb.app)

    def lake_lines(self) -> Counter:
        """Every line in the lake written since the module started, as received."""
        for day, hour in lake.hours_between(self.since - timedelta(hours=1), datetime.now(UTC)):
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=lake.LAKE_BUCKET, Prefix=lake.hour_prefix(day, hour)):
                for obj in page.get("Contents", []):
                    if obj["Key"] not in self._lake and obj["LastModified"] >= self.since - timedelta(seconds=5):
                        self._lake[obj["Key"]] = [lake.original_line(line)
                                                  for line in lake.read_lines(self.s3, obj["Key"])]
        found = Counter()
        for lines in self._lake.values():
            found.update(lines)
        return found

    def wait_in_lake(self, wanted: list[bytes], timeout_s: float = 180) -> Counter:
        expected = Counter(wanted)
        return wait_for(f"{len(expected)} lines in the lake",
                        lambda: (found := self.lake_lines()) and all(found[k] >= 1 for k in expected) and found,
                        timeout_s=timeout_s, every_s=2)

    def indexed(self, env: str) -> int:
        index = f"{search.INDEX_PREFIX}-*"
        self.search.refresh(index)
        return self.search.count(index, {"term": {"resource.deployment.environment": env}})

    def sink_messages(self, offset: int, title: str) -> list[tuple[float, dict]]:
        """(time read, attachment) of the Slack messages after ``offset`` whose title holds ``title``."""
        path = alerts_file(self.cfg)
        if not path.exists():
            return []
        with path.open() as f:
            f.seek(offset)
            records = [json.loads(line) for line in f if line.strip()]
        return [(time.monotonic(), a) for r in records for a in r["payload"].get("attachments", [])
                if title in a.get("title", "")]

    def sink_offset(self) -> int:
        path = alerts_file(self.cfg)
        return path.stat().st_size if path.exists() else 0


@pytest.fixture(scope="module")
def drill(stack_config):
    with stack.running(stack_config, set(SERVICES)) as cfg, pytest.MonkeyPatch.context() as mp:
        run = uuid.uuid4().hex[:8]
        topic = kafka.topic_like(TOPIC, f"{TOPIC}.faults-{run}")
        kafka.ensure_topics(cfg, [topic])
        mp.setenv("FLOWGATE_STREAMS_DIR", str(cfg.state_dir / "streams" / f"faults-{run}"))
        from flowgate.logs.stream_spec import app_logs_stream_spec

        spec = app_logs_stream_spec(extra_args=("--topic", topic.name, "--trigger-s", "0.5"))
        since = datetime.now(UTC)
        supervisor.submit(spec)
        forwarder = Forwarder(kafka.bootstrap_servers(cfg), spec.state_dir / "forwarder-buffer", topic=topic.name)
        d = Drill(cfg, spec, forwarder, since, s3_client(cfg), search.SearchClient(opensearch.opensearch_url(cfg)))
        try:
            yield d
        finally:
            forwarder.close()
            supervisor.stop(spec, on_purpose=True)
            # A test that failed half-way must not leave a service stopped for the next module.
            process.start(opensearch.opensearch_service(cfg))
            process.start(alertmanager.alertmanager_service(cfg))


def uid_of(line: bytes) -> str | None:
    try:
        return json.loads(line)["attributes"]["log.record.uid"]
    except (ValueError, KeyError, TypeError):
        return None


def warn_and_above(lines: list[bytes]) -> int:
    return sum(1 for line in lines if json.loads(line)["severity_number"] >= search.MIN_SEVERITY)


# ---------------------------------------------------------------------------- malformed


def test_malformed_lines_are_kept_raw_counted_and_never_stop_the_job(drill):
    run = uuid.uuid4().hex[:8]
    before = drill.current_app()
    pid, job_pid = supervisor.driver_pid(drill.spec), drill.heartbeat().driver_pid
    gen = drill.generator(run)
    bad = {kind: gen.malformed(kind) for kind in MALFORMED_KINDS}
    # More lines that are no log record, beside the generator's: JSON that is not an object,
    # a record without its severity, and a plain line that looks like the lake's envelope.
    not_records = [b'["an", "array"]', b"null",
                   encode({"timestamp": gen.start_ns, "body": "no severity",
                           "resource": {"service.name": "auth", "deployment.environment": f"test-{run}"},
                           "attributes": {"log.record.uid": f"nosev-{run}"}}),
                   b'{"flowgate_malformed":"a service wrote this","value_base64":"bm90IG1l"}']
    lines = gen.lines(1500) + list(bad.values()) + not_records
    lines += gen.lines(1500)  # and normal lines after them
    drill.send(lines, gen)

    found = drill.wait_in_lake(lines)
    for kind, line in bad.items():
        assert found[line] >= 1, f"{kind} kept byte for byte"
    assert all(found[line] >= 1 for line in not_records)

    # Counted: every line that is not a log record (the 1 MiB body is one, and parses).
    expected_malformed = 3 + len(not_records)  # not_json, missing_fields, invalid_utf8 + ours
    after = wait_for("the batch's counters", lambda: (a := drill.app()).get("lines", 0) >= before["lines"] + len(lines)
                     and a)
    assert after["lines"] - before["lines"] == len(lines)
    assert after["malformed"] - before["malformed"] == expected_malformed
    assert after["enveloped"] - before["enveloped"] >= 1  # the invalid UTF-8 line

    # The job carried on: same driver, still streaming, and the 1 MiB ERROR line is searchable (cut).
    hb = drill.heartbeat()
    assert supervisor.driver_pid(drill.spec) == pid and hb.driver_pid == job_pid and hb.state != "terminated"
    index = f"{search.INDEX_PREFIX}-*"
    huge = wait_for("the 1 MiB line in OpenSearch", lambda: (drill.search.refresh(index) or True) and drill.search.search(
        index, {"term": {"attributes.log.record.uid": uid_of(bad["huge_body"])}}))
    assert huge[0]["body_truncated"] is True and len(huge[0]["body"]) == search.MAX_BODY_CHARS


# ---------------------------------------------------------------------------- OpenSearch stopped


def test_opensearch_stopped_leaves_the_lake_alone_and_indexing_catches_up(drill):
    run = uuid.uuid4().hex[:8]
    service = opensearch.opensearch_service(drill.cfg)
    assert process.stop(service), "OpenSearch was running"
    try:
        with pytest.raises(search.SearchUnavailable):
            drill.search.count(f"{search.INDEX_PREFIX}-*")
        gen = drill.generator(run)
        lines = gen.lines(6000)  # a minute of event time
        drill.send(lines, gen)

        # The lake takes every line while OpenSearch is down; the job keeps what it could not index.
        drill.wait_in_lake(lines)
        pending = wait_for("lake objects pending indexing", lambda: drill.app().get("index_pending_batches", 0))
        print(f"\nOpenSearch down: every line in the lake, {pending} lake object(s) pending indexing")
    finally:
        process.start(service)
    back = time.monotonic()

    # No more lines after it is back: the catch-up must not wait for traffic.
    env, expected = f"test-{run}", warn_and_above(lines)
    wait_for("every WARN+ line of the outage indexed",
             lambda: drill.app().get("index_pending_batches") == 0 and drill.indexed(env) == expected, timeout_s=120)
    caught_up = time.monotonic() - back
    print(f"OpenSearch back: {expected} WARN+ lines of the outage indexed, pending 0, {caught_up:.1f} s after it answered")
    assert drill.indexed(env) == expected  # and not more: one document per line


# ---------------------------------------------------------------------------- Alertmanager stopped


def test_alertmanager_stopped_alerts_fired_and_resolved_meanwhile_are_delivered_once_it_is_back(drill):
    run = uuid.uuid4().hex[:8]
    svc = f"ledger-{run}"
    burst = ErrorBurst(id=f"burst-{run}", service=svc, start_s=5, duration_s=10, error_ratio=0.9)
    service = alertmanager.alertmanager_service(drill.cfg)
    before = drill.current_app()
    offset = drill.sink_offset()
    title = f"ErrorBurst on {svc} "
    assert process.stop(service), "Alertmanager was running"
    try:
        gen = drill.generator(run, incidents=(burst,), rate=2 * RATE, services={"ledger": svc})
        # The burst, then 80 s of event time without it: the 60 s window clears and it
        # resolves. Sent 5 s of event time at a time, each processed before the next, as
        # services write (a batch evaluates the rules once, at its newest event time).
        lines = []
        for _ in range(int(burst.end_s + 80) // 5):
            chunk = gen.lines(int(2 * RATE * 5))
            lines += chunk
            drill.send(chunk, gen)
            wait_for("the chunk processed", lambda n=len(lines): drill.app().get("lines", 0) >= before["lines"] + n)
        wait_for("the burst fired and resolved while Alertmanager is down",
                 lambda: (a := drill.app()).get("lines", 0) >= before["lines"] + len(lines)
                 and a["alerts_resolved"] > before["alerts_resolved"] and a["alerts_pending"] > 0 and a)
        print(f"\nAlertmanager down: {drill.app()['alerts_pending']} alert(s) pending in the job")
    finally:
        process.start(service)
    back = time.monotonic()

    # No more lines: what is pending goes out without waiting for traffic. On-call hears
    # FIRING first, then RESOLVED (a resolution alone would be dropped by Alertmanager:
    # it never notifies a group that never fired).
    firing = wait_for("FIRING in the sink", lambda: [m for m in drill.sink_messages(offset, title)
                                                     if m[1]["title"].startswith("[FIRING")], timeout_s=90)
    resolved = wait_for("RESOLVED in the sink", lambda: [m for m in drill.sink_messages(offset, title)
                                                         if m[1]["title"].startswith("[RESOLVED")], timeout_s=90)
    print(f"Alertmanager back: FIRING after {firing[0][0] - back:.1f} s, RESOLVED after {resolved[0][0] - back:.1f} s")
    titles = [m[1]["title"] for m in drill.sink_messages(offset, title)]
    assert titles.index(firing[0][1]["title"]) < titles.index(resolved[0][1]["title"]), titles
    assert "app_logs_stream.md#error-burst" in json.dumps(firing[0][1])
    wait_for("nothing left pending", lambda: drill.app().get("alerts_pending") == 0, timeout_s=60)


# ---------------------------------------------------------------------------- kill -9 mid-burst


def _batch_ids(folder) -> list[int]:
    return sorted(int(p.name) for p in folder.glob("[0-9]*")) if folder.is_dir() else []


def _alert_in_alertmanager(cfg, svc: str) -> bool:
    response = httpx.get(f"{alertmanager.alertmanager_url(cfg)}/api/v2/alerts",
                         params={"filter": [f'service="{svc}"', 'alertname="ErrorBurst"']}, timeout=5)
    response.raise_for_status()
    return bool(response.json())


def test_driver_killed_mid_burst_is_resubmitted_the_alert_arrives_and_the_lake_has_every_line(drill):
    run = uuid.uuid4().hex[:8]
    svc = f"payments-{run}"
    burst = ErrorBurst(id=f"burst-{run}", service=svc, start_s=10, duration_s=15, error_ratio=0.9)
    offset = drill.sink_offset()
    title = f"ErrorBurst on {svc} "
    drill.current_app()
    gen = drill.generator(run, incidents=(burst,), rate=1.5 * RATE, services={"payments-api": svc})
    calm = gen.lines(int(1.5 * RATE * burst.start_s))  # 10 s of event time before the burst
    drill.send(calm, gen)
    drill.wait_in_lake(calm)
    offsets, commits = drill.spec.checkpoint / "offsets", drill.spec.checkpoint / "commits"
    done = wait_for("the calm lines' batches committed",
                    lambda: (c := _batch_ids(commits)) and c[-1] == _batch_ids(offsets)[-1] and c[-1] + 1) - 1

    # The burst goes out while a thread waits for the first batch that reads it and kills
    # the driver in its middle (Spark has logged the batch's offsets, not its commit).
    killed: dict = {}

    def kill_mid_batch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            started = [b for b in _batch_ids(offsets) if b > done]
            if started and started[-1] not in _batch_ids(commits):
                killed.update(batch=started[-1], pid=supervisor.kill_driver(drill.spec),
                              alert_before=_alert_in_alertmanager(drill.cfg, svc))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_mid_batch, daemon=True)
    killer.start()
    rest = gen.lines(int(1.5 * RATE * (burst.duration_s + 10)))  # the burst and 10 s after it
    drill.send(rest, gen)
    killer.join()
    assert killed.get("pid"), "no batch of the burst was caught in flight"
    assert supervisor.driver_pid(drill.spec) is None
    assert not killed["alert_before"], "the driver died before its alert reached Alertmanager"

    # What the DAG's resubmit does: stop what is left, submit again from the checkpoint.
    supervisor.stop(drill.spec, on_purpose=False)
    resubmitted = time.monotonic()
    new_pid = supervisor.submit(drill.spec)
    assert new_pid != killed["pid"]

    message = wait_for("the burst's alert in the sink", lambda: [m for m in drill.sink_messages(offset, title)
                                                               if m[1]["title"].startswith("[FIRING")], timeout_s=240)
    produced = calm + rest
    found = drill.wait_in_lake(produced)
    duplicates = sum(found[line] - 1 for line in produced)
    print(f"\nkill -9 in batch {killed['batch']}: alert in the sink {message[0][0] - resubmitted:.1f} s after the "
          f"resubmit; lake: {len(produced)} lines, every one present, {duplicates} duplicate(s)")
    assert "app_logs_stream.md#error-burst" in json.dumps(message[0][1])
    assert _batch_ids(commits)[-1] >= killed["batch"]  # the killed batch was replayed and committed
