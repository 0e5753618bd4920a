"""The hand-off of a micro-batch's work to a worker: the in-flight marker says which batch
Spark has committed but the worker may not have finished, and nothing else."""

from __future__ import annotations

import json
import threading

import pytest

from flowgate.common.batch_handoff import BatchHandoff, InFlightBatch, InFlightMarker, KafkaRange, marker_path_beside


def batch(batch_id: int = 7) -> InFlightBatch:
    return InFlightBatch(batch_id, KafkaRange("payments.events", {0: (100, 250), 1: (90, 91)}))


def test_a_kafka_range_spans_the_records_of_each_partition_end_exclusive():
    records = [(0, 105), (1, 40), (0, 100), (0, 149), (1, 41)]
    assert KafkaRange.of("t", records).partitions == {0: (100, 150), 1: (40, 42)}


def test_the_range_reads_back_as_spark_kafka_reader_options():
    options = batch().source.reader_options()
    assert json.loads(options["assign"]) == {"payments.events": [0, 1]}
    assert json.loads(options["startingOffsets"]) == {"payments.events": {"0": 100, "1": 90}}
    assert json.loads(options["endingOffsets"]) == {"payments.events": {"0": 250, "1": 91}}


def test_the_marker_round_trips_and_clears(tmp_path):
    marker = InFlightMarker(marker_path_beside(tmp_path / "heartbeat.json"))
    assert marker.read() is None
    marker.write(batch())
    assert marker.read() == batch()
    marker.clear()
    assert marker.read() is None
    marker.clear()  # clearing twice is fine: a replay clears what the worker may have cleared


def test_the_marker_is_there_while_the_work_runs_and_gone_once_it_is_done(tmp_path):
    marker = InFlightMarker(tmp_path / "in_flight.json")
    handoff, release, seen = BatchHandoff(marker), threading.Event(), []

    def work(waited_ms: float) -> None:
        seen.append(marker.read())
        release.wait(5)

    handoff.hand_off(batch(3), work)
    release.set()
    handoff.wait()
    assert seen == [batch(3)]
    assert marker.read() is None


def test_the_next_batch_waits_for_the_one_in_flight(tmp_path):
    handoff, order = BatchHandoff(InFlightMarker(tmp_path / "m.json")), []
    first_running, release = threading.Event(), threading.Event()

    def first(_waited_ms: float) -> None:
        first_running.set()
        release.wait(5)
        order.append("first done")

    handoff.hand_off(batch(1), first)
    first_running.wait(5)
    threading.Timer(0.2, release.set).start()
    handoff.hand_off(batch(2), lambda waited_ms: order.append(f"second after {waited_ms >= 150}"))
    handoff.wait()
    assert order == ["first done", "second after True"]


def test_a_failed_batch_keeps_its_marker_and_fails_the_next_hand_off(tmp_path):
    marker = InFlightMarker(tmp_path / "m.json")
    handoff = BatchHandoff(marker)

    def fail(_waited_ms: float) -> None:
        raise RuntimeError("store down")

    handoff.hand_off(batch(5), fail)
    with pytest.raises(RuntimeError, match="store down"):
        handoff.hand_off(batch(6), lambda _ms: None)
    assert marker.read() == batch(5)  # the next driver replays it


def test_a_failure_is_reported_without_waiting_for_a_next_batch(tmp_path):
    handoff = BatchHandoff(InFlightMarker(tmp_path / "m.json"))
    assert handoff.failure() is None

    def fail(_waited_ms: float) -> None:
        raise ValueError("does not reconcile")

    handoff.hand_off(batch(), fail)
    for _ in range(100):
        if handoff.failure() is not None:
            break
        threading.Event().wait(0.01)
    assert isinstance(handoff.failure(), ValueError)
