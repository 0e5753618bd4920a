"""What on-call searches: WARN-and-above lines in daily OpenSearch indices.

Only these lines are parsed and indexed (the lake keeps everything, raw): an index a day,
``app-logs-YYYY.MM.DD`` by event time, each document the line's own JSON plus
``timestamp_ms`` (a date field) and, when known, ``kafka`` (partition-offset). The document
id is a digest of the line's bytes, so a replayed batch, a forwarder's resend or a catch-up
from the lake re-indexes the same document instead of adding a copy. A rehydrated window goes to ``app-logs-rehydrated-<name>``, same mapping.

The template gives one node's indices no replica (a single node would stay yellow), a
``body`` analyzed on non-word characters (the standard analyzer keeps
``java.lang.OutOfMemoryError`` as one token, and a search for ``OutOfMemoryError`` would
find nothing), and keywords for service, severity and exception type.

Plain HTTP through httpx: the bulk, template, search and delete calls are all this needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx

OPENSEARCH_CONN_ID = "opensearch"
INDEX_PREFIX = "app-logs"
REHYDRATED_PREFIX = f"{INDEX_PREFIX}-rehydrated"
MIN_SEVERITY = 13  # WARN and above (OpenTelemetry severity numbers)
MAX_BODY_CHARS = 16_384  # of a body, indexed; the whole line stays in the lake

INDEX_TEMPLATE = {
    "index_patterns": [f"{INDEX_PREFIX}-*"],
    "template": {
        "settings": {
            "number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s",
            # DEFLATE, not the default LZ4, for stored fields: LZ4 leaves runs of the lines'
            # digits (ns timestamps) as raw literals cut at arbitrary points, and the PAN
            # scan of the node's files took such fragments for card numbers.
            "codec": "best_compression",
            "analysis": {
                "tokenizer": {"non_word": {"type": "pattern", "pattern": "\\W+"}},
                # A term of more than 32 KB is refused with its whole document: a 1 MB body
                # of one "word" must still be indexed (cut), not break the bulk request.
                "filter": {"term_cap": {"type": "truncate", "length": 256}},
                "analyzer": {"log_text": {"type": "custom", "tokenizer": "non_word",
                                          "filter": ["lowercase", "term_cap"]}},
            },
        },
        "mappings": {
            "dynamic": True,
            "properties": {
                "timestamp_ms": {"type": "date", "format": "epoch_millis"},
                "timestamp": {"type": "long"},
                "observed_timestamp": {"type": "long"},
                "severity_number": {"type": "integer"},
                "severity_text": {"type": "keyword"},
                "body": {"type": "text", "analyzer": "log_text"},
                "kafka": {"type": "keyword"},
                "trace_id": {"type": "keyword"},
                "span_id": {"type": "keyword"},
                "resource": {"properties": {"service.name": {"type": "keyword"}, "host.name": {"type": "keyword"},
                                            "deployment.environment": {"type": "keyword"}}},
                "attributes": {"properties": {"exception.type": {"type": "keyword"},
                                              "exception.message": {"type": "text", "analyzer": "log_text"},
                                              "incident.id": {"type": "keyword"},
                                              "log.record.uid": {"type": "keyword"}}},
            },
        },
    },
}


class SearchUnavailable(RuntimeError):
    """OpenSearch did not take the documents; the lake still has them (index them later)."""


def daily_index(day: date, prefix: str = INDEX_PREFIX) -> str:
    return f"{prefix}-{day:%Y.%m.%d}"


@dataclass(frozen=True)
class Document:
    index: str
    id: str
    source: dict | bytes  # bytes: the JSON object as it goes in the bulk request


_SPLICE_SAFE_BYTES = MAX_BODY_CHARS  # a line this short has a body short enough to index whole
_ADDED_KEYS = (b'"timestamp_ms"', b'"kafka"')


def document_id(line: bytes) -> str:
    return hashlib.blake2b(line, digest_size=12).hexdigest()


def document(line: bytes, kafka_id: str | None = None, index: Callable[[date], str] = daily_index,
             min_severity: int = MIN_SEVERITY) -> Document | None:
    """The line as a document if on-call searches it (parsed, WARN+, with a timestamp)."""
    try:
        record = json.loads(line)
        severity, ts_ns = record["severity_number"], record["timestamp"]
    except (ValueError, TypeError, KeyError):
        return None  # malformed: the lake keeps it, the job counts it
    if not isinstance(severity, int) or not isinstance(ts_ns, int) or severity < min_severity:
        return None
    record["timestamp_ms"] = ts_ns // 1_000_000
    if isinstance(record.get("body"), str) and len(record["body"]) > MAX_BODY_CHARS:
        record["body"] = record["body"][:MAX_BODY_CHARS]
        record["body_truncated"] = True
    if kafka_id:
        record["kafka"] = kafka_id
    return Document(index(datetime.fromtimestamp(ts_ns / 1e9, UTC).date()), document_id(line), record)


def parsed_document(line: bytes, kafka_id: str, event_ts_ns: int,
                    index: Callable[[date], str] = daily_index) -> Document | None:
    """:func:`document` for a WARN+ line whose time the job has already parsed.

    The common line (a UTF-8 JSON object, short, without our two keys) becomes its document
    by splicing ``timestamp_ms`` and ``kafka`` into its bytes: no JSON round trip, which was
    most of the indexing step's own time. Any other line takes :func:`document`'s way.
    """
    if (len(line) > _SPLICE_SAFE_BYTES or not line.startswith(b"{") or any(k in line for k in _ADDED_KEYS)
            or not line.isascii() and not _is_utf8(line)):
        return document(line, kafka_id, index)
    head = b'{"timestamp_ms":%d,"kafka":"%s",' % (event_ts_ns // 1_000_000, kafka_id.encode())
    return Document(index(datetime.fromtimestamp(event_ts_ns / 1e9, UTC).date()), document_id(line),
                    head + line[1:])


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode()
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class BulkResult:
    indexed: int
    rejected: int
    first_error: dict | None = None


@dataclass
class SearchClient:
    base_url: str
    timeout_s: float = 30.0

    @classmethod
    def from_connection(cls, conn_id: str = OPENSEARCH_CONN_ID) -> SearchClient:
        from flowgate.common.connections import http_base_url

        return cls(http_base_url(conn_id))

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = httpx.request(method, f"{self.base_url}{path}", timeout=self.timeout_s, **kwargs)
        except httpx.HTTPError as exc:
            raise SearchUnavailable(f"OpenSearch at {self.base_url} unreachable: {exc}") from exc
        if response.status_code >= 500:
            raise SearchUnavailable(f"OpenSearch {method} {path}: HTTP {response.status_code} {response.text[:200]}")
        return response

    def ensure_template(self) -> None:
        self._request("PUT", f"/_index_template/{INDEX_PREFIX}", json=INDEX_TEMPLATE).raise_for_status()

    def bulk(self, documents: Iterable[Document], refresh: bool = False) -> BulkResult:
        """Index the documents (create or overwrite by id).

        Raises :class:`SearchUnavailable` when the node cannot take them now (down, or
        pushing back with 429/503): index them again later. A document refused for itself
        (a mapping conflict) is counted in the result, not raised: the lake keeps the line,
        and one odd line must not stop the indexing of the others.
        """
        lines = []
        for doc in documents:
            lines.append(b'{"index":{"_index":"%s","_id":"%s"}}' % (doc.index.encode(), doc.id.encode()))
            lines.append(doc.source if isinstance(doc.source, bytes) else json.dumps(doc.source).encode())
        if not lines:
            return BulkResult(0, 0)
        response = self._request("POST", "/_bulk" + ("?refresh=true" if refresh else ""),
                                 content=b"\n".join(lines) + b"\n", headers={"Content-Type": "application/x-ndjson"})
        response.raise_for_status()
        result = response.json()
        failed = [item["index"] for item in result["items"] if item["index"].get("error")] if result["errors"] else []
        transient = [f for f in failed if f.get("status", 0) in (429, 503)]
        if transient:
            raise SearchUnavailable(f"OpenSearch refused {len(transient)} document(s) for now: {transient[0]['error']}")
        return BulkResult(len(lines) // 2 - len(failed), len(failed), failed[0]["error"] if failed else None)

    def search(self, index: str, query: dict, size: int = 100) -> list[dict]:
        response = self._request("POST", f"/{index}/_search", json={"query": query, "size": size,
                                                                   "sort": [{"timestamp_ms": "asc"}]})
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [hit["_source"] for hit in response.json()["hits"]["hits"]]

    def count(self, index: str, query: dict | None = None) -> int:
        response = self._request("POST", f"/{index}/_count", json={"query": query or {"match_all": {}}})
        if response.status_code == 404:
            return 0
        response.raise_for_status()
        return response.json()["count"]

    def refresh(self, index: str) -> None:
        self._request("POST", f"/{index}/_refresh").raise_for_status()

    def _cat_indices(self, pattern: str, columns: str) -> list[dict]:
        response = self._request("GET", f"/_cat/indices/{pattern}", params={"format": "json", "h": columns})
        if response.status_code == 404:
            return []
        return response.raise_for_status().json()

    def indices(self, pattern: str = f"{INDEX_PREFIX}-*") -> list[str]:
        return sorted(row["index"] for row in self._cat_indices(pattern, "index"))

    def delete_index(self, index: str) -> None:
        response = self._request("DELETE", f"/{index}")
        if response.status_code != 404:
            response.raise_for_status()

    def delete_older_than(self, days: int, now: Callable[[], datetime]) -> list[str]:
        """Indices past the TTL, deleted: a daily index by its day, a rehydrated one by
        the day it was created (its window may be older than the TTL on purpose)."""
        cutoff = now().astimezone(UTC).date() - timedelta(days=days)
        old = []
        for row in self._cat_indices(f"{INDEX_PREFIX}-*", "index,creation.date"):
            name = row["index"]
            if name.startswith(REHYDRATED_PREFIX):
                day = datetime.fromtimestamp(int(row["creation.date"]) / 1000, UTC).date()
            else:
                day = index_day(name)
            if day and day < cutoff:
                old.append(name)
        for name in sorted(old):
            self.delete_index(name)
        return sorted(old)


def index_day(name: str) -> date | None:
    """The day of a daily index (``app-logs-2026.03.02``), None for other indices."""
    try:
        return datetime.strptime(name.removeprefix(f"{INDEX_PREFIX}-"), "%Y.%m.%d").date()
    except ValueError:
        return None
