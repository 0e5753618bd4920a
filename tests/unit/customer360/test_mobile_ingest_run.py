"""The ingest's driver side without Spark: one run at a time per checkpoint, totals that add up."""

from __future__ import annotations

import json

import pytest

from flowgate.customer360.mobile_ingest import IngestTotals, RunInProgress, examine_messages, exclusive_run
from flowgate.customer360.mobile_schema import Examined, Rejected, load_schema
from flowgate.customer360.mobile_store import BatchResult


def test_a_second_run_on_the_same_checkpoint_fails_at_once(tmp_path):
    with exclusive_run(tmp_path):
        with pytest.raises(RunInProgress, match="another mobile_events run"):
            with exclusive_run(tmp_path):
                pass
    with exclusive_run(tmp_path):  # released: the next run goes
        pass


def test_totals_add_the_batches_up():
    totals = IngestTotals()
    totals.add(BatchResult(3, received=10, inserted=7, duplicates=2, rejected=1, new_conflicts=4, drift_rows=2))
    totals.add(BatchResult(4, received=5, inserted=5, duplicates=0, rejected=0, new_conflicts=0, drift_rows=0))
    assert totals.as_dict() == {"batches": 2, "received": 15, "inserted": 12, "duplicates": 2, "rejected": 1,
                                "new_conflicts": 4, "batch_ids": [3, 4]}
    assert IngestTotals(**json.loads(json.dumps(totals.as_dict()))) == totals  # what the job's summary file carries


def test_messages_split_into_events_and_rejected_keeping_kafka_coordinates():
    good = json.dumps({"event_id": "e1", "device_id": "d", "user_id": None, "event_name": "app_open",
                       "ts": "2026-11-30T09:00:00Z", "app_version": "1.0.0", "properties": {"screen": "home"}})
    events, rejected = examine_messages(
        [{"topic": "mobile.events", "partition": 1, "offset": 41, "timestamp": None, "value": good},
         {"topic": "mobile.events", "partition": 0, "offset": 9, "timestamp": None, "value": "nope"}], load_schema(), "test-identity-key")
    assert [type(e) for e in events] == [Examined] and [type(r) for r in rejected] == [Rejected]
    assert (events[0].at.partition, events[0].at.offset) == (1, 41) and rejected[0].at.offset == 9
