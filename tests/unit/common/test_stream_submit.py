"""What the supervisor hands spark-submit: it must start whatever PATH Airflow, a bench or
a developer's shell gives it."""

from __future__ import annotations

import sys
from pathlib import Path

from flowgate.common.stream_supervisor import StreamSpec, driver_service, spark_submit_argv


def spec(tmp_path: Path, **env: str) -> StreamSpec:
    return StreamSpec(name="s", job_file="job.py", job_args=("--x", "1"), state_dir=tmp_path, env=env)


def test_the_driver_finds_spark_and_this_python_without_the_venv_on_path(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARK_HOME", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a python3 without pyspark, or none
    env = driver_service(spec(tmp_path)).env
    assert (Path(env["SPARK_HOME"]) / "bin" / "spark-class").is_file()
    assert env["PYSPARK_PYTHON"] == sys.executable


def test_the_specs_own_environment_wins_and_secrets_stay_out_of_argv(tmp_path):
    service = driver_service(spec(tmp_path, SPARK_HOME="/opt/spark", STORE_DSN="postgresql://u:secret@h/db"))
    assert service.env["SPARK_HOME"] == "/opt/spark"
    assert not any("secret" in arg for arg in spark_submit_argv(spec(tmp_path, STORE_DSN="postgresql://u:secret@h/db")))
