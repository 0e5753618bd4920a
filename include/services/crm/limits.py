"""Per-token rate limiting, HubSpot style: at most ``max_requests`` in any rolling window.

A rolling (sliding-log) window rather than fixed buckets, so a client can never get
2x the limit across a bucket edge. Rejected requests do not count against the window:
a client that waits the ``Retry-After`` it was given gets in on time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

POLICY_NAME = "TEN_SECONDLY_ROLLING"  # HubSpot's name for its 100-per-10-s burst limit


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    max_requests: int
    remaining: int
    interval_ms: int
    retry_after_s: int = 0

    def headers(self) -> dict[str, str]:
        values = {"Max": str(self.max_requests), "Remaining": str(self.remaining),
                  "Interval-Milliseconds": str(self.interval_ms)}
        # The names, and HubSpot's own, so a client written for HubSpot works too.
        headers = {f"X-RateLimit-{k}": v for k, v in values.items()}
        headers |= {f"X-HubSpot-RateLimit-{k}": v for k, v in values.items()}
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class RateLimiter:
    def __init__(self, max_requests: int, interval_ms: int, clock=time.monotonic) -> None:
        self.max_requests = max_requests
        self.interval_ms = interval_ms
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    def check(self, token_name: str) -> Verdict:
        now = self._clock()
        window = self.interval_ms / 1000
        sent = self._sent.setdefault(token_name, deque())
        while sent and sent[0] <= now - window:
            sent.popleft()
        if len(sent) >= self.max_requests:
            wait = sent[0] + window - now
            return Verdict(False, self.max_requests, 0, self.interval_ms, max(1, math.ceil(wait)))
        sent.append(now)
        return Verdict(True, self.max_requests, self.max_requests - len(sent), self.interval_ms)

    def reset(self) -> None:
        self._sent.clear()
