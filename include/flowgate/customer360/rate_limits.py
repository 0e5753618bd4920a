"""The CRM's rate limit as the client sees it, and the floor it puts under an extract.

A rate-limited API cannot be read faster than its limit allows, however fast the
client: ``pages needed ÷ allowed rate`` is the floor an extract's time is compared with
(bench/customer_360.py: the API part should stay within 1.2x of it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# The header names first, then HubSpot's: either kind of server is understood.
HEADER_PREFIXES = ("X-RateLimit-", "X-HubSpot-RateLimit-")


@dataclass(frozen=True)
class RateLimit:
    max_requests: int
    interval_s: float

    @property
    def requests_per_s(self) -> float:
        return self.max_requests / self.interval_s


@dataclass(frozen=True)
class RateLimitStatus:
    limit: RateLimit
    remaining: int


def status_from_headers(headers: Mapping[str, str]) -> RateLimitStatus | None:
    """The limit and what is left of it, from a response's headers (None if it sent none)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for prefix in HEADER_PREFIXES:
        p = prefix.lower()
        try:
            limit = RateLimit(int(lowered[f"{p}max"]), int(lowered[f"{p}interval-milliseconds"]) / 1000)
            return RateLimitStatus(limit, int(lowered.get(f"{p}remaining", limit.max_requests)))
        except (KeyError, ValueError):
            continue
    return None


def pages_needed(records: int, page_size: int) -> int:
    """Requests a listing of ``records`` takes: a page per ``page_size``, at least one."""
    return max(1, math.ceil(records / page_size))


def rate_limit_floor_s(pages: int, limit: RateLimit) -> float:
    """The least time ``pages`` requests can take under ``limit``: pages ÷ allowed rate."""
    return pages / limit.requests_per_s
