"""start -> start again -> stop -> start: idempotent, and stop leaves nothing behind."""

from __future__ import annotations

import psutil
import pytest

from flowgate.devstack import process, stack
from flowgate.devstack.process import tcp_open

pytestmark = pytest.mark.integration


def _stack_processes(cfg) -> list[psutil.Process]:
    """Every process on the machine whose command line points into this stack's state."""
    marker = str(cfg.state_dir)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _listening_ports(cfg) -> dict[str, bool]:
    ports = cfg.ports
    return {name: tcp_open(getattr(ports, name)) for name in ("postgres", "kafka", "s3", "sftp", "airflow", "alert_sink", "crm")}


def test_start_again_reuses_stop_ends_everything_start_again_works(running_stack):
    cfg = running_stack
    first = {s.name: s.pid for s in stack.status(cfg)}
    assert all(first.values()), f"not all services running: {first}"

    # Starting again is a no-op: the same healthy processes are reused.
    stack.up(cfg)
    assert {s.name: s.pid for s in stack.status(cfg)} == first

    stopped = stack.down(cfg)
    assert set(stopped) == set(first)
    assert all(s.state == "stopped" for s in stack.status(cfg))
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in first.values())
    assert _stack_processes(cfg) == [], "processes of the stack outlived `down`"
    assert not any(_listening_ports(cfg).values()), _listening_ports(cfg)
    assert stack.down(cfg) == [], "a second down must find nothing to stop"

    # And it comes back, healthy, with new processes.
    stack.up(cfg)
    again = stack.status(cfg)
    assert all(s.healthy for s in again), [(s.name, s.state) for s in again]
    assert all(_listening_ports(cfg).values())
    assert {s.name: s.pid for s in again}.keys() == first.keys()


def test_a_crashed_service_is_restarted_by_up(running_stack):
    cfg = running_stack
    sftp = next(c.service for c in stack.components(cfg) if c.service.name == "sftp")
    pid = process.status(sftp).pid
    psutil.Process(pid).kill()
    psutil.Process(pid).wait(10)
    assert process.status(sftp).state == "stopped"
    stack.up(cfg)
    assert process.status(sftp).healthy
