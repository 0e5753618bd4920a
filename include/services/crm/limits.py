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
        self._own: dict[str, tuple[int, int]] = {}  # token name -> its own (max, interval_ms)

    def set_limit(self, token_name: str, max_requests: int, interval_ms: int) -> None:
        """A limit of its own for one token (tests and drills: a small window is quick to fill)."""
        self._own[token_name] = (max_requests, interval_ms)
        self._sent.pop(token_name, None)

    def limit_of(self, token_name: str) -> tuple[int, int]:
        return self._own.get(token_name, (self.max_requests, self.interval_ms))

    def check(self, token_name: str) -> Verdict:
        max_requests, interval_ms = self.limit_of(token_name)
        now = self._clock()
        window = interval_ms / 1000
        sent = self._sent.setdefault(token_name, deque())
        while sent and sent[0] <= now - window:
            sent.popleft()
        if len(sent) >= max_requests:
            wait = sent[0] + window - now
            return Verdict(False, max_requests, 0, interval_ms, max(1, math.ceil(wait)))
        sent.append(now)
        return Verdict(True, max_requests, max_requests - len(sent), interval_ms)

    def reset(self) -> None:
        """Empty windows; tokens keep their own limits."""
        self._sent.clear()
