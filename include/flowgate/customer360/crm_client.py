"""The CRM's HTTP client: httpx for the calls, tenacity for what to do when one fails.

- **429** → wait exactly what ``Retry-After`` says (plus a little jitter, so clients that
  were turned away together do not all come back in the same millisecond), then retry.
  Waiting out 429s is bounded by time, not attempts (a storm may need many): once the
  total would exceed ``max_rate_limit_wait_s``, :class:`RateLimitedTooLong` ends the call,
  and the extract stops where its last checkpoint is.
- **5xx, timeouts, dropped connections** → exponential backoff with jitter
  (``initial * 2^n + U(0, initial)``, capped), at most ``max_attempts`` tries.
- **Any other 4xx** (a bad token, a bad request) → :class:`CrmError` at once: retrying
  cannot fix it.
- **Budget**: every request sent — retries too, they cost the rate limit as much —
  spends one unit of the run's :class:`RequestBudget`; a spent budget raises
  :class:`BudgetExhausted` *before* sending, so the run stops cleanly between pages.

Why our own client rather than dlt's REST client: see :mod:`flowgate.customer360.crm_extract`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from flowgate.customer360.rate_limits import RateLimitStatus, status_from_headers

log = logging.getLogger(__name__)

SEARCH_PAGE_MAX, LIST_PAGE_MAX = 200, 100  # HubSpot's largest pages for search and list
SEARCH_RESULT_CAP = 10_000  # and the most results one search query pages through
LAST_MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"}


class CrmError(RuntimeError):
    """A request the CRM refused for good (4xx other than 429), or retries ran out."""


class ServerError(CrmError):
    def __init__(self, status: int) -> None:
        super().__init__(f"CRM answered {status}")
        self.status = status


class RateLimited(CrmError):
    def __init__(self, retry_after_s: float, policy: str | None) -> None:
        super().__init__(f"CRM rate limit {policy or '(unnamed policy)'}: retry after {retry_after_s:g} s")
        self.retry_after_s = retry_after_s
        self.policy = policy


class RateLimitedTooLong(CrmError):
    """Waiting out the 429s would exceed the client's patience: stop, resume later."""


class BudgetExhausted(CrmError):
    """The run's request budget is spent: stop cleanly, the next run resumes."""


@dataclass
class RequestBudget:
    """At most ``limit`` requests in one run (None: no limit)."""
    limit: int | None
    used: int = 0

    def spend(self) -> None:
        if self.limit is not None and self.used >= self.limit:
            raise BudgetExhausted(f"request budget of {self.limit} spent")
        self.used += 1

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else self.limit - self.used


@dataclass(frozen=True)
class RetryPolicy:
    timeout_s: float = 10.0
    max_attempts: int = 6              # 5xx and timeouts, per request
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_rate_limit_wait_s: float = 300.0  # all Retry-After waits of one request together
    retry_after_jitter_s: float = 0.1


@dataclass(frozen=True)
class Wait:
    why: str        # "retry-after", "backoff" (5xx, dropped connection) or "timeout"
    seconds: float
    failure: int    # the n-th 429 (retry-after) or the n-th other failure of that request


@dataclass
class ClientStats:
    """What the client went through; the extract reports it and tests check it."""
    requests: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    waits: list[Wait] = field(default_factory=list)  # before each retry
    last_rate_limit: RateLimitStatus | None = None

    @property
    def waited_s(self) -> float:
        return sum(w.seconds for w in self.waits)


@dataclass(frozen=True)
class Page:
    results: list[dict]
    next_after: str | None
    total: int | None = None


