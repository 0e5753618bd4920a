"""The supervisor's judgement of a stream, from its driver and its heartbeat."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flowgate.common.heartbeat import Heartbeat, kafka_lag, read_heartbeat, write_heartbeat
from flowgate.common.stream_supervisor import HealthBudget, health_problems

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BUDGET = HealthBudget(stale_after_s=60, max_consumer_lag=1000, startup_grace_s=120)


def beat(age_s: float, state: str = "progress", lag: int | None = 0, error: str | None = None) -> Heartbeat:
    return Heartbeat(stream="s", written_at=NOW - timedelta(seconds=age_s), state=state, consumer_lag=lag, error=error)


def test_fresh_heartbeat_with_small_lag_is_healthy():
    assert health_problems(beat(5), True, NOW - timedelta(minutes=10), BUDGET, NOW) == []


def test_a_dead_driver_is_unhealthy_whatever_the_heartbeat():
    assert health_problems(beat(1), False, None, BUDGET, NOW) == ["driver is not running"]


def test_stale_heartbeat_and_lag_over_budget_are_both_reported():
    problems = health_problems(beat(61, lag=5000), True, NOW - timedelta(minutes=10), BUDGET, NOW)
    assert any("stale" in p for p in problems) and any("lag 5000" in p for p in problems)


def test_a_fresh_driver_gets_its_grace_and_an_old_drivers_heartbeat_does_not_count():
    started = NOW - timedelta(seconds=30)
    assert health_problems(beat(600, lag=10**9), True, started, BUDGET, NOW) == []
    late = NOW - timedelta(seconds=121)
    assert "no heartbeat" in health_problems(beat(600), True, late, BUDGET, NOW)[0]


def test_a_terminated_query_is_unhealthy_with_its_error():
    problems = health_problems(beat(1, state="terminated", error="boom"), True, NOW - timedelta(minutes=5), BUDGET, NOW)
    assert problems == ["query terminated: boom"]


def test_heartbeat_round_trips_through_its_file(tmp_path):
    path = tmp_path / "hb.json"
    original = Heartbeat(stream="s", written_at=NOW, state="idle", consumer_lag=0, app={"decided": 3})
    write_heartbeat(path, original)
    assert read_heartbeat(path) == original
    assert read_heartbeat(tmp_path / "missing.json") is None


def test_kafka_lag_sums_partitions_behind_latest():
    end = json.dumps({"t": {"0": 10, "1": 20}})
    latest = json.dumps({"t": {"0": 15, "1": 20, "2": 3}})
    assert kafka_lag(end, latest) == 5 + 0 + 3
    assert kafka_lag(None, latest) is None


def test_the_listener_rewrites_its_last_beat_with_counters_that_moved_after_it(tmp_path):
    """The fraud engine finishes a batch after Spark's progress event for it: the beat
    must show the engine's counters without waiting for a next batch."""
    from flowgate.common.spark_listener import HeartbeatListener

    counters = {"decided": 100}
    listener = HeartbeatListener("s", tmp_path / "heartbeat.json", lambda: dict(counters))
    listener.refresh_app()  # before any event: nothing to refresh, nothing written
    assert read_heartbeat(tmp_path / "heartbeat.json") is None

    listener._beat("progress", batch_id=7, consumer_lag=0, durations_ms={"addBatch": 12})
    counters["decided"] = 250
    listener.refresh_app()
    beat = read_heartbeat(tmp_path / "heartbeat.json")
    assert beat.app == {"decided": 250}
    assert (beat.state, beat.batch_id, beat.consumer_lag, beat.durations_ms) == ("progress", 7, 0, {"addBatch": 12})


def test_kafka_lag_is_unknown_when_spark_reports_no_offsets_yet():
    assert kafka_lag("null", '{"t": {"0": 5}}') is None and kafka_lag('{"t": {"0": 5}}', "null") is None
