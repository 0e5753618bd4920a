"""Every DAG imports cleanly, parses fast, and follows the platform's policy."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from flowgate.common.dag_defaults import ALLOWED_TAGS

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def test_there_are_dags():
    assert DAG_FILES, "no DAG files found"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_without_error_and_parse_time_is_reported(dag_file: Path):
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(dag_file))
    elapsed = time.perf_counter() - started
    print(f"\nparse time {dag_file.name}: {elapsed * 1000:.0f} ms ({len(bag.dags)} DAG(s))")
    assert bag.import_errors == {}, bag.import_errors
    assert bag.dags, f"{dag_file.name} defines no DAG"


def _dags(dagbag: DagBag):
    assert dagbag.dags
    return dagbag.dags.values()


def test_every_dag_has_allowed_tags_an_owner_and_docs(dagbag: DagBag):
    for dag in _dags(dagbag):
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert set(dag.tags) <= ALLOWED_TAGS, f"{dag.dag_id}: tags {set(dag.tags) - ALLOWED_TAGS} not allowed"
        assert dag.owner and dag.owner != "airflow", f"{dag.dag_id} has no owner"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag.dag_id} has no doc_md"


def test_every_task_retries_with_backoff_has_a_timeout_and_alerts(dagbag: DagBag):
    for dag in _dags(dagbag):
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.retries >= 2, f"{where}: retries {task.retries} < 2"
            assert task.retry_exponential_backoff and task.retry_exponential_backoff > 1, f"{where}: no exponential backoff"
            assert isinstance(task.execution_timeout, timedelta), f"{where}: no execution_timeout"
            assert task.on_failure_callback, f"{where}: no on-failure alert"


def test_no_dag_uses_airflow_2_only_arguments():
    for dag_file in DAG_FILES:
        text = dag_file.read_text()
        for legacy in ("schedule_interval", "execution_date", "from airflow.models import DAG", "SubDag", "sla="):
            assert legacy not in text, f"{dag_file.name} uses {legacy!r} (Airflow 2 only)"
