"""The stack's OpenSearch node takes documents into a daily index and finds them again."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from flowgate.common.connections import http_base_url
from flowgate.devstack import stack
from flowgate.devstack.env import connections

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def opensearch(stack_config):
    with stack.running(stack_config, {"opensearch"}) as cfg:
        yield cfg


@pytest.fixture
def http(opensearch, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPENSEARCH", json.dumps(connections(opensearch)["opensearch"]))
    with httpx.Client(base_url=http_base_url("opensearch"), timeout=30) as client:
        yield client


@pytest.fixture
def daily_index(http):
    name = f"test-app-logs-{uuid.uuid4().hex[:8]}-{datetime.now(UTC):%Y.%m.%d}"
    yield name
    http.delete(f"/{name}")


def test_it_is_a_real_2_19_node(http):
    info = http.get("/").json()
    assert info["version"]["number"].startswith("2.19.")
    assert info["cluster_name"] == "flowgate"
    assert http.get("/_cluster/health").json()["status"] in ("yellow", "green")


def test_log_lines_indexed_into_a_daily_index_are_found_by_service_and_severity(http, daily_index):
    lines = [
        {"@timestamp": "2026-01-05T10:00:0%dZ" % i, "service": service, "severity_text": severity, "body": body}
        for i, (service, severity, body) in enumerate([
            ("payments-api", "ERROR", "timeout talking to ledger"),
            ("payments-api", "WARN", "retrying ledger call"),
            ("ledger", "ERROR", "java.lang.OutOfMemoryError: Java heap space"),
        ])
    ]
    bulk = "".join(json.dumps({"index": {}}) + "\n" + json.dumps(line) + "\n" for line in lines)
    response = http.post(f"/{daily_index}/_bulk", params={"refresh": "true"}, content=bulk,
                         headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200 and not response.json()["errors"], response.text

    query = {"query": {"bool": {"filter": [{"term": {"service.keyword": "payments-api"}},
                                           {"term": {"severity_text.keyword": "ERROR"}}]}}}
    hits = http.post(f"/{daily_index}/_search", json=query).json()["hits"]
    assert hits["total"]["value"] == 1
    assert hits["hits"][0]["_source"]["body"] == "timeout talking to ledger"

    # Full text on the body (the standard analyzer keeps "java.lang.OutOfMemoryError" one token).
    found = http.post(f"/{daily_index}/_search", json={"query": {"match_phrase": {"body": "heap space"}}}).json()
    assert [h["_source"]["service"] for h in found["hits"]["hits"]] == ["ledger"]
