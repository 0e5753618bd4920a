"""On-call's search on the stack's real OpenSearch node: WARN+ lines in daily indices,
found by service and by a word inside a dotted exception name, re-indexed without copies,
old indices deleted by an injected clock, and an alert's search link answering."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from flowgate.devstack.env import connections
from flowgate.logs import search
from flowgate.logs.rules import RuleEngine, load_rules

DAY_NS = int(datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp() * 1e9)  # the tests' own day
INDEX = search.daily_index(datetime(2026, 3, 2).date())


def line(i: int, service: str, severity: int, body: str) -> bytes:
    return json.dumps({"timestamp": DAY_NS + i * 1_000_000_000, "observed_timestamp": DAY_NS, "severity_number": severity,
                       "severity_text": {9: "INFO", 13: "WARN", 17: "ERROR"}[severity], "body": body,
                       "resource": {"service.name": service, "host.name": f"{service}-1",
                                    "deployment.environment": "test"},
                       "attributes": {"exception.type": "java.lang.OutOfMemoryError"} if "Memory" in body else {},
                       "trace_id": "0" * 32, "span_id": "0" * 16}).encode()


@pytest.fixture
def client(running_stack, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPENSEARCH", json.dumps(connections(running_stack)["opensearch"]))
    client = search.SearchClient.from_connection()
    client.ensure_template()
    client.delete_index(INDEX)
    yield client
    client.delete_index(INDEX)


LINES = [line(0, "payments-api", 17, "timeout talking to ledger"),
         line(1, "payments-api", 9, "request served"),
         line(2, "ledger", 17, "java.lang.OutOfMemoryError: Java heap space"),
         line(3, "ledger", 13, "slow query 2.1 s"),
         b"not json"]


def documents():
    return [d for i, raw in enumerate(LINES) if (d := search.document(raw, f"0-{i}"))]


def test_only_parsed_warn_and_above_lines_become_documents_of_their_day():
    docs = documents()
    assert [d.source["kafka"] for d in docs] == ["0-0", "0-2", "0-3"]
    assert docs[0].id == search.document(LINES[0]).id != docs[1].id  # the line's digest, Kafka id or not
    assert {d.index for d in docs} == {INDEX}
    assert docs[0].source["timestamp_ms"] == DAY_NS // 1_000_000


def test_lines_are_found_by_service_and_by_a_word_of_a_dotted_exception(client):
    assert client.bulk(documents(), refresh=True) == search.BulkResult(3, 0)
    by_service = client.search(INDEX, {"term": {"resource.service.name": "ledger"}})
    assert [d["kafka"] for d in by_service] == ["0-2", "0-3"]
    oom = client.search(INDEX, {"match": {"body": "OutOfMemoryError"}})
    assert [d["kafka"] for d in oom] == ["0-2"]
    assert client.search(INDEX, {"term": {"attributes.exception.type": "java.lang.OutOfMemoryError"}})


def test_a_one_megabyte_body_is_indexed_cut_and_found(client):
    huge = line(9, "statements", 17, "x" * 1_048_576 + " OutOfMemoryError")
    doc = search.document(huge)
    assert doc.source["body_truncated"] and len(doc.source["body"]) == search.MAX_BODY_CHARS
    assert client.bulk([doc], refresh=True) == search.BulkResult(1, 0)
    assert client.count(INDEX, {"term": {"resource.service.name": "statements"}}) == 1


def test_a_document_refused_for_itself_is_counted_not_raised(client):
    client.bulk(documents(), refresh=True)
    odd = search.Document(INDEX, "odd", {"timestamp_ms": "not a date", "severity_number": 17})
    result = client.bulk([odd, *documents()], refresh=True)
    assert (result.indexed, result.rejected) == (3, 1) and "timestamp_ms" in json.dumps(result.first_error)


def test_reindexing_the_same_lines_adds_no_copy(client):
    client.bulk(documents(), refresh=True)
    client.bulk(documents(), refresh=True)
    assert client.count(INDEX) == 3


def test_indices_older_than_the_ttl_are_deleted(client):
    client.bulk(documents(), refresh=True)
    assert INDEX not in client.delete_older_than(7, now=lambda: datetime(2026, 3, 9, tzinfo=UTC))
    assert INDEX in client.delete_older_than(7, now=lambda: datetime(2026, 3, 10, tzinfo=UTC))
    assert INDEX not in client.indices()


def test_an_alerts_search_link_finds_the_services_lines(client):
    client.bulk(documents(), refresh=True)
    rules = load_rules()
    engine = RuleEngine(rules, opensearch_url=client.base_url)
    engine.now = DAY_NS / 1e9 + 10
    link = engine.search_link("ledger", rules.rules[0])
    hits = httpx.get(link, timeout=30).json()["hits"]["hits"]
    assert sorted(h["_source"]["kafka"] for h in hits) == ["0-2", "0-3"]


def test_an_unreachable_node_raises_search_unavailable():
    with pytest.raises(search.SearchUnavailable, match="unreachable"):
        search.SearchClient("http://127.0.0.1:9", timeout_s=1).bulk(documents())


def test_a_document_spliced_from_the_parsed_line_is_the_one_the_json_way_builds(client):
    """The job's fast way for a WARN+ line (``parsed_document``: our keys spliced into the
    line's bytes) gives the same id, index and source as :func:`search.document`, and the
    node takes it."""
    warn = {i: raw for i, raw in enumerate(LINES[:4]) if json.loads(raw)["severity_number"] >= search.MIN_SEVERITY}
    spliced = [search.parsed_document(raw, f"0-{i}", json.loads(raw)["timestamp"]) for i, raw in warn.items()]
    for doc, (i, raw) in zip(spliced, warn.items(), strict=True):
        parsed = search.document(raw, f"0-{i}")
        assert isinstance(doc.source, bytes)
        assert (doc.index, doc.id, json.loads(doc.source)) == (parsed.index, parsed.id, parsed.source)
    # A line the splice cannot take goes the JSON way: too long, or holding one of our keys.
    huge = line(9, "statements", 17, "x" * 1_048_576)
    assert search.parsed_document(huge, "0-9", json.loads(huge)["timestamp"]).source["body_truncated"]
    ours = LINES[0].replace(b'"body"', b'"kafka": "theirs", "body"')
    assert search.parsed_document(ours, "0-5", json.loads(ours)["timestamp"]).source["kafka"] == "0-5"
    assert client.bulk(spliced, refresh=True) == search.BulkResult(3, 0)
    assert [d["kafka"] for d in client.search(INDEX, {"term": {"resource.service.name": "ledger"}})] == ["0-2", "0-3"]
