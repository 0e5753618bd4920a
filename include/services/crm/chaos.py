"""Faults on demand, for tests and on-call drills: ``POST /_chaos`` sets them, ``GET`` shows them.

Each POST replaces the whole setting (a field left out is off), so a drill's last call
``POST /_chaos {}`` is always a clean slate. The error draw is seeded: the same setting
and the same requests fail the same way.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

from pydantic import BaseModel, Field


class ChaosSettings(BaseModel):
    error_rate: float = Field(0.0, ge=0, le=1, description="share of API requests answered with a 5xx")
    error_statuses: list[int] = Field(default_factory=lambda: [500, 502, 503])
    latency_ms: int = Field(0, ge=0, le=120_000, description="added before answering a slowed request")
    slow_rate: float = Field(1.0, ge=0, le=1, description="share of API requests slowed by latency_ms")
    storm_seconds: float = Field(0, ge=0, le=3600, description="from now on, every API request gets a 429 ...")
    storm_retry_after_s: int = Field(1, ge=0, le=3600, description="... with this Retry-After")
    seed: int = 0


@dataclass
class Served:
    """What the chaos did, since the last POST: tests check the faults really happened."""
    storm_429: int = 0
    errors_5xx: int = 0
    slowed: int = 0


@dataclass
class Chaos:
    settings: ChaosSettings = field(default_factory=ChaosSettings)
    storm_until: float = 0.0
    served: Served = field(default_factory=Served)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))

    def configure(self, settings: ChaosSettings) -> None:
        self.settings = settings
        self.storm_until = time.monotonic() + settings.storm_seconds if settings.storm_seconds else 0.0
        self.served = Served()
        self._rng = random.Random(settings.seed)

    def storm_remaining_s(self) -> float:
        return max(0.0, self.storm_until - time.monotonic())

    def in_storm(self) -> bool:
        return self.storm_remaining_s() > 0

    def delay_s(self) -> float:
        s = self.settings
        if s.latency_ms and self._rng.random() < s.slow_rate:
            self.served.slowed += 1
            return s.latency_ms / 1000
        return 0.0

    def error_status(self) -> int | None:
        s = self.settings
        if s.error_rate and self._rng.random() < s.error_rate:
            self.served.errors_5xx += 1
            return self._rng.choice(s.error_statuses)
        return None

    def show(self) -> dict:
        return {"settings": self.settings.model_dump(), "storm_remaining_s": round(self.storm_remaining_s(), 3),
                "served": asdict(self.served)}
