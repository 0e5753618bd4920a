"""The logs' time-to-live settings, read from the one file that holds them (ttl.yaml).

Every place a log line lives expires it on its own clock: the lake (lifecycle rule and
the retention DAG), the OpenSearch indices, the ``app.logs`` topic and the forwarder's
disk buffer. Reading them all from one validated file means a change is made once and
reviewed once, and no copy drifts.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

TTL_FILE = Path(__file__).with_name("ttl.yaml")
_HOUR_MS = 3_600_000
_MIB = 1024 * 1024


class _Section(BaseModel):
    # A misspelt key must fail the load, not fall back to a default no one chose.
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeTTL(_Section):
    days: int = Field(gt=0)


class OpenSearchTTL(_Section):
    index_days: int = Field(gt=0)


class KafkaTTL(_Section):
    retention_ms: int = Field(gt=0)
    retention_bytes: int = Field(gt=0, description="per partition, as Kafka counts it")

    @field_validator("retention_ms")
    @classmethod
    def _whole_hours(cls, value: int) -> int:
        if value % _HOUR_MS:
            raise ValueError("must be whole hours (the topic table and compose's kafka-init declare hours)")
        return value

    @property
    def retention_hours(self) -> int:
        return self.retention_ms // _HOUR_MS


class ForwarderTTL(_Section):
    # Below a few chunks the buffer could not hold what is in flight plus one more chunk.
    buffer_bytes: int = Field(ge=_MIB)


class LogsTTL(_Section):
    lake: LakeTTL
    opensearch: OpenSearchTTL
    kafka: KafkaTTL
    forwarder: ForwarderTTL


def load_ttl(path: Path | str | None = None) -> LogsTTL:
    """The TTLs from ``path`` (default: the project's ttl.yaml), validated."""
    if path is None:
        return _default_ttl()
    return _parse(Path(path))


@lru_cache(maxsize=1)
def _default_ttl() -> LogsTTL:
    # Read once per process: the topic table imports it, and the file does not change
    # under a running process.
    return _parse(TTL_FILE)


def _parse(path: Path) -> LogsTTL:
    return LogsTTL.model_validate(yaml.safe_load(path.read_text()))
