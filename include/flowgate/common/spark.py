"""What every Spark submission of the platform shares."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SPARK_CONN_ID = "spark_default"

# The Kafka connector jars (resolved by Maven at setup, see devstack/jars/spark-kafka.pom.xml).
# The deployment sets FLOWGATE_SPARK_JARS: the stack's .env locally, the image in Docker.
SPARK_JARS_ENV = "FLOWGATE_SPARK_JARS"


def kafka_connector_jars() -> str:
    return os.environ.get(SPARK_JARS_ENV, "")


def spark_job(name: str) -> str:
    """Path of a job file in spark_jobs/ (the same file runs on local[*] and on a cluster)."""
    return str(Path(__file__).resolve().parents[3] / "spark_jobs" / name)


def submit_environment() -> dict[str, str]:
    """What spark-submit needs whatever PATH its caller has: pip's spark-submit script
    looks for SPARK_HOME with whichever ``python3`` is first on PATH (outside the venv:
    one without pyspark, and the submit dies), and the Python workers must be this one."""
    from importlib.util import find_spec

    pyspark = find_spec("pyspark")  # located, not imported: importing it takes a second
    return {
        "SPARK_HOME": os.environ.get("SPARK_HOME") or str(Path(pyspark.origin).parent),
        "PYSPARK_PYTHON": sys.executable,
    }
