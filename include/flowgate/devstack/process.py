"""Start, check and stop the local stack's background services.

Each service runs in its own session (process group) with its output in a log file and
its pid, plus the process's start time, in a pid file. The start time is what lets
``stop`` end exactly what we started: a pid the kernel has since given to some other
program never matches it, so that program is left alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HealthCheck = Callable[[], bool]


class ServiceError(RuntimeError):
    """A service failed to start or to become healthy; the message names its log."""


@dataclass(frozen=True)
class Service:
    name: str
    argv: Sequence[str]
    health: HealthCheck
    run_dir: Path
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 60.0
    user: str | None = None  # run as this system user (the server refuses root)
    prepare: Callable[[], None] | None = None  # one-time setup before the first start

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"


@dataclass(frozen=True)
class Status:
    name: str
    pid: int | None
    healthy: bool
    log_file: Path

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "unhealthy"


def tcp_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def running_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that very process is still alive."""
    try:
        record = json.loads(pid_file.read_text())
        proc = psutil.Process(record["pid"])
        if abs(proc.create_time() - record["started"]) > 0.01 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return record["pid"]
    except (FileNotFoundError, ValueError, KeyError, psutil.Error):
        return None


def status(service: Service) -> Status:
    pid = running_pid(service.pid_file)
    return Status(service.name, pid, pid is not None and service.health(), service.log_file)


def start(service: Service) -> Status:
    """Start ``service`` unless a healthy copy we started is already running."""
    current = status(service)
    if current.healthy:
        return current
    if current.pid is not None:
        # Ours but not answering (e.g. half-started): replace it rather than pile up.
        stop(service)
    service.run_dir.mkdir(parents=True, exist_ok=True)
    service.log_dir.mkdir(parents=True, exist_ok=True)
    if service.prepare:
        service.prepare()
    env = {**os.environ, **service.env}
    with open(service.log_file, "ab") as log:
        log.write(f"\n--- flowgate: starting {service.name} at {time.ctime()} ---\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(service.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=service.cwd,
            user=service.user,
            start_new_session=True,  # own process group: stop() ends its children too
        )
    record = {"pid": proc.pid, "started": psutil.Process(proc.pid).create_time(), "argv": list(service.argv)}
    service.pid_file.write_text(json.dumps(record))
    deadline = time.monotonic() + service.start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            service.pid_file.unlink(missing_ok=True)
            raise ServiceError(
                f"{service.name} exited with code {proc.returncode} while starting; "
                f"see {service.log_file}:\n{tail(service.log_file)}"
            )
        if service.health():
            return status(service)
        time.sleep(0.25)
    stop(service)
    raise ServiceError(
        f"{service.name} did not become healthy within {service.start_timeout:.0f}s; "
        f"see {service.log_file}:\n{tail(service.log_file)}"
    )


def stop(service: Service, grace: float = 20.0) -> bool:
    """Stop the process group we started for ``service``; True if something was stopped."""
    pid = running_pid(service.pid_file)
    service.pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    _signal_group(pid, signal.SIGTERM)
    try:
        psutil.Process(pid).wait(timeout=grace)
    except psutil.TimeoutExpired:
        _signal_group(pid, signal.SIGKILL)
        psutil.Process(pid).wait(timeout=5)
    except psutil.NoSuchProcess:
        pass
    # Children that outlived their leader are still in its group.
    _signal_group(pid, signal.SIGKILL)
    return True


def kill(service: Service, wait_s: float = 10.0) -> int | None:
    """SIGKILL the process group we started for ``service``, as a crash would (no chance
    to clean up): the pid killed, or None if it was not running. For fault tests."""
    pid = running_pid(service.pid_file)
    if pid is not None:
        _signal_group(pid, signal.SIGKILL)
        try:
            psutil.Process(pid).wait(timeout=wait_s)
        except psutil.NoSuchProcess:
            pass
    return pid


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"
