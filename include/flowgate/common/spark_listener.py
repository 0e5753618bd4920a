"""The Spark side of stream supervision: a listener that keeps the heartbeat current.

Imported only inside Spark jobs (it needs pyspark); the supervisor reads the file it
writes through ``flowgate.common.heartbeat``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import JStreamingQueryListener, QueryProgressEvent

from flowgate.common.heartbeat import Heartbeat, kafka_lag, write_heartbeat


class HeartbeatListener(StreamingQueryListener):
    """Writes a heartbeat on every query event. ``app_counters`` adds the job's own
    figures (e.g. decisions taken, breaker state) to each beat."""

    def __init__(self, stream: str, path: Path, app_counters: Callable[[], dict] = dict):
        self.stream, self.path, self.app_counters = stream, path, app_counters
        self._lock = threading.Lock()  # Spark's events and refresh_app come on different threads
        self._last: Heartbeat | None = None

    @property
    def _jlistener(self):
        """The object Spark calls, with progress events read as one JSON string.

        PySpark's own bridge builds each progress event with ~40 Py4J round trips, some of
        which make the JVM search every jar for a class that is not there: profiled (JFR)
        at 1,000 tx/s, that listener thread was half the driver JVM's CPU and the stream's
        bottleneck. ``_jlistener`` is PySpark's hook for this object (private, pinned
        with pyspark; tests/integration covers the heartbeat it feeds)."""
        from pyspark import SparkContext

        if not hasattr(self, "_jlistenerobj"):
            self._jlistenerobj = SparkContext._jvm.PythonStreamingQueryListenerWrapper(_JsonProgressBridge(self))
        return self._jlistenerobj

    def _beat(self, state: str, **figures) -> None:
        with self._lock:
            self._write(Heartbeat(stream=self.stream, written_at=datetime.now(UTC), state=state,
                                  driver_pid=os.getpid(), app=self.app_counters(), **figures))

    def refresh_app(self) -> None:
        """Write the last beat again with the job's counters as they are now. Work that
        ends after Spark's progress event (an engine beside Spark, ``batch_handoff``)
        shows at once, not with the next batch, which a quiet stream may not have."""
        with self._lock:
            if self._last is not None:
                self._write(replace(self._last, written_at=datetime.now(UTC), app=self.app_counters()))

    def _write(self, heartbeat: Heartbeat) -> None:
        write_heartbeat(self.path, heartbeat)
        self._last = heartbeat

    def onQueryStarted(self, event) -> None:  # noqa: N802 - pyspark's names
        self._beat("started")

    def onQueryProgress(self, event) -> None:  # noqa: N802
        progress = event.progress
        source = progress.sources[0] if progress.sources else None
        self._beat(
            "progress",
            batch_id=progress.batchId,
            input_rows_per_second=_finite(progress.inputRowsPerSecond),
            processed_rows_per_second=_finite(progress.processedRowsPerSecond),
            batch_duration_ms=progress.batchDuration,
            durations_ms=dict(progress.durationMs or {}),
            consumer_lag=kafka_lag(source.endOffset, source.latestOffset) if source else None,
        )

    def onQueryIdle(self, event) -> None:  # noqa: N802
        # Idle is healthy: no input, nothing behind. Keep the last batch's lag of 0.
        self._beat("idle", consumer_lag=0)

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        self._beat("terminated", error=(event.exception or None))


class _JsonProgressBridge(JStreamingQueryListener):
    def onQueryProgress(self, jevent) -> None:  # noqa: N802
        self.pylistener.onQueryProgress(QueryProgressEvent.fromJson({"progress": json.loads(jevent.progress().json())}))


def _finite(value: float | None) -> float | None:
    return None if value is None or value != value or value in (float("inf"), float("-inf")) else value
