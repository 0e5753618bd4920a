"""The client's pure parts: backoff growth, the request budget, rate-limit headers and the floor."""

from __future__ import annotations

import pytest

from flowgate.customer360.crm_client import BudgetExhausted, RequestBudget, RetryPolicy, backoff_s
from flowgate.customer360.rate_limits import RateLimit, pages_needed, rate_limit_floor_s, status_from_headers


def test_backoff_doubles_per_failure_with_jitter_of_one_initial_step_and_is_capped():
    policy = RetryPolicy(backoff_initial_s=0.5, backoff_max_s=6.0)
    for failure in range(1, 5):
        waits = [backoff_s(failure, policy) for _ in range(200)]
        base = 0.5 * 2 ** (failure - 1)
        assert all(base <= w <= base + 0.5 for w in waits)
        assert max(waits) - min(waits) > 0.2, "no jitter: clients that failed together retry together"
    assert all(backoff_s(10, policy) == 6.0 for _ in range(20))


def test_budget_refuses_the_request_after_the_last_one_it_allows():
    budget = RequestBudget(3)
    for _ in range(3):
        budget.spend()
    assert budget.remaining == 0
    with pytest.raises(BudgetExhausted):
        budget.spend()
    assert budget.used == 3
    unlimited = RequestBudget(None)
    for _ in range(10_000):
        unlimited.spend()
    assert unlimited.remaining is None


def test_rate_limit_headers_either_naming_are_read():
    ours = status_from_headers({"X-RateLimit-Max": "100", "X-RateLimit-Remaining": "7",
                                "X-RateLimit-Interval-Milliseconds": "10000"})
    hubspot = status_from_headers({"x-hubspot-ratelimit-max": "190", "x-hubspot-ratelimit-remaining": "0",
                                   "x-hubspot-ratelimit-interval-milliseconds": "10000"})
    assert (ours.limit, ours.remaining) == (RateLimit(100, 10.0), 7)
    assert (hubspot.limit, hubspot.remaining) == (RateLimit(190, 10.0), 0)
    assert status_from_headers({"Content-Type": "application/json"}) is None


def test_the_floor_is_pages_over_the_allowed_rate():
    limit = RateLimit(100, 10.0)
    assert pages_needed(20_000, 200) == 100
    assert pages_needed(20_001, 200) == 101
    assert pages_needed(0, 200) == 1, "an empty listing still costs its one request"
    assert rate_limit_floor_s(100, limit) == pytest.approx(10.0)
    assert rate_limit_floor_s(pages_needed(20_000, 100), limit) == pytest.approx(20.0)
