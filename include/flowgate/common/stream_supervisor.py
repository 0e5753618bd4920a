"""Long-running Spark streams, submitted detached and supervised from Airflow.

A blocking spark-submit would hold a worker slot for ever and die with the worker, so a
stream's driver runs as its own process group (the local stack's process supervision,
``devstack.process``: a pid file with the process start time, so we only ever signal
what we started). The supervisor then judges the stream from the outside, by three
signs: the driver process is alive, its heartbeat (``common.heartbeat``) is fresh, and
the consumer lag is within budget. What to do about a bad sign (alert, resubmit from the
checkpoint) is the DAG's wiring; this module only says what is true.

Each stream keeps its state in one folder: the checkpoint, the heartbeat, the driver's
pid file and log, and a "stopped" marker when someone stopped it on purpose — so the
supervisor does not bring back a stream an operator has just stopped.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flowgate.common.heartbeat import Heartbeat, read_heartbeat
from flowgate.common.spark import submit_environment
from flowgate.devstack import process


@dataclass(frozen=True)
class StreamSpec:
    name: str
    job_file: str
    job_args: Sequence[str]
    state_dir: Path
    master: str = "local[*]"
    jars: str = ""
    conf: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)  # secrets go here, never in argv

    @property
    def checkpoint(self) -> Path:
        return self.state_dir / "checkpoint"

    @property
    def heartbeat_file(self) -> Path:
        return self.state_dir / "heartbeat.json"

    @property
    def stopped_marker(self) -> Path:
        return self.state_dir / "STOPPED"


@dataclass(frozen=True)
class HealthBudget:
    stale_after_s: float = 90.0     # no progress or idle event for this long → stale
    max_consumer_lag: int = 100_000  # records behind the latest offsets
    startup_grace_s: float = 180.0  # a fresh driver needs time to start Spark


@dataclass(frozen=True)
class StreamHealth:
    healthy: bool
    problems: list[str]
    driver_pid: int | None
    heartbeat: Heartbeat | None

    def summary(self) -> str:
        if self.healthy:
            hb = self.heartbeat
            lag = hb.consumer_lag if hb else None
            return f"healthy: driver pid {self.driver_pid}, lag {lag}"
        return "; ".join(self.problems)


def stream_conf(state_dir: Path) -> dict[str, str]:
    """The Spark settings every supervised stream runs with; a stream's spec adds its own."""
    return {
        # A micro-batch's work is small; fewer threads means less scheduling overhead.
        "spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false",
        # The checkpoint's offset and commit files through Hadoop's FileSystem API on the
        # plain local filesystem. The default (FileContext) API, without Hadoop's native
        # library, forks `chmod` and three `readlink`s for each file it writes: ~40
        # processes a second, WAL + commit 55 → 16 ms a batch (fraud). The checksummed local
        # filesystem would write a .crc beside each file. The manager applies to any scheme:
        # on a local disk or HDFS a rename is atomic through either API.
        "spark.sql.streaming.checkpointFileManagerClass":
            "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager",
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
        # Shuffle and spill files hold rows: keep them with the stream's state, on the disk
        # the PAN scan covers, not in a shared /tmp.
        "spark.local.dir": str(state_dir / "spark-local"),
    }


def streams_root() -> Path:
    """Where every stream keeps its state folder (FLOWGATE_STREAMS_DIR, else the stack's)."""
    import os

    from flowgate.devstack.config import StackConfig

    return Path(os.environ.get("FLOWGATE_STREAMS_DIR", StackConfig.from_env().state_dir / "streams"))


def spark_submit_argv(spec: StreamSpec) -> list[str]:
    argv = [spark_submit_binary(), "--master", spec.master, "--name", spec.name,
            "--conf", f"spark.pyspark.python={sys.executable}",
            "--conf", f"spark.pyspark.driver.python={sys.executable}"]
    if spec.jars:
        argv += ["--jars", spec.jars]
    for key, value in spec.conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, spec.job_file, *spec.job_args]


