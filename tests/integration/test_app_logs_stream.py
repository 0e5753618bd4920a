"""The app_logs Spark job on the real stack: generated services → forwarder → Kafka → the
job → every line in the S3 lake (malformed ones too), WARN+ in OpenSearch, and an error
burst's alert through Alertmanager to the Slack sink, then resolved."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from flowgate.common.waiting import wait_until

from flowgate.common import stream_supervisor as supervisor
from flowgate.common.heartbeat import read_heartbeat
from flowgate.devstack import kafka
from flowgate.devstack.services import alerts_file, s3_client
from flowgate.logs import lake, search
from flowgate.logs.forwarder import Forwarder
from flowgate.logs.generator import MALFORMED_KINDS, ErrorBurst, LoadMix, LogGenerator

pytestmark = pytest.mark.integration

RATE = 200  # lines per second of event time (normal errors stay under the burst threshold)
LINES = 12_000  # a minute of event time, produced in a moment


def wait_for(what: str, check, timeout_s: float = 180, every_s: float = 1.0):
    return wait_until(what, check, timeout_s, every_s)


@pytest.fixture
def stream(running_stack, monkeypatch, tmp_path):
    run = uuid.uuid4().hex[:8]
    topic = f"app.logs.test-{run}"
    kafka.ensure_topics(running_stack, topics=(kafka.topic_like("app.logs", topic),))
    monkeypatch.setenv("FLOWGATE_STREAMS_DIR", str(running_stack.state_dir / "streams" / f"test-{run}"))
    from flowgate.logs.stream_spec import app_logs_stream_spec

    spec = app_logs_stream_spec(extra_args=("--topic", topic, "--trigger-s", "0.5", "--alert-env", f"test-{run}"))
    supervisor.submit(spec)
    forwarder = Forwarder(kafka.bootstrap_servers(running_stack), tmp_path / "buffer", topic=topic)
    yield spec, forwarder, run
    forwarder.close()
    supervisor.stop(spec, on_purpose=True)


def lake_lines_since(s3, since: datetime) -> Counter:
    found = Counter()
    for day, hour in lake.hours_between(since - timedelta(hours=1), datetime.now(UTC)):
        for key in lake.list_keys(s3, lake.hour_prefix(day, hour)):
            found.update(lake.original_line(line) for line in lake.read_lines(s3, key))
    return found


def test_lines_reach_the_lake_and_search_and_a_burst_alerts_through_alertmanager(stream, running_stack):
    spec, forwarder, run = stream
    started = datetime.now(UTC)
    sink = alerts_file(running_stack)
    sink_offset = sink.stat().st_size if sink.exists() else 0
    burst = ErrorBurst(id=f"burst-{run}", service="payments-api", start_s=20, duration_s=15, error_ratio=0.9)
    generator = LogGenerator(LoadMix(rate_per_s=RATE, incidents=(burst,), environment=f"test-{run}"), seed=7,
                             start_ns=time.time_ns() - LINES * 1_000_000_000 // RATE)
    produced = generator.lines(LINES)
    bad = [generator.malformed(kind) for kind in MALFORMED_KINDS]
    forwarder.send_many(produced + bad)
    assert forwarder.flush(timeout_s=60), "the forwarder delivered every line to Kafka"

    # Every line in the lake, byte for byte, at least once.
    s3 = s3_client(running_stack)
    wanted = Counter(produced + bad)
    found = wait_for("every line in the lake",
                     lambda: (f := lake_lines_since(s3, started)) and all(f[k] >= 1 for k in wanted) and f,
                     every_s=3)
    duplicates = sum(found[k] - 1 for k in wanted)
    print(f"lake: {len(wanted)} lines, {duplicates} duplicates")

    # The burst's alert reaches the Slack sink through Alertmanager.
    def burst_message():
        if not sink.exists():
            return None
        with sink.open() as f:
            f.seek(sink_offset)
            for record in map(json.loads, f):
                text = json.dumps(record["payload"])
                if "ErrorBurst" in text and "payments-api" in text and "FIRING" in text and f"test-{run}" in text:
                    return record["payload"]
        return None

    message = wait_for("the ErrorBurst alert in the sink", burst_message, timeout_s=120)
    text = json.dumps(message)
    assert "runbook" in text.lower() and "app_logs_stream.md#error-burst" in text
    assert "_search?" in text, "the alert links its OpenSearch query"

    # WARN+ lines of the burst are searchable.
    client = search.SearchClient(spec.job_args[spec.job_args.index("--opensearch-url") + 1])
    index = f"{search.INDEX_PREFIX}-*"
    # Indexed behind the lake (the indexer's thread): wait for the burst's last document.
    errors_in_burst = sum(1 for line in produced if burst.id.encode() in line)
    hits = wait_for("the burst in OpenSearch", lambda: (client.refresh(index) or True) and (n := client.count(
        index, {"term": {"attributes.incident.id": burst.id}})) >= errors_in_burst and n)
    assert hits == errors_in_burst

    heartbeat = wait_for("the job's counters", lambda: (hb := read_heartbeat(spec.heartbeat_file)) and
                         hb.app and hb.app.get("lines", 0) >= len(wanted) and hb)
    assert heartbeat.app["malformed"] >= 3  # not JSON, missing fields, invalid UTF-8 (the huge body parses)
    assert heartbeat.app["alerts_started"] >= 1
    assert heartbeat.app["late_lines"] == 0, "a minute of lines produced at once: none of them is late"
