"""The CRM simulator's HTTP contract, in process (FastAPI's TestClient on the real app):
auth, rate-limit headers and 429s, chaos, cursors that never skip, merges and deletions,
determinism per seed. The extract against the simulator as the stack runs it is in
tests/integration/test_crm_extract.py."""

from __future__ import annotations

import pytest
from crm.app import build_app
from crm.settings import Settings
from crm.store import BadRequest, CrmStore
from fastapi.testclient import TestClient

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
API, ADMIN = {"Authorization": "Bearer api-token"}, {"Authorization": "Bearer admin-token"}


def _settings(**overrides) -> Settings:
    values = dict(api_token="api-token", admin_token="admin-token", seed=13, customers=500,
                  rate_limit_max=100, rate_limit_interval_ms=10_000, epoch_ms=EPOCH_MS)
    return Settings(**(values | overrides))


@pytest.fixture
def crm() -> TestClient:
    with TestClient(build_app(_settings())) as client:
        yield client


def _search(client: TestClient, since: str | None = None, after: str | None = None, limit: int = 200,
            object_type: str = "contacts") -> dict:
    body: dict = {"limit": limit, "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]}
    if since:
        body["filterGroups"] = [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": since}]}]
    if after:
        body["after"] = after
    response = client.post(f"/crm/v3/objects/{object_type}/search", json=body, headers=API)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_api_wants_the_bearer_token_and_the_admin_endpoints_the_admin_token(crm):
    assert crm.get("/crm/v3/objects/contacts").status_code == 401
    assert crm.get("/crm/v3/objects/contacts", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert crm.get("/crm/v3/objects/contacts", headers=API).status_code == 200
    assert crm.get("/_chaos", headers=API).status_code == 401
    assert crm.get("/_chaos", headers=ADMIN).status_code == 200
    assert crm.get("/health").json() == {"status": "ok"}


def test_every_answer_carries_the_rate_limit_and_the_101st_request_gets_a_429_naming_the_policy(crm):
    for sent in range(1, 101):
        response = crm.get("/crm/v3/objects/companies?limit=1", headers=API)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Max"] == "100"
        assert response.headers["X-RateLimit-Interval-Milliseconds"] == "10000"
        assert response.headers["X-RateLimit-Remaining"] == str(100 - sent)
        assert response.headers["X-HubSpot-RateLimit-Remaining"] == str(100 - sent)
    refused = crm.get("/crm/v3/objects/companies?limit=1", headers=API)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.json()["errorType"] == "RATE_LIMIT"
    # Another token has a window of its own, and a limit of its own when minted with one.
    minted = crm.post("/_tokens", json={"name": "t2", "rate_limit_max": 2, "rate_limit_interval_ms": 60_000},
                      headers=ADMIN).json()
    other = {"Authorization": f"Bearer {minted['token']}"}
    assert [crm.get("/crm/v3/objects/companies", headers=other).status_code for _ in range(3)] == [200, 200, 429]


def test_chaos_storm_errors_and_its_counters(crm):
    shown = crm.post("/_chaos", json={"storm_seconds": 30, "storm_retry_after_s": 7}, headers=ADMIN).json()
    assert shown["storm_remaining_s"] > 29
    stormed = crm.get("/crm/v3/objects/contacts", headers=API)
    assert (stormed.status_code, stormed.headers["Retry-After"]) == (429, "7")
    assert stormed.json()["policyName"] == "CHAOS_STORM"
    crm.post("/_chaos", json={"error_rate": 1.0, "error_statuses": [503]}, headers=ADMIN)
    assert crm.get("/crm/v3/objects/contacts", headers=API).status_code == 503
    assert crm.get("/_chaos", headers=ADMIN).json()["served"] == {"storm_429": 0, "errors_5xx": 1, "slowed": 0}
    crm.post("/_chaos", json={}, headers=ADMIN)
    assert crm.get("/crm/v3/objects/contacts", headers=API).status_code == 200


def test_search_pages_never_skip_a_record_that_changes_while_a_client_pages(crm):
    first = _search(crm, limit=100)
    assert first["total"] == 500 and len(first["results"]) == 100
    seen = {r["id"] for r in first["results"]}
    # Records the client has read and records it has not change between its pages.
    crm.post("/_simulate/advance", json={"updates": 300, "seconds": 60}, headers=ADMIN)
    after = first["paging"]["next"]["after"]
    while after:
        page = _search(crm, after=after, limit=100)
        seen |= {r["id"] for r in page["results"]}
        after = (page.get("paging") or {}).get("next", {}).get("after")
    assert len(seen) == 500, "a record moved in front of the cursor and was skipped"


def test_search_filters_on_last_modified_and_refuses_what_it_cannot_filter(crm):
    everything = _search(crm, limit=200)["total"]
    recent = _search(crm, since="2025-12-01T00:00:00Z", limit=200)
    assert 0 < recent["total"] < everything
    assert all(r["updatedAt"] >= "2025-12-01T00:00:00" for r in recent["results"])
    bad = crm.post("/crm/v3/objects/contacts/search", headers=API, json={
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "x"}]}]})
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"
    assert crm.post("/crm/v3/objects/contacts/search", headers=API, json={"limit": 201}).status_code == 400


