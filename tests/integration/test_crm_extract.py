"""CRM → raw_crm against the stack's real CRM simulator and PostgreSQL: 429 storms, the
rate limit, 5xx and timeouts, a crash mid-pagination, a spent budget, late updates,
merges and deletions.

The module shares one stack (postgres + crm). Each test resets the simulator to a seed
of its own, gets a token of its own (its own rate-limit bucket) and writes to a schema of
its own in the warehouse, dropped afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import timedelta

import httpx
import psycopg
import pytest

from flowgate.customer360.crm_admin import CrmAdmin
from flowgate.customer360.crm_client import CrmClient, CrmError, RequestBudget, RetryPolicy
from flowgate.customer360.crm_extract import ExtractSettings, extract_crm
from flowgate.customer360.rate_limits import RateLimit, rate_limit_floor_s
from flowgate.devstack import postgres, stack
from flowgate.devstack.crm import crm_url

pytestmark = pytest.mark.integration

# Quick retries: the behaviour is the same as in production, the waits shorter.
FAST = RetryPolicy(timeout_s=5.0, max_attempts=8, backoff_initial_s=0.05, backoff_max_s=1.0,
                   max_rate_limit_wait_s=60.0)


@pytest.fixture(scope="module")
def crm_stack(stack_config):
    with stack.running(stack_config, {"postgres", "crm"}) as cfg:
        yield cfg


@pytest.fixture(scope="module")
def admin(crm_stack) -> CrmAdmin:
    admin = CrmAdmin.from_stack(crm_stack)
    yield admin
    admin.chaos()  # no chaos left behind for whoever uses the stack next
    admin.reset()


@pytest.fixture(scope="module")
def dsn(crm_stack) -> str:
    return postgres.database_url(crm_stack, "warehouse")


@pytest.fixture
def schema(dsn, request):
    name = f"raw_crm_t_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"drop schema if exists {name} cascade")


@pytest.fixture
def token(admin, request) -> str:
    return admin.mint_token(f"test-{request.node.name[:40]}-{uuid.uuid4().hex[:6]}")


def _client(cfg, token: str, budget: int | None = None, policy: RetryPolicy = FAST) -> CrmClient:
    return CrmClient(crm_url(cfg), token, budget=RequestBudget(budget), policy=policy)


def _rows(dsn: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _count(dsn: str, schema: str, table: str, where: str = "true", *params) -> int:
    return _rows(dsn, f"select count(*) from {schema}.{table} where {where}", *params)[0][0]


def _extract(cfg, dsn, token, schema, run_id, budget=None, policy=FAST, **settings):
    with _client(cfg, token, budget, policy) as client:
        result = extract_crm(dsn, client, run_id, ExtractSettings(schema=schema, **settings))
    return result, client.stats


# --- landing ------------------------------------------------------------------------------

def test_records_land_once_as_received_and_a_rerun_adds_nothing(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=101, customers=450)
    first, _ = _extract(crm_stack, dsn, token, schema, "run-1")
    assert first.complete and first.stopped is None
    assert first.stream("contacts").pages == 3 and first.stream("contacts").inserted == 450
    assert _count(dsn, schema, "contacts") == 450 and _count(dsn, schema, "companies") == 45
    # As received: the API's own JSON, plus when and by which run it landed.
    contact = httpx.post(f"{crm_url(crm_stack)}/crm/v3/objects/contacts/search", json={"limit": 1},
                         headers={"Authorization": f"Bearer {token}"}).json()["results"][0]
    [(payload, loaded_at, run_id)] = _rows(dsn, f"select payload, _loaded_at, _run_id from {schema}.contacts "
                                                "where id = %s", contact["id"])
    assert payload == contact and loaded_at is not None and run_id == "run-1"

    again, _ = _extract(crm_stack, dsn, token, schema, "run-2")
    assert again.complete and sum(s.inserted for s in again.streams) == 0
    assert sum(s.records for s in again.streams) > 0, "the lookback re-read something, and it added nothing"
    assert _count(dsn, schema, "contacts") == 450


def test_the_crm_api_connection_carries_a_token_the_crm_accepts(crm_stack, admin):
    with CrmClient.from_connection("crm_api", policy=FAST) as client:
        page = client.search_updated_since("companies", None, None, limit=5)
    assert len(page.results) == 5
    with _client(crm_stack, "not-the-token") as client:
        with pytest.raises(CrmError, match="401"):
            client.search_updated_since("contacts", None, None)
        assert client.stats.requests == 1, "a refused token is not retried"


def test_past_the_search_cap_of_10000_results_the_pass_goes_on_with_a_new_query(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=112, customers=10_400)
    result, stats = _extract(crm_stack, dsn, token, schema, "run-1", streams=("contacts",))
    contacts = result.stream("contacts")
    assert result.complete and _count(dsn, schema, "contacts") == 10_400
    # 50 pages to the cap, then a query from the 10,000th record's updatedAt: it and 400 more.
    assert (contacts.pages, contacts.records, contacts.inserted) == (53, 10_401, 10_400)
    assert stats.requests == 53, "no request went past the cap (a 400 would have failed the run)"


# --- rate limits and 429 storms -----------------------------------------------------------

def test_every_response_carries_the_rate_limit_headers(crm_stack, admin, token):
    response = httpx.get(f"{crm_url(crm_stack)}/crm/v3/objects/contacts?limit=1",
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Max"] == "100"
    assert response.headers["X-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(response.headers["X-RateLimit-Remaining"]) == 99
    with _client(crm_stack, token) as client:
        client.search_updated_since("contacts", None, None, limit=1)
        assert client.stats.last_rate_limit.limit == RateLimit(100, 10.0)
        assert client.stats.last_rate_limit.remaining == 98


def test_the_rate_limit_is_honoured_and_bounds_the_run_from_below(crm_stack, admin, dsn, schema):
    admin.reset(seed=102, customers=2_000)  # contacts: 10 search pages; 14 requests in all
    token = admin.mint_token(f"tight-{uuid.uuid4().hex[:6]}", rate_limit_max=4, rate_limit_interval_ms=1_000)
    started = time.monotonic()
    result, stats = _extract(crm_stack, dsn, token, schema, "run-1")
    elapsed = time.monotonic() - started
    assert result.complete and _count(dsn, schema, "contacts") == 2_000
    limit = RateLimit(4, 1.0)
    assert stats.last_rate_limit.limit == limit
    assert stats.rate_limited >= 1 and all(w.seconds >= 1.0 for w in stats.waits if w.why == "retry-after")
    ok_requests = stats.requests - stats.rate_limited
    # The first window's requests go at once; the rest cannot beat the limit.
    assert elapsed >= rate_limit_floor_s(ok_requests - limit.max_requests, limit) * 0.9
    assert stats.rate_limited <= ok_requests, "each 429 was waited out, not hammered"


def test_a_429_storm_is_waited_out_as_retry_after_says(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=103, customers=300)
    admin.chaos(storm_seconds=2.5, storm_retry_after_s=1)
    started = time.monotonic()
    result, stats = _extract(crm_stack, dsn, token, schema, "run-1")
    elapsed = time.monotonic() - started
    served = admin.show_chaos()["served"]["storm_429"]
    admin.chaos()
    assert result.complete and _count(dsn, schema, "contacts") == 300
    assert elapsed >= 2.4
    retry_waits = [w for w in stats.waits if w.why == "retry-after"]
    assert stats.rate_limited == served == len(retry_waits)
    assert all(1.0 <= w.seconds <= 1.0 + FAST.retry_after_jitter_s for w in retry_waits)
    assert 2 <= served <= 4, "one retry per Retry-After: the storm was not hammered"


def test_a_storm_longer_than_the_clients_patience_stops_the_run_cleanly(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=104, customers=300)
    admin.chaos(storm_seconds=60, storm_retry_after_s=2)
    patient_for_3s = RetryPolicy(timeout_s=5.0, max_rate_limit_wait_s=3.0)
    result, stats = _extract(crm_stack, dsn, token, schema, "run-1", policy=patient_for_3s)
    admin.chaos()
    assert result.stopped == "rate_limited" and not result.complete
    assert stats.rate_limited == 2, "waited 2 s once, then 2 more would have passed its 3 s"
    resumed, _ = _extract(crm_stack, dsn, token, schema, "run-2")
    assert resumed.complete and resumed.stream("companies").resumed
    assert _count(dsn, schema, "contacts") == 300


# --- 5xx and timeouts ---------------------------------------------------------------------

def test_server_errors_are_retried_with_exponential_backoff_and_nothing_is_lost(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=105, customers=1_000)
    admin.chaos(error_rate=0.5, seed=3)
    result, stats = _extract(crm_stack, dsn, token, schema, "run-1")
    served = admin.show_chaos()["served"]["errors_5xx"]
    admin.chaos()
    assert result.complete
    assert _count(dsn, schema, "contacts") == 1_000 and _count(dsn, schema, "companies") == 100
    assert stats.server_errors == served > 0
    backoffs = [w for w in stats.waits if w.why == "backoff"]
    assert len(backoffs) == served
    for w in backoffs:  # doubling per consecutive failure of a request, plus jitter
        base = FAST.backoff_initial_s * 2 ** (w.failure - 1)
        assert min(base, FAST.backoff_max_s) <= w.seconds <= min(base + FAST.backoff_initial_s, FAST.backoff_max_s)
    assert any(w.failure >= 2 for w in backoffs), "no request failed twice running: backoff never grew"


def test_timeouts_are_retried_with_backoff(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=106, customers=450)
    admin.chaos(latency_ms=1_500, slow_rate=0.4, seed=1)  # seed 1: the first request is slowed
    impatient = RetryPolicy(timeout_s=0.5, max_attempts=10, backoff_initial_s=0.05, backoff_max_s=1.0)
    result, stats = _extract(crm_stack, dsn, token, schema, "run-1", policy=impatient)
    slowed = admin.show_chaos()["served"]["slowed"]
    admin.chaos()
    assert result.complete and _count(dsn, schema, "contacts") == 450
    assert stats.timeouts == slowed > 0, "each slowed answer outlasted the client's timeout"
    assert len([w for w in stats.waits if w.why == "timeout"]) == stats.timeouts


# --- crash, budget ------------------------------------------------------------------------

CRASHING_RUN = textwrap.dedent("""
    import os, signal, sys
    from flowgate.customer360.crm_client import CrmClient
    from flowgate.customer360.crm_extract import ExtractSettings, extract_crm

    url, token, dsn, schema, crash_page = sys.argv[1:6]

    def crash(stream, page_number, page):
        # Fetched, not yet committed: the worst moment for a crash.
        if stream == "contacts" and page_number == int(crash_page):
            os.kill(os.getpid(), signal.SIGKILL)

    with CrmClient(url, token) as client:
        extract_crm(dsn, client, "crashed-run", ExtractSettings(schema=schema), on_page=crash)
