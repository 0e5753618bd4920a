"""The heartbeat a streaming job leaves for its supervisor: one small JSON file.

The Spark side writes it on every progress or idle event (``spark_listener``); the
Airflow side reads it (``stream_supervisor``). A file is enough locally and in Docker
(a shared volume) and keeps the supervisor independent of Spark's own UI or REST API.
Written atomically (temp file + rename) so a reader never sees half a heartbeat.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flowgate.common.files import replace_atomically


@dataclass(frozen=True)
class Heartbeat:
    stream: str
    written_at: datetime          # when the listener last heard from the query
    state: str                    # "started" | "progress" | "idle" | "terminated"
    batch_id: int | None = None
    input_rows_per_second: float | None = None
    processed_rows_per_second: float | None = None
    batch_duration_ms: int | None = None
    consumer_lag: int | None = None  # records between the committed and the latest offsets
    driver_pid: int | None = None
    error: str | None = None          # the exception that terminated the query, if any
    durations_ms: dict = field(default_factory=dict)  # where the last batch's time went (Spark's phases)
    app: dict = field(default_factory=dict)  # the job's own counters (e.g. breaker state)

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.written_at).total_seconds()


def write_heartbeat(path: Path, heartbeat: Heartbeat) -> None:
    record = asdict(heartbeat) | {"written_at": heartbeat.written_at.isoformat()}
    replace_atomically(path, json.dumps(record, default=str))


def read_heartbeat(path: Path) -> Heartbeat | None:
    try:
        record = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    record["written_at"] = datetime.fromisoformat(record["written_at"])
    return Heartbeat(**record)


def kafka_lag(end_offset: str | None, latest_offset: str | None) -> int | None:
    """Records not yet processed, from a Kafka source's progress offsets (JSON strings
    shaped {topic: {partition: offset}})."""
    if not end_offset or not latest_offset:
        return None
    end, latest = json.loads(end_offset), json.loads(latest_offset)
    if not isinstance(end, dict) or not isinstance(latest, dict):  # "null" right after a restart
        return None
    return sum(
        max(0, offset - end.get(topic, {}).get(partition, 0))
        for topic, partitions in latest.items() for partition, offset in partitions.items()
    )
