"""The real local stack for integration tests.

The session brings the stack up with the project's own code (what `make up` runs) and,
at the end, stops exactly the services it started: a developer's stack that was
already running is reused and left running.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flowgate.devstack import stack
from flowgate.devstack.config import StackConfig


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


class _WebhookReceiver(BaseHTTPRequestHandler):
    """Appends each POSTed body to the server's file, answering "ok" as Slack does."""

    def do_POST(self):  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.out.open("a") as f:
            f.write(json.dumps({"path": self.path, "payload": json.loads(body)}) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_receiver(tmp_path, monkeypatch):
    """A webhook receiver of the test's own, which the ``alert_webhook`` connection points
    at for this test: (url, file of alerts). Bound to port 0 in this process, so it is
    listening before the test starts and no other process can hold its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebhookReceiver)
    server.out = tmp_path / "alerts.jsonl"
    server.out.touch()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/oncall"
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", json.dumps({"conn_type": "slackwebhook", "password": url}))
    try:
        yield url, server.out
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def paused_in_scheduler(api, dag_id: str):
    """Keep the running scheduler off ``dag_id`` while a test drives it with dag.test().

    dag.test() writes a real DagRun into the shared metadata DB; were the DAG unpaused
    (a developer's stack after `make demo`), the scheduler would run the same tasks too.
    """
    was_paused = api.wait_for_dag(dag_id)["is_paused"]
    api.pause(dag_id)
    try:
        yield
    finally:
        if not was_paused:
            api.unpause(dag_id)


@pytest.fixture(scope="session")
def scheduler_paused(airflow_api):
    """``with scheduler_paused(dag_id): ...`` — see paused_in_scheduler."""
    return lambda dag_id: paused_in_scheduler(airflow_api, dag_id)


@pytest.fixture
def fake_snowflake(monkeypatch):
    """``fake_snowflake(conn_id, database, schema)``: a Snowflake Airflow connection answered
    by fakesnow (the one boundary that cannot run here), for this test; returns a function
    that opens it through the Snowflake provider."""
    import fakesnow

    def connection(conn_id: str, database: str, schema: str):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({
            "conn_type": "snowflake", "login": "flowgate", "password": "not-a-real-secret", "schema": schema,
            "extra": {"account": "flowgate-test", "database": database, "warehouse": f"{database}_WH"}}))
        from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

        return lambda: SnowflakeHook(snowflake_conn_id=conn_id).get_conn()

    with fakesnow.patch(create_database_on_connect=True, create_schema_on_connect=True):
        yield connection


@pytest.fixture(scope="session")
def fraud_models_dir(running_stack):
    """A freshly trained fraud model, promoted in the stack's model registry — what
    `flowgate fraud train` does, so the stream and the DAGs find it where they look."""
    from flowgate.fraud.model import models_dir, promote, save_model, train_model

    directory = models_dir()
    model, _ = train_model(transactions=60_000, seed=5)
    promote(save_model(model, directory), directory)
    return directory
