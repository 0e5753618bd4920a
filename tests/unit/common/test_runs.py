from datetime import date, datetime, timezone

import pytest
from airflow.utils.types import DagRunType

from flowgate.common.runs import business_date, run_type


def test_business_date_is_the_data_interval_start_unless_a_param_names_it():
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    assert business_date({"params": {}, "data_interval_start": start}) == date(2026, 10, 1)
    assert business_date({"params": {"business_date": "2026-09-30"}, "data_interval_start": start}) == date(2026, 9, 30)


def test_a_run_without_interval_or_param_is_refused():
    with pytest.raises(ValueError, match="business_date"):
        business_date({"params": {"business_date": None}, "data_interval_start": None})


def test_run_type_is_the_plain_word():
    class Run:
        run_type = DagRunType.BACKFILL_JOB

    assert run_type(Run()) == "backfill"
