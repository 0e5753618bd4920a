"""A micro-batch's work handed to a worker thread, so that it overlaps Spark's own.

With ``foreachBatch`` Spark does everything in turn: write batch N's offsets, plan it, read
it from Kafka, run the function, commit N, and only then look at N+1. About half of a
fraud batch's time is Spark's bookkeeping; the other half is the engine's work. Handing
the work to a thread lets the engine decide batch N while Spark commits N and reads N+1,
which roughly halves the time between two batches, and so each payment's wait.

Spark commits a batch as soon as the function returns, so a crash while the worker is
still busy would lose that batch: Spark would not replay it. Hence the in-flight marker:
before the function returns, the batch's Kafka range is written (atomically) to a small
file beside the heartbeat, and the worker deletes it once the work is done. A driver that
starts and finds the marker re-processes that range before its query starts
(``replay_in_flight`` in the job); the sinks are idempotent, so work that did finish
before the crash is not done twice.

At most one batch is in flight: handing over the next waits for it, and raises its error
if it failed. Spark then fails the query before committing the next batch, the marker
stays, and the resubmitted driver replays both (Spark the uncommitted one, the marker the
other).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from flowgate.common.files import replace_atomically


@dataclass(frozen=True)
class KafkaRange:
    """The records of one batch on one topic: partition -> (first offset, last offset + 1)."""

    topic: str
    partitions: dict[int, tuple[int, int]]

    @classmethod
    def of(cls, topic: str, partitions_and_offsets: Iterable[tuple[int, int]]) -> KafkaRange:
        spans: dict[int, tuple[int, int]] = {}
        for partition, offset in partitions_and_offsets:
            first, end = spans.get(partition, (offset, offset + 1))
            spans[partition] = (min(first, offset), max(end, offset + 1))
        return cls(topic, spans)

    def reader_options(self) -> dict[str, str]:
        """Options of Spark's Kafka batch reader that read exactly this range again."""
        parts = sorted(self.partitions)
        return {
            "assign": json.dumps({self.topic: parts}),
            "startingOffsets": json.dumps({self.topic: {str(p): self.partitions[p][0] for p in parts}}),
            "endingOffsets": json.dumps({self.topic: {str(p): self.partitions[p][1] for p in parts}}),
        }


@dataclass(frozen=True)
class InFlightBatch:
    batch_id: int
    source: KafkaRange

    def to_json(self) -> str:
        return json.dumps({"batch_id": self.batch_id, "topic": self.source.topic,
                           "partitions": {str(p): list(span) for p, span in self.source.partitions.items()}})

    @classmethod
    def from_json(cls, text: str) -> InFlightBatch:
        data = json.loads(text)
        spans = {int(p): (int(first), int(end)) for p, (first, end) in data["partitions"].items()}
        return cls(int(data["batch_id"]), KafkaRange(data["topic"], spans))


class InFlightMarker:
    """The file that says which batch was handed over and not finished."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def write(self, batch: InFlightBatch) -> None:
        replace_atomically(self.path, batch.to_json())

    def read(self) -> InFlightBatch | None:
        try:
            return InFlightBatch.from_json(self.path.read_text())
        except FileNotFoundError:
            return None

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class BatchHandoff:
    """One worker thread, at most one batch in flight (see the module docstring)."""

    def __init__(self, marker: InFlightMarker):
        self.marker = marker
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-handoff")
        self._in_flight: Future | None = None

    def hand_off(self, batch: InFlightBatch, work: Callable[[float], object]) -> None:
        """Wait for the previous batch (raising its error), mark this one, then start
        ``work`` on the worker; it is given the milliseconds spent waiting."""
        started = time.perf_counter()
        self.wait()
        waited_ms = (time.perf_counter() - started) * 1000
        self.marker.write(batch)
        self._in_flight = self._worker.submit(self._run, work, waited_ms)

    def _run(self, work: Callable[[float], object], waited_ms: float) -> None:
        work(waited_ms)
        self.marker.clear()  # only once the work is done: a failure leaves the marker

    def wait(self) -> None:
        """Block until the batch in flight is done; re-raise its error if it failed."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def failure(self) -> BaseException | None:
        """The error of a batch that has already failed, without waiting for one running."""
        in_flight = self._in_flight
        if in_flight is not None and in_flight.done():
            return in_flight.exception()
        return None


def marker_path_beside(heartbeat: Path) -> Path:
    """The stream's in-flight marker lives with its heartbeat, in the driver's state dir."""
    return Path(heartbeat).with_name("in_flight_batch.json")
