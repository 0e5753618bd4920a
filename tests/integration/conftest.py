"""The real local stack for integration tests.

The session brings the stack up with the project's own code (what `make up` runs) and,
at the end, stops exactly the services it started: a developer's stack that was
already running is reused and left running.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from flowgate.devstack import stack
from flowgate.devstack.config import StackConfig
from flowgate.devstack.process import http_ok


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    return StackConfig.from_env()


@pytest.fixture(scope="session")
def running_stack(stack_config: StackConfig):
    already_running = {s.name for s in stack.status(stack_config) if s.healthy}
    stack.up(stack_config)
    yield stack_config
    for component in reversed(stack.components(stack_config)):
        if component.service.name not in already_running:
            from flowgate.devstack import process

            process.stop(component.service)


@pytest.fixture(scope="session")
def airflow_api(running_stack):
    from flowgate.airflow_api import AirflowApi

    return AirflowApi.login()


@pytest.fixture
def webhook_receiver(tmp_path, monkeypatch):
    """A webhook receiver of our own (the alert sink on a free port), which the
    ``alert_webhook`` connection points at for this test: (url, file of alerts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "alerts.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "flowgate.devstack.alert_sink",
                             "--port", str(port), "--out", str(out)])
    try:
        deadline = time.monotonic() + 30
        while not http_ok(f"http://127.0.0.1:{port}/health"):
            assert time.monotonic() < deadline, "webhook receiver did not start"
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/hooks/oncall"
        monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", json.dumps({"conn_type": "slackwebhook", "password": url}))
        yield url, out
    finally:
        proc.terminate()
        proc.wait(10)