""")


def test_a_crash_mid_pagination_resumes_from_the_last_committed_page(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=107, customers=1_400)  # contacts: 7 search pages of 200
    crashed = subprocess.run([sys.executable, "-c", CRASHING_RUN, crm_url(crm_stack), token, dsn, schema, "4"],
                             capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    # Pages 1-3 committed with their checkpoint; page 4 was lost with the process.
    [(status, pages, next_after)] = _rows(dsn, f"select status, pages, next_after from {schema}._extract_state "
                                               "where stream = 'contacts'")
    assert (status, pages) == ("in_progress", 3) and next_after
    assert _count(dsn, schema, "contacts") == 600

    resumed, stats = _extract(crm_stack, dsn, token, schema, "resumed-run")
    contacts = resumed.stream("contacts")
    assert resumed.complete and contacts.resumed
    assert contacts.pages == 4, "it started again at page 4, not at page 1"
    assert _count(dsn, schema, "contacts") == 1_400
    assert _count(dsn, schema, "contacts", "_run_id = %s", "crashed-run") == 600
    assert _count(dsn, schema, "contacts", "_run_id = %s", "resumed-run") == 800
    assert _rows(dsn, f"select count(*) - count(distinct id) from {schema}.contacts")[0][0] == 0


def test_a_spent_budget_stops_the_run_cleanly_and_the_next_run_resumes(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=108, customers=1_400)
    # companies (1 page), companies_archived (1), then 2 of the contacts' 7 pages.
    stopped, stats = _extract(crm_stack, dsn, token, schema, "run-1", budget=4)
    assert stopped.stopped == "budget" and not stopped.complete
    assert stats.requests == 4
    assert stopped.stream("contacts").pages == 2 and not stopped.stream("contacts").complete
    assert [s.stream for s in stopped.streams] == ["companies", "companies_archived", "contacts"]
    assert _count(dsn, schema, "contacts") == 400

    resumed, stats = _extract(crm_stack, dsn, token, schema, "run-2", budget=100)
    assert resumed.complete and resumed.stream("contacts").resumed and resumed.stream("contacts").pages == 5
    assert _count(dsn, schema, "contacts") == 1_400


def test_the_cli_exits_3_when_its_budget_stops_it_and_0_when_it_completes(crm_stack, admin, dsn, schema):
    admin.reset(seed=109, customers=1_400)
    cli = [sys.executable, "-m", "flowgate.cli", "crm", "extract", "--schema", schema]

    def run(*args):
        return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=180, env=os.environ.copy())

    stopped = run("--budget", "3")
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "stopped (budget)" in stopped.stdout
    done = run("--budget", "100")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(resumed)" in done.stdout
    assert _count(dsn, schema, "contacts") == 1_400


# --- late updates, merges, deletions ------------------------------------------------------

def test_the_lookback_window_catches_updates_that_show_up_late(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=110, customers=300)
    admin.advance(seconds=60, updates=5)           # the cursor ends near the CRM's clock
    no_lookback, with_lookback = f"{schema}_nolb", schema
    try:
        for target, lookback in ((no_lookback, timedelta(0)), (with_lookback, timedelta(minutes=15))):
            assert _extract(crm_stack, dsn, token, target, "run-1", lookback=lookback)[0].complete
        late = admin.advance(seconds=60, updates=2, late_updates=3, late_by_seconds=100)
        for target, lookback in ((no_lookback, timedelta(0)), (with_lookback, timedelta(minutes=15))):
            assert _extract(crm_stack, dsn, token, target, "run-2", lookback=lookback)[0].complete

        def versions_from_run_2(target: str, ids: list[str]) -> int:
            return _count(dsn, target, "contacts", "id = any(%s) and _run_id = 'run-2'", ids)

        assert versions_from_run_2(with_lookback, late["updated"]) == 2
        assert versions_from_run_2(no_lookback, late["updated"]) == 2
        assert versions_from_run_2(with_lookback, late["late_updated"]) == 3, "the lookback missed late updates"
        assert versions_from_run_2(no_lookback, late["late_updated"]) == 0, "late updates must be behind the cursor"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"drop schema if exists {no_lookback} cascade")


def test_deletions_and_merges_land_as_archived_versions(crm_stack, admin, dsn, schema, token):
    admin.reset(seed=111, customers=300)
    assert _extract(crm_stack, dsn, token, schema, "run-1")[0].complete
    changes = admin.advance(seconds=60, merges=2, deletions=3, company_deletions=1)
    result, _ = _extract(crm_stack, dsn, token, schema, "run-2")
    assert result.complete and result.stream("contacts_archived").inserted == 5

    archived = dict(_rows(dsn, f"select id, payload from {schema}.contacts where archived"))
    losers = {m["loser"]: m["winner"] for m in changes["merged"]}
    assert set(archived) == set(losers) | set(changes["deleted"])
    for loser, winner in losers.items():
        assert archived[loser]["mergedInto"] == winner
        [(merged_ids,)] = _rows(dsn, f"select payload -> 'properties' ->> 'hs_merged_object_ids' from {schema}.contacts "
                                     "where id = %s order by updated_at desc limit 1", winner)
        assert loser in merged_ids.split(";")
    # The live version each of them had before stays: raw keeps history, dbt picks the newest.
    assert _count(dsn, schema, "contacts", "id = any(%s) and not archived", list(archived)) == 5
    assert _count(dsn, schema, "companies", "archived and id = any(%s)", changes["company_deleted"]) == 1