class CrmClient:
    def __init__(self, base_url: str, token: str, *, budget: RequestBudget | None = None,
                 policy: RetryPolicy = RetryPolicy(), sleep: Callable[[float], None] = time.sleep) -> None:
        self.budget = budget or RequestBudget(None)
        self.policy = policy
        self.stats = ClientStats()
        self._sleep = sleep
        self._http = httpx.Client(base_url=base_url, timeout=policy.timeout_s,
                                  headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    @classmethod
    def from_connection(cls, conn_id: str = "crm_api", **kwargs) -> CrmClient:
        """The base URL from the HTTP connection, the bearer token from its password."""
        from airflow.sdk import BaseHook

        from flowgate.common.connections import http_base_url

        conn = BaseHook.get_connection(conn_id)
        if not conn.password:
            raise CrmError(f"connection {conn_id} has no token (its password)")
        return cls(http_base_url(conn_id), conn.password, **kwargs)

    def __enter__(self) -> CrmClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:  # never the token
        return f"CrmClient({self._http.base_url})"

    # --- the endpoints the extract reads -------------------------------------------------

    def search_updated_since(self, object_type: str, since_ms: int | None, after: str | None,
                             limit: int = SEARCH_PAGE_MAX) -> Page:
        """Live records with updatedAt ≥ ``since_ms``, oldest first (HubSpot's search)."""
        prop = LAST_MODIFIED[object_type]
        body: dict = {"sorts": [{"propertyName": prop, "direction": "ASCENDING"}], "limit": limit}
        if since_ms is not None:
            body["filterGroups"] = [{"filters": [{"propertyName": prop, "operator": "GTE", "value": str(since_ms)}]}]
        if after:
            body["after"] = after
        data = self._request("POST", f"/crm/v3/objects/{object_type}/search", json=body).json()
        return Page(data["results"], (data.get("paging") or {}).get("next", {}).get("after"), data.get("total"))

    def list_archived(self, object_type: str, updated_after_ms: int | None, after: str | None,
                      limit: int = LIST_PAGE_MAX) -> Page:
        """Archived (deleted, merged) records changed after ``updated_after_ms``, by id."""
        params: dict = {"archived": "true", "limit": limit}
        if object_type == "contacts":
            params["associations"] = "companies"
        if updated_after_ms is not None:
            params["updatedAfter"] = str(updated_after_ms)
        if after:
            params["after"] = after
        data = self._request("GET", f"/crm/v3/objects/{object_type}", params=params).json()
        return Page(data["results"], (data.get("paging") or {}).get("next", {}).get("after"))

    # --- one request, retried -------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        patience = _Patience()
        retrying = Retrying(
            retry=retry_if_exception_type((RateLimited, ServerError, httpx.TimeoutException, httpx.TransportError)),
            wait=lambda state: self._wait_s(state, patience),
            stop=lambda state: self._give_up(state, patience),
            before_sleep=lambda state: self._about_to_wait(state, patience, f"{method} {path}"),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._send, method, path, **kwargs)

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        self.budget.spend()
        self.stats.requests += 1
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            self.stats.timeouts += 1
            raise
        self.stats.last_rate_limit = status_from_headers(response.headers) or self.stats.last_rate_limit
        if response.status_code == 429:
            self.stats.rate_limited += 1
            raise RateLimited(_retry_after_s(response), _policy_name(response))
        if response.status_code >= 500:
            self.stats.server_errors += 1
            raise ServerError(response.status_code)
        if response.status_code >= 400:
            raise CrmError(f"CRM {method} {path} answered {response.status_code}: {response.text[:200]}")
        return response

    # tenacity asks for the wait, then whether to stop, then (if not) calls before_sleep:
    # only _about_to_wait counts a wait as waited.

    def _wait_s(self, state: RetryCallState, patience: _Patience) -> float:
        error = state.outcome.exception()
        if isinstance(error, RateLimited):
            return error.retry_after_s + random.uniform(0, self.policy.retry_after_jitter_s)
        return backoff_s(patience.failure_number(state), self.policy)

    def _give_up(self, state: RetryCallState, patience: _Patience) -> bool:
        error = state.outcome.exception()
        if isinstance(error, RateLimited):
            if patience.rate_limit_wait_s + state.upcoming_sleep > self.policy.max_rate_limit_wait_s:
                raise RateLimitedTooLong(
                    f"{error}; already waited {patience.rate_limit_wait_s:.1f} s of "
                    f"{self.policy.max_rate_limit_wait_s:.0f} s") from error
            return False
        return patience.failure_number(state) >= self.policy.max_attempts

    def _about_to_wait(self, state: RetryCallState, patience: _Patience, what: str) -> None:
        error, seconds = state.outcome.exception(), state.upcoming_sleep
        if isinstance(error, RateLimited):
            patience.rate_limited += 1
            patience.rate_limit_wait_s += seconds
            wait = Wait("retry-after", seconds, patience.rate_limited)
        else:
            why = "timeout" if isinstance(error, httpx.TimeoutException) else "backoff"
            wait = Wait(why, seconds, patience.failure_number(state))
        self.stats.waits.append(wait)
        log.warning("CRM %s: %s; retrying in %.2f s", what, error, seconds)


@dataclass
class _Patience:
    """One request's retries so far: 429s (bounded by time) apart from other failures (by count)."""
    rate_limited: int = 0
    rate_limit_wait_s: float = 0.0

    def failure_number(self, state: RetryCallState) -> int:
        """Which failure other than a 429 the current attempt is (1 for the first)."""
        return state.attempt_number - self.rate_limited


def backoff_s(failure: int, policy: RetryPolicy) -> float:
    """The wait after the ``failure``-th failure: ``initial * 2^(n-1) + U(0, initial)``, capped.

    Exponential so a struggling server gets room; the jitter spreads clients that failed
    together (the shape of tenacity's wait_exponential_jitter, counted over this request's 5xx and
    timeouts only, so the 429s it waited out do not inflate it)."""
    base = policy.backoff_initial_s * 2 ** (max(1, failure) - 1)
    return min(policy.backoff_max_s, base + random.uniform(0, policy.backoff_initial_s))


def _retry_after_s(response: httpx.Response) -> float:
    """Retry-After in seconds (delta-seconds; an HTTP date is read as 1 s: HubSpot sends seconds)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _policy_name(response: httpx.Response) -> str | None:
    try:
        return response.json().get("policyName")
    except ValueError:
        return None
