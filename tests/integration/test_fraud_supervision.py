"""The fraud_stream DAG supervises the real job: a dead driver is alerted on and
resubmitted from its checkpoint; a stop is explicit and sticks."""

from __future__ import annotations

import json
import threading
import time

import pytest

from flowgate.common import stream_supervisor as supervisor
from flowgate.common.heartbeat import read_heartbeat

pytestmark = pytest.mark.integration


@pytest.fixture
def fraud_stream_dag(running_stack, fraud_models_dir, monkeypatch, scheduler_paused):
    """The DAG, with the stream's state in a folder of this test's own (under the stack's
    state dir, where the PAN scan looks)."""
    import uuid

    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FLOWGATE_STREAMS_DIR", str(running_stack.state_dir / "streams" / f"test-{uuid.uuid4().hex[:8]}"))
    dag = DagBag(dag_folder=str(running_stack.root / "dags" / "fraud_stream.py")).get_dag("fraud_stream")
    from flowgate.fraud.stream import fraud_stream_spec

    spec = fraud_stream_spec()
    with scheduler_paused("fraud_stream"):
        yield dag, spec
    supervisor.stop(spec, on_purpose=True)


def _states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_a_killed_driver_is_alerted_on_and_resubmitted_from_its_checkpoint(fraud_stream_dag, webhook_receiver):
    dag, spec = fraud_stream_dag
    _, alerts_file = webhook_receiver
    killed = {}

    def kill_once_streaming():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            heartbeat = read_heartbeat(spec.heartbeat_file)
            if heartbeat and heartbeat.state in ("progress", "idle"):
                killed["pid"] = supervisor.kill_driver(spec)  # kill -9, as a crash would
                return
            time.sleep(1)

    killer = threading.Thread(target=kill_once_streaming, daemon=True)
    killer.start()
    run = dag.test(run_conf={"action": "start"})
    killer.join()

    states = _states(run)
    assert killed.get("pid"), "the stream never sent a heartbeat"
    assert states["ensure_running"] == "success"
    assert states["watch"] == "failed" and states["resubmit"] == "success"
    alerts = [json.loads(line)["payload"]["text"] for line in alerts_file.read_text().splitlines()]
    assert len(alerts) == 1, alerts
    assert "fraud_stream" in alerts[0] and "watch" in alerts[0] and "driver is not running" in alerts[0]
    new_pid = supervisor.driver_pid(spec)
    assert new_pid and new_pid != killed["pid"]
    assert (spec.checkpoint / "offsets").is_dir()  # the resubmitted driver resumes from it


def test_stop_is_explicit_and_the_supervisor_does_not_undo_it(fraud_stream_dag):
    dag, spec = fraud_stream_dag
    supervisor.submit(spec)

    stopped = dag.test(run_conf={"action": "stop"})
    assert _states(stopped)["stop_stream"] == "success"
    assert supervisor.driver_pid(spec) is None and supervisor.stopped_on_purpose(spec)

    supervised = dag.test(run_conf={"action": "supervise"})
    assert _states(supervised)["ensure_running"] == "skipped"
    assert supervisor.driver_pid(spec) is None