def test_merges_and_deletions_are_archived_and_listed_with_archived_true(crm):
    changes = crm.post("/_simulate/advance", json={"merges": 2, "deletions": 3, "company_deletions": 1},
                       headers=ADMIN).json()
    archived = crm.get("/crm/v3/objects/contacts?archived=true&limit=100", headers=API).json()["results"]
    by_id = {r["id"]: r for r in archived}
    assert set(by_id) == {m["loser"] for m in changes["merged"]} | set(changes["deleted"])
    assert all(r["archived"] and r["archivedAt"] == r["updatedAt"] for r in archived)
    for merge in changes["merged"]:
        assert by_id[merge["loser"]]["mergedInto"] == merge["winner"]
        winner = crm.get(f"/crm/v3/objects/contacts/{merge['winner']}", headers=API).json()
        assert merge["loser"] in winner["properties"]["hs_merged_object_ids"].split(";")
    live_ids = {r["id"] for r in _search(crm, limit=200)["results"]}
    assert not live_ids & set(by_id), "search must not return archived records"
    companies = crm.get("/crm/v3/objects/companies?archived=true", headers=API).json()["results"]
    assert [c["id"] for c in companies] == changes["company_deleted"]


def test_one_search_query_pages_through_at_most_its_cap_of_results():
    store = CrmStore(seed=13, customers=500, epoch_ms=EPOCH_MS)
    seen, after = [], None
    for _ in range(3):
        page, total, after = store.search("contacts", [], after, limit=120, cap=300)
        seen += page
    assert total == 500 and len(seen) == 300, "the third page stops at the cap"
    assert after is not None
    with pytest.raises(BadRequest, match="at most 300"):
        store.search("contacts", [], after, limit=120, cap=300)


def test_late_updates_carry_an_updated_at_behind_the_clock():
    store = CrmStore(seed=13, customers=200, epoch_ms=EPOCH_MS)
    changes = store.advance(seconds=60, updates=5, late_updates=3, late_by_seconds=120)
    late = [store.get("contacts", int(i)) for i in changes["late_updated"]]
    normal = [store.get("contacts", int(i)) for i in changes["updated"]]
    assert len(late) == 3 and all(r.updated_at < store.clock - 119_000 for r in late)
    assert all(store.clock - 60_000 < r.updated_at <= store.clock for r in normal)


def test_the_same_seed_and_advances_give_the_same_records_another_seed_others():
    def run(seed: int) -> list[dict]:
        store = CrmStore(seed=seed, customers=300, epoch_ms=EPOCH_MS)
        store.advance(seconds=60, creates=5, updates=20, merges=2, deletions=2, late_updates=2)
        store.advance(seconds=600, updates=40, company_updates=3)
        return [r.to_api(with_associations=True) for t in ("contacts", "companies") for r in store.iter_all(t)]

    assert run(13) == run(13)
    assert run(13) != run(14)
