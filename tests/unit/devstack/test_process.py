"""Service start/stop with real processes: idempotent, health-checked, and it never
signals a process it did not start."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import psutil
import pytest

from flowgate.devstack import process
from flowgate.devstack.process import Service, ServiceError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_service(tmp_path) -> Service:
    port = _free_port()
    return Service(
        name="web",
        argv=[sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        health=lambda: process.http_ok(f"http://127.0.0.1:{port}/"),
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "logs",
        cwd=tmp_path,
        start_timeout=20,
    )


def test_start_is_idempotent_and_stop_ends_the_process(http_service):
    first = process.start(http_service)
    try:
        assert first.healthy and first.pid
        assert process.start(http_service).pid == first.pid  # reused, not started twice
    finally:
        assert process.stop(http_service) is True
    assert not psutil.pid_exists(first.pid) or psutil.Process(first.pid).status() == psutil.STATUS_ZOMBIE
    assert process.status(http_service).state == "stopped"
    assert process.stop(http_service) is False


def test_stop_ends_the_children_too(tmp_path):
    # A shell that starts a sleeping child, as Airflow's scheduler starts its workers.
    svc = Service(
        name="parent", argv=["bash", "-c", "sleep 300 & wait"], health=lambda: True,
        run_dir=tmp_path / "run", log_dir=tmp_path / "logs", start_timeout=5,
    )
    status = process.start(svc)
    children = []
    for _ in range(50):  # bash forks its child right after starting
        children = psutil.Process(status.pid).children(recursive=True)
        if children:
            break
        time.sleep(0.1)
    assert children
    process.stop(svc)
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive


def test_a_stale_pid_file_is_never_trusted(http_service, tmp_path):
    # A pid file naming some other live process (here: one we spawn) must not make
    # status report it, nor stop kill it.
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        http_service.run_dir.mkdir(parents=True)
        http_service.pid_file.write_text(json.dumps({"pid": bystander.pid, "started": 1.0}))
        assert process.status(http_service).pid is None
        assert process.stop(http_service) is False
        assert bystander.poll() is None, "stop() signalled a process it did not start"
    finally:
        bystander.kill()
        bystander.wait()


def test_a_service_that_dies_on_start_names_its_log(tmp_path):
    svc = Service(
        name="broken", argv=[sys.executable, "-c", "import sys; print('bad config line 3'); sys.exit(3)"],
        health=lambda: False, run_dir=tmp_path / "run", log_dir=tmp_path / "logs", start_timeout=10,
    )
    with pytest.raises(ServiceError) as err:
        process.start(svc)
    message = str(err.value)
    assert "broken exited with code 3" in message
    assert str(svc.log_file) in message and "bad config line 3" in message
    assert not svc.pid_file.exists()


def test_a_service_that_never_gets_healthy_is_stopped_and_reported(tmp_path):
    svc = Service(
        name="silent", argv=["sleep", "60"], health=lambda: False,
        run_dir=tmp_path / "run", log_dir=tmp_path / "logs", start_timeout=1,
    )
    with pytest.raises(ServiceError, match="did not become healthy"):
        process.start(svc)
    assert process.status(svc).state == "stopped"


def test_kill_ends_the_group_at_once_as_a_crash_would(tmp_path):
    # bash ignores SIGTERM while it waits here: only SIGKILL ends it at once.
    svc = Service(
        name="crashy", argv=["bash", "-c", "trap '' TERM; sleep 300 & wait"], health=lambda: True,
        run_dir=tmp_path / "run", log_dir=tmp_path / "logs", start_timeout=5,
    )
    pid = process.start(svc).pid
    assert process.kill(svc) == pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert process.status(svc).pid is None and process.kill(svc) is None
