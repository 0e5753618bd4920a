"""WARN+ lines into OpenSearch on a thread of their own, behind the lake.

The lake is the record and the stream's pace; search is a copy of part of it for on-call,
"minutes for the rest" in the flow's latency targets. So a batch does not wait for the
node: once its lake objects are stored, it hands its WARN+ lines to :class:`Indexer` and
goes on with the rules. Indexing each batch inline had made the lake's rate the node's
(200,000 lines a batch on this box: ~2.4 s of the driver's ~3.5 s).

What the indexer has not confirmed stays in :attr:`Indexer.pending`, by lake object key,
and is saved with the job's state after every batch. A batch's lines are indexed from
memory; keys it no longer holds in memory (OpenSearch was down, the queue was full, or a
new driver restored them) are indexed from the lake. Document ids are digests of the
lines, so indexing a line twice overwrites the same document.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flowgate.logs import search


@dataclass(frozen=True)
class IndexWork:
    """One batch's WARN+ lines: (kafka id, event time in ns, raw line), and its lake objects."""

    keys: tuple[str, ...]
    lines: tuple[tuple[str, int, bytes], ...]


@dataclass
class IndexCounts:
    indexed: int = 0
    rejected: int = 0
    busy_s: float = 0.0  # seconds spent indexing (building documents and the bulk requests)


class Indexer:
    def __init__(self, client: search.SearchClient, lake_lines: Callable[[str], Iterable[bytes]],
                 index: Callable, *, max_queued_batches: int = 4, retry_s: float = 2.0,
                 on_progress: Callable[[], None] = lambda: None):
        self.client, self.lake_lines, self.index = client, lake_lines, index
        self.retry_s, self.on_progress = retry_s, on_progress
        self.counts = IndexCounts()
        self._pending: list[str] = []
        self._lock = threading.Lock()  # the pending keys: the batch thread adds, this thread removes
        self._queue: queue.Queue[IndexWork] = queue.Queue(maxsize=max_queued_batches)
        self._queued: set[str] = set()  # keys whose lines are in the queue
        self._template_set = False
        self._thread = threading.Thread(target=self._run, name="indexer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the batch's side

    def submit(self, work: IndexWork) -> None:
        """The batch's keys are pending from now on; its lines wait in memory if there is
        room (else they are read back from the lake)."""
        with self._lock:
            self._pending += [k for k in work.keys if k not in self._pending]
            try:
                self._queue.put_nowait(work)
                self._queued.update(work.keys)
            except queue.Full:
                pass

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def restore(self, keys: Iterable[str]) -> None:
        """A new driver, or a replay: these keys are what the saved state had not indexed."""
        with self._lock:
            self._pending = list(dict.fromkeys([*keys, *self._pending]))

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            try:
                work = self._queue.get(timeout=self.retry_s)
            except queue.Empty:
                work = None
            try:
                self._index_from_lake()
                if work is not None:
                    self._index(work.keys, (search.parsed_document(line, kafka_id, ts, self.index)
                                            for kafka_id, ts, line in work.lines))
            except search.SearchUnavailable as exc:
                # The keys stay pending: read from the lake once the node answers again.
                print(f"app_logs: search unavailable, {len(self.pending)} lake object(s) to index later: {exc}",
                      flush=True)
                time.sleep(self.retry_s)
            except Exception as exc:  # noqa: BLE001 - a bug must not end indexing for good
                print(f"app_logs: indexing failed, kept pending: {exc!r}", flush=True)
                time.sleep(self.retry_s)
            finally:
                if work is not None:
                    with self._lock:
                        self._queued.difference_update(work.keys)

    def _index_from_lake(self) -> None:
        with self._lock:
            backlog = [k for k in self._pending if k not in self._queued]
        for key in backlog:
            self._index((key,), (doc for line in self.lake_lines(key)
                                 if (doc := search.document(line, index=self.index))))

    def _index(self, keys: tuple[str, ...], documents) -> None:
        started = time.perf_counter()
        if not self._template_set:
            self.client.ensure_template()
            self._template_set = True
        result = self.client.bulk(documents)
        with self._lock:
            self._pending = [k for k in self._pending if k not in keys]
        self.counts.indexed += result.indexed
        self.counts.busy_s += time.perf_counter() - started
        if result.rejected:
            self.counts.rejected += result.rejected
            print(f"app_logs: OpenSearch rejected {result.rejected} document(s) (kept in the lake): "
                  f"{result.first_error}", flush=True)
        self.on_progress()
