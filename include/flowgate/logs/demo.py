"""The application-log flow's part of ``make demo``: the stream is started from Airflow, a
minute of twelve services' logs with an error burst goes through the forwarder, and then
the demo shows the burst's alert as on-call got it (through Alertmanager, in the alert
sink), the lake's objects for the hour, and what an OpenSearch query finds.

Everything is the platform's own: the `app_logs_stream` DAG submits the job, the lines go
the way a service's would (forwarder → Kafka), and every result is read back from the
real sink, S3 API and OpenSearch node.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from flowgate.common.waiting import wait_until

Echo = Callable[[str], None]
DAG_ID = "app_logs_stream"
RATE = 200  # lines per second of event time (10M a day is 116)
LINES = 12_000  # a minute of it
BURST_SERVICE = "payments-api"


def _alert_after(sink: Path, offset: int, alertname: str, service: str) -> dict | None:
    if not sink.exists():
        return None
    with sink.open() as f:
        f.seek(offset)
        for record in map(json.loads, f):
            payload = record["payload"]
            text = json.dumps(payload)
            if alertname in text and service in text and "FIRING" in text:
                return payload
    return None


def run(api, cfg, echo: Echo) -> None:
    from flowgate.common import stream_supervisor as supervisor
    from flowgate.common.connections import kafka_bootstrap
    from flowgate.common.heartbeat import read_heartbeat
    from flowgate.devstack.services import alerts_file, s3_client
    from flowgate.logs import lake, search
    from flowgate.logs.forwarder import Forwarder
    from flowgate.logs.generator import ErrorBurst, LoadMix, LogGenerator
    from flowgate.logs.stream_spec import app_logs_stream_spec

    spec = app_logs_stream_spec()
    echo(f"\nStarting the application-log stream from Airflow ({DAG_ID}, action=start) ...")
    api.wait_for_dag(DAG_ID)
    api.unpause(DAG_ID)
    run_id = api.trigger(DAG_ID, conf={"action": "start"})
    wait_until("the stream's first heartbeat", lambda: (hb := read_heartbeat(spec.heartbeat_file))
          and hb.state in ("progress", "idle") and hb, timeout_s=300)

    sink = alerts_file(cfg)
    offset = sink.stat().st_size if sink.exists() else 0
    run_tag = f"demo-{int(time.time())}"
    burst = ErrorBurst(id=f"burst-{run_tag}", service=BURST_SERVICE, start_s=20, duration_s=15, error_ratio=0.9)
    generator = LogGenerator(LoadMix(rate_per_s=RATE, incidents=(burst,)), seed=int(time.time()),
                             start_ns=time.time_ns() - LINES * 1_000_000_000 // RATE)
    sent_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="flowgate-demo-forwarder-") as buffer:
        forwarder = Forwarder(kafka_bootstrap("kafka_default"), buffer)
        forwarder.send_many(generator.lines(LINES))
        forwarder.flush(timeout_s=120)
        stats = forwarder.close()
    echo(f"  {LINES:,} lines from 12 services sent through the forwarder "
         f"({stats.delivered:,} acknowledged by Kafka), with an error burst on {BURST_SERVICE}")

    alert = wait_until("the burst's alert in the sink", lambda: _alert_after(sink, offset, "ErrorBurst", BURST_SERVICE),
                  timeout_s=180)
    attachment = (alert.get("attachments") or [{}])[0]
    echo(f"\nOn-call's message (Alertmanager → Slack webhook → {sink}):")
    echo(f"  {attachment.get('title', '')}")
    for line in attachment.get("text", "").splitlines():
        echo(f"    {line}")

    s3 = s3_client(cfg)
    hour = lake.hour_prefix(sent_at.date(), sent_at.hour)
    keys = lake.list_keys(s3, hour)
    lines_in_hour = sum(len(lake.read_lines(s3, k)) for k in keys)
    echo(f"\nThe lake, s3://{lake.LAKE_BUCKET}/{hour}: {len(keys)} object(s), {lines_in_hour:,} lines, e.g.")
    for key in keys[-3:]:
        echo(f"  {key.rsplit('/', 1)[1]}")

    client = search.SearchClient.from_connection()
    index = f"{search.INDEX_PREFIX}-*"
    query = {"bool": {"filter": [{"term": {"resource.service.name": BURST_SERVICE}},
                                 {"term": {"attributes.incident.id": burst.id}}]}}
    found = wait_until("the burst in OpenSearch", lambda: (client.refresh(index) or True) and client.count(index, query),
                  timeout_s=120)
    echo(f"\nOpenSearch ({index}, service {BURST_SERVICE}, the burst): {found:,} lines, e.g.")
    for doc in client.search(index, query, size=3):
        echo(f"  {doc['severity_text']:<5} {doc['body'][:100]}")

    supervisor.stop(spec, on_purpose=True)  # what the DAG's action=stop does; the run's watch then ends
    result = api.wait_for_run(DAG_ID, run_id, timeout=600)
    echo(f"\nStream stopped on purpose; {DAG_ID} run {result['state']}. "
         "Start it again with the DAG's action=start.")
