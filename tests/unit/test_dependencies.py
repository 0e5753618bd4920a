"""Pins that must agree with each other, and the traps DESIGN.md §6 lists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_everything_is_pinned_and_airflow_is_3_3():
    pins = _pins()
    assert pins["apache-airflow"].startswith("3.3.")
    assert pins["dbt-core"].startswith("1.11.")
    assert pins["great-expectations"].startswith("1.")
    assert int(pins["pandas"].split(".")[0]) < 3, "PySpark 4 warns on pandas >= 3"


def test_the_unmaintained_openlineage_airflow_package_is_not_used():
    pins = _pins()
    assert "openlineage-airflow" not in pins
    assert "apache-airflow-providers-openlineage" in pins


def test_spark_kafka_connector_matches_pyspark_exactly():
    pom = (REPO / "include/flowgate/devstack/jars/spark-kafka.pom.xml").read_text()
    connector = re.search(r"<spark.version>([^<]+)</spark.version>", pom).group(1)
    assert connector == _pins()["pyspark"]
