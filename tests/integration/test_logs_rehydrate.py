"""A service's window comes back from the lake into its own index, every severity, only
that service and window, and a second run adds no copy; rehydrated indices expire by their
creation day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from flowgate.devstack.env import connections
from flowgate.devstack.services import s3_client
from flowgate.logs import lake, search
from flowgate.logs.rehydrate import rehydrate, rehydrated_index, window_of

START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # the tests' own day in the lake
ARRIVED_MS = int((START + timedelta(minutes=40)).timestamp() * 1000)


def line(minute: int, service: str, severity: int) -> bytes:
    ts = int((START + timedelta(minutes=minute)).timestamp() * 1e9)
    return json.dumps({"timestamp": ts, "severity_number": severity, "body": f"{service} at +{minute} min",
                       "resource": {"service.name": service}}).encode()


@pytest.fixture
def lake_and_search(running_stack, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPENSEARCH", json.dumps(connections(running_stack)["opensearch"]))
    s3, client = s3_client(running_stack), search.SearchClient.from_connection()
    values = [line(m, svc, sev) for m in range(0, 60, 5) for svc, sev in (("ledger", 9), ("auth", 17))]
    values += [b"not json", line(70, "ledger", 9)]  # malformed, and one after the window
    n = len(values)
    lake.put_objects(s3, lake.batch_objects(1, [0] * n, list(range(n)), [ARRIVED_MS] * n, values))
    index = rehydrated_index("ledger", START, START + timedelta(hours=1))
    client.delete_index(index)
    yield s3, client, index
    client.delete_index(index)
    for key in lake.list_keys(s3, f"{lake.PREFIX}/dt={START.date().isoformat()}/"):
        s3.delete_object(Bucket=lake.LAKE_BUCKET, Key=key)


def test_a_window_of_one_service_comes_back_with_every_severity(lake_and_search):
    s3, client, index = lake_and_search
    result = rehydrate(s3, client, "ledger", START.isoformat(), (START + timedelta(hours=1)).isoformat())
    assert result.index == index and (result.indexed, result.rejected) == (12, 0)
    docs = client.search(index, {"match_all": {}})
    assert {d["resource"]["service.name"] for d in docs} == {"ledger"} and {d["severity_number"] for d in docs} == {9}
    again = rehydrate(s3, client, "ledger", START, START + timedelta(hours=1))
    client.refresh(index)
    assert again.indexed == 12 and client.count(index) == 12, "a re-run overwrites, adds no copy"


def test_a_rehydrated_index_expires_by_its_creation_day(lake_and_search):
    s3, client, index = lake_and_search
    rehydrate(s3, client, "ledger", START, START + timedelta(hours=1))
    assert index not in client.delete_older_than(7, now=lambda: datetime.now(UTC))  # created today
    assert index in client.delete_older_than(7, now=lambda: datetime.now(UTC) + timedelta(days=8))


@pytest.mark.parametrize("start, end, error", [
    ("2026-03-03T11:00:00", "2026-03-03T10:00:00", "before it starts"),
    ("2026-03-01T00:00:00", "2026-03-05T00:00:00", "longer than"),
])
def test_a_bad_window_is_refused_with_a_clear_error(start, end, error):
    with pytest.raises(ValueError, match=error):
        window_of(start, end)