def spark_submit_binary() -> str:
    beside_python = Path(sys.executable).parent / "spark-submit"
    return str(beside_python) if beside_python.exists() else (shutil.which("spark-submit") or "spark-submit")


def driver_service(spec: StreamSpec) -> process.Service:
    return process.Service(
        name=f"{spec.name}-driver",
        argv=spark_submit_argv(spec),
        health=lambda: True,  # alive is all a start can check; the heartbeat tells the rest
        run_dir=spec.state_dir,
        log_dir=spec.state_dir,
        env={**submit_environment(), **spec.env},
        start_timeout=10,
    )


def driver_pid(spec: StreamSpec) -> int | None:
    return process.running_pid(driver_service(spec).pid_file)


def submit(spec: StreamSpec) -> int:
    """Start the driver unless it is already running; the pid either way. Never a second
    copy: two drivers on one checkpoint would fight over it."""
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    status = process.start(driver_service(spec))
    return status.pid


def stop(spec: StreamSpec, *, on_purpose: bool, grace_s: float = 30.0) -> bool:
    """Stop the driver (SIGTERM, then SIGKILL after ``grace_s``). ``on_purpose`` leaves
    the marker that keeps the supervisor from resubmitting it."""
    if on_purpose:
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        spec.stopped_marker.write_text(datetime.now(UTC).isoformat())
    return process.stop(driver_service(spec), grace=grace_s)


def kill_driver(spec: StreamSpec) -> int | None:
    """SIGKILL the driver's whole process group, as a crash would (for fault tests)."""
    return process.kill(driver_service(spec))


def stopped_on_purpose(spec: StreamSpec) -> bool:
    return spec.stopped_marker.exists()


def allow_start(spec: StreamSpec) -> None:
    spec.stopped_marker.unlink(missing_ok=True)


def driver_started_at(spec: StreamSpec) -> datetime | None:
    try:
        record = json.loads(driver_service(spec).pid_file.read_text())
        return datetime.fromtimestamp(record["started"], UTC)
    except (FileNotFoundError, ValueError, KeyError):
        return None


def assess(spec: StreamSpec, budget: HealthBudget = HealthBudget(), now: datetime | None = None) -> StreamHealth:
    pid = driver_pid(spec)
    heartbeat = read_heartbeat(spec.heartbeat_file)
    problems = health_problems(heartbeat, pid is not None, driver_started_at(spec) if pid else None,
                               budget, now or datetime.now(UTC))
    return StreamHealth(not problems, problems, pid, heartbeat)


def health_problems(heartbeat: Heartbeat | None, driver_alive: bool, driver_started: datetime | None,
                    budget: HealthBudget, now: datetime) -> list[str]:
    """Every reason the stream is not healthy (none: healthy). Pure, for tests.

    Only a heartbeat of the running driver counts: one left by an earlier driver says
    nothing about this one, which gets ``startup_grace_s`` to write its first.
    """
    if not driver_alive:
        return ["driver is not running"]
    current = heartbeat if heartbeat and (driver_started is None or heartbeat.written_at >= driver_started) else None
    if current is None:
        since_start = (now - driver_started).total_seconds() if driver_started else float("inf")
        if since_start <= budget.startup_grace_s:
            return []
        return [f"no heartbeat {since_start:.0f}s after the driver started (grace {budget.startup_grace_s:.0f}s)"]
    problems = []
    if current.state == "terminated":
        problems.append(f"query terminated: {current.error or 'no error given'}")
    if current.age_seconds(now) > budget.stale_after_s:
        problems.append(f"heartbeat stale: last {current.age_seconds(now):.0f}s ago (budget {budget.stale_after_s:.0f}s)")
    if current.consumer_lag is not None and current.consumer_lag > budget.max_consumer_lag:
        problems.append(f"consumer lag {current.consumer_lag} over budget {budget.max_consumer_lag}")
    return problems
