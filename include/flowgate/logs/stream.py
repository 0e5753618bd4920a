"""One micro-batch of ``app.logs``, on the driver: lake, search, rules, alerts, state.

``spark_jobs/app_logs.py`` reads the topic (bounded per trigger), lets Spark parse the few
fields the rules need, and hands the batch over as an Arrow table (:data:`BATCH_COLUMNS`).
:class:`BatchProcessor` then, in this order:

1. **lake** — every line, as received, into its batch objects (a replay rewrites them);
2. **search** — WARN+ lines into the daily index; when OpenSearch is down the batch's
   lake objects are remembered and indexed from the lake once it answers again;
3. **rules** — the batch's counts into the event-time engine, then an evaluation;
4. **alerts** — firing alerts posted to Alertmanager (new ones at once, all of them every
   ``repost_s``), resolved ones once; what Alertmanager did not take stays pending. A
   resolution goes out only ``resolve_after_s`` after Alertmanager took the alert as
   firing (it is sent firing first if it never was): Alertmanager never notifies a group
   that only ever held resolved alerts, so an incident that began and ended during an
   outage, or within two quick batches, would otherwise never reach on-call;
5. **state** — the engine and what is pending, saved under the batch id.

What is pending is also retried between batches (:meth:`BatchProcessor.retry_pending`,
from a timer thread of the job): catching up after an outage must not wait for the next
line to arrive.

A lost alert is the one thing the flow may not do, so the lake write is the only step
that fails the batch (Spark then replays it); search and alert outages are absorbed and
caught up. After a driver crash the processor starts from the state saved for the last
batch *before* the one Spark replays, so the replay is evaluated as it was the first time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowgate.common.alertmanager import Alert, AlertmanagerClient, AlertsNotDelivered, AlertsRejected
from flowgate.logs import lake, search
from flowgate.logs.redact import sample_line
from flowgate.logs.rules import (
    BatchSummary,
    FingerprintSeen,
    PatternHit,
    RuleEngine,
    RuleSet,
    ServiceBucket,
    Transitions,
)

# What Spark hands over per line: Kafka's coordinates, the raw bytes, and the parsed
# fields (null when the line is not a log record). One ``match_<rule>`` boolean per pattern rule.
BATCH_COLUMNS = ("partition", "offset", "kafka_ts_ms", "value", "service", "severity_number", "event_ts_ns",
                 "exception_type")
SNAPSHOTS_KEPT = 5
STAGES = ("arrow", "lake", "index", "rules", "alerts", "state")


def match_column(rule_name: str) -> str:
    return f"match_{rule_name}"


@dataclass
class Totals:
    """Counts since the driver started, for the heartbeat and the bench."""

    batches: int = 0
    lines: int = 0
    malformed: int = 0  # not a log record (not JSON, no service, time or severity): kept raw, counted
    enveloped: int = 0  # stored in an envelope (invalid UTF-8, raw newline)
    lake_objects: int = 0
    indexed: int = 0
    index_rejected: int = 0  # refused by OpenSearch for themselves (kept in the lake)
    index_pending_batches: int = 0
    alerts_started: int = 0
    alerts_resolved: int = 0
    alerts_pending: int = 0
    late_lines: int = 0
    last_batch_s: float = 0.0
    # Where the driver's time went, seconds summed over every batch (the last batch's in
    # ``last_stages_s``): what a bench or a profile reads first.
    stages_s: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    last_stages_s: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


@dataclass
class PendingWork:
    """What a batch could not finish and a later one will: saved with the state."""

    index_keys: list[str] = field(default_factory=list)  # lake objects still to index
    alerts: list[dict] = field(default_factory=list)  # Alertmanager postable alerts not yet taken
    notified: dict[str, float] = field(default_factory=dict)  # alert identity -> when AM took it firing


def _identity(body: dict) -> str:
    """An alert's identity for Alertmanager: all its labels (same labels, same alert)."""
    return json.dumps(body["labels"], sort_keys=True)


def alert_of(state, ended: bool = False) -> Alert:
    # startsAt is event time, endsAt the wall clock. A host whose clock runs ahead would give
    # a start in the future: an end before it Alertmanager refuses (400), an end after it
    # keeps the alert firing there until then, so the resolution reaches on-call late. No
    # alert starts later than now.
    now = datetime.now(UTC)
    starts = min(datetime.fromtimestamp(state.starts_at, UTC), now)
    ends = max(now, starts + timedelta(seconds=1)) if ended else None
    return Alert.of(state.labels, state.annotations, starts_at=starts, ends_at=ends)


class StateStore:
    """The engine's snapshot and the pending work, one JSON file per batch id."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, batch_id: int) -> Path:
        return self.folder / f"state-{batch_id:012d}.json"

    def save(self, batch_id: int, state: dict) -> None:
        tmp = self._path(batch_id).with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._path(batch_id))  # whole or absent, never half a file
        for old in sorted(self.folder.glob("state-*.json"))[:-SNAPSHOTS_KEPT]:
            old.unlink(missing_ok=True)

    def before(self, batch_id: int) -> dict | None:
        """The newest state saved for a batch before ``batch_id``."""
        for path in sorted(self.folder.glob("state-*.json"), reverse=True):
            if int(path.stem.split("-")[1]) < batch_id:
                return json.loads(path.read_text())
        return None


class BatchProcessor:
    def __init__(self, rules: RuleSet, s3, search_client: search.SearchClient, alerts: AlertmanagerClient,
                 state: StateStore, bucket: str = lake.LAKE_BUCKET, clock: Callable[[], float] = time.time,
                 gzip_level: int = 3, index_prefix: str = search.INDEX_PREFIX):
        self.rules, self.s3, self.search, self.alerts, self.state = rules, s3, search_client, alerts, state
        self.bucket, self.clock, self.gzip_level, self.index_prefix = bucket, clock, gzip_level, index_prefix
        self.engine: RuleEngine | None = None
        self.pending = PendingWork()
        self.last_post = 0.0
        self.totals = Totals()
        self.pattern_rules = [r.name for r in rules.of_kind("pattern")]
        self.template_set = False  # the index template, set once OpenSearch first answers
        self.lock = threading.Lock()  # Spark's batch thread and the retry timer
        self.last_attempt = 0.0  # monotonic time a batch or a retry last tried what is pending

    # ------------------------------------------------------------------ the batch

    def process(self, batch_id: int, table) -> None:
        with self.lock:
            self._process(batch_id, table)

    def _process(self, batch_id: int, table) -> None:
        started = time.perf_counter()
        stages, mark = {}, started

        def lap(stage: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            stages[stage], mark = now - mark, now

        if self.engine is None or self.engine_batch >= batch_id:
            self._restore(batch_id)
        columns = table.to_pydict()
        lap("arrow")
        objects = self._store_in_lake(batch_id, columns)
        lap("lake")
        self._index(columns, [o.key for o in objects])
        lap("index")
        self.engine.observe(self.summarize(table), processed_at=self.clock())
        transitions = self.engine.evaluate()
        lap("rules")
        self._alert(transitions)
        lap("alerts")
        self._save(batch_id)
        lap("state")
        self.engine_batch = batch_id
        self.last_attempt = time.monotonic()
        t = self.totals
        t.last_stages_s = {k: round(v, 3) for k, v in stages.items()}
        t.stages_s = {k: round(t.stages_s.get(k, 0.0) + v, 3) for k, v in stages.items()}
        t.batches += 1
        t.lines += len(columns["offset"])
        # What summarize() leaves out of the rules: no service, event time or severity.
        t.malformed += sum(1 for svc, ts, sev in zip(columns["service"], columns["event_ts_ns"],
                                                     columns["severity_number"], strict=True)
                           if svc is None or ts is None or sev is None)
        t.late_lines = self.engine.late_lines
        self._count_pending()
        t.last_batch_s = round(time.perf_counter() - started, 3)

    def retry_pending(self, idle_s: float = 2.0) -> bool:
        """Index and post what is pending when no batch has tried it for ``idle_s``: a
        stream that goes quiet after an outage still catches up. True if it had work.

        The state of the last batch is saved again with what is still pending, so a
        replay of the next batch does not post or index again what was done meanwhile.
        """
        with self.lock:
            if self.engine is None or time.monotonic() - self.last_attempt < idle_s:
                return False
            if not (self.pending.index_keys or self.pending.alerts):
                return False
            self._index({"partition": [], "offset": [], "value": [], "severity_number": []}, [])
            self._alert(Transitions())
            self._save(self.engine_batch)
            self.last_attempt = time.monotonic()
            self._count_pending()
            return True

    def _save(self, batch_id: int) -> None:
        self.state.save(batch_id, {"engine": self.engine.snapshot(), "pending": asdict(self.pending)})

    def _count_pending(self) -> None:
        self.totals.index_pending_batches = len(self.pending.index_keys)
        self.totals.alerts_pending = len(self.pending.alerts)

    def _restore(self, batch_id: int) -> None:
        saved = self.state.before(batch_id)
        where = {"opensearch_url": self.search.base_url, "index_prefix": self.index_prefix}
        self.engine = (RuleEngine.restore(self.rules, saved["engine"], **where)
                       if saved else RuleEngine(self.rules, **where))
        self.pending = PendingWork(**saved["pending"]) if saved else PendingWork()
        self.engine_batch = batch_id - 1

    def _store_in_lake(self, batch_id: int, columns: dict) -> list[lake.LakeObject]:
        if not columns["offset"]:
            return []
        objects = lake.batch_objects(batch_id, columns["partition"], columns["offset"], columns["kafka_ts_ms"],
                                     columns["value"], level=self.gzip_level)
        lake.put_objects(self.s3, objects, self.bucket)  # an error here fails the batch: Spark replays it
        self.totals.lake_objects += len(objects)
        self.totals.enveloped += sum(o.malformed for o in objects)
        return objects

    def _index(self, columns: dict, keys: list[str]) -> None:
        """This batch's WARN+ lines, after any batch still pending (from the lake)."""
        try:
            if not self.template_set:
                self.search.ensure_template()
                self.template_set = True
            while self.pending.index_keys:
                self._count(self.search.bulk(self._documents_in(self.pending.index_keys[0])))
                self.pending.index_keys.pop(0)
            self._count(self.search.bulk(
                d for p, o, v, s in zip(columns["partition"], columns["offset"], columns["value"],
                                        columns["severity_number"], strict=True)
                if s is not None and s >= search.MIN_SEVERITY and (d := search.document(v, f"{p}-{o}", self._daily))))
        except search.SearchUnavailable as exc:
            self.pending.index_keys += [k for k in keys if k not in self.pending.index_keys]
            print(f"app_logs: search unavailable, {len(self.pending.index_keys)} lake object(s) to index later: "
                  f"{exc}", flush=True)

    def _count(self, result: search.BulkResult) -> None:
        self.totals.indexed += result.indexed
        if result.rejected:
            self.totals.index_rejected += result.rejected
            print(f"app_logs: OpenSearch rejected {result.rejected} document(s) (kept in the lake): "
                  f"{result.first_error}", flush=True)

    def _documents_in(self, key: str):
        for line in lake.read_lines(self.s3, key, self.bucket):
            if doc := search.document(lake.original_line(line), index=self._daily):
                yield doc

    def _daily(self, day) -> str:
        return search.daily_index(day, self.index_prefix)

    # ------------------------------------------------------------------ rules input

    def summarize(self, table) -> BatchSummary:
        """The batch reduced to what the rules keep: counts, hits, fingerprints, samples."""
        import pyarrow as pa
        import pyarrow.compute as pc

        parsed = table.filter(pc.and_(pc.is_valid(table["service"]),
                                      pc.and_(pc.is_valid(table["event_ts_ns"]), pc.is_valid(table["severity_number"]))))
        if parsed.num_rows == 0:
            return BatchSummary()
        size = self.rules.engine.bucket_s
        seconds = pc.divide(parsed["event_ts_ns"], 1_000_000_000)
        newest = pa.table({"partition": parsed["partition"], "ts": seconds}).group_by("partition").aggregate(
            [("ts", "max")]).to_pylist()
        bucket = pc.multiply(pc.divide(seconds, size), size)
        severity = parsed["severity_number"]
        level = lambda lo, hi: pc.cast(pc.and_(pc.greater_equal(severity, lo), pc.less(severity, hi)), pa.int64())  # noqa: E731
        frame = pa.table({"service": parsed["service"], "bucket": bucket, "warn": level(13, 17),
                          "error": level(17, 21), "fatal": level(21, 25)})
        grouped = frame.group_by(["service", "bucket"]).aggregate(
            [("service", "count"), ("warn", "sum"), ("error", "sum"), ("fatal", "sum")]).to_pylist()
        buckets = tuple(ServiceBucket(g["service"], int(g["bucket"]), g["service_count"], g["warn_sum"],
                                      g["error_sum"], g["fatal_sum"]) for g in grouped)
        # Only the few lines a rule looks at one by one (an error, an exception, a pattern
        # hit) become Python rows: converting all of them was most of this step's time.
        wanted = pc.or_(pc.greater_equal(severity, 17), pc.is_valid(parsed["exception_type"]))
        for rule in self.pattern_rules:
            wanted = pc.or_(wanted, parsed[match_column(rule)])
        rows = parsed.filter(wanted).select(["service", "event_ts_ns", "severity_number", "value", "exception_type",
                                             *(match_column(r) for r in self.pattern_rules)]).to_pylist()
        patterns: dict[tuple[str, str, int], list] = {}
        fingerprints: dict[tuple[str, str], list] = {}
        samples: dict[str, str] = {}
        for row in rows:
            b = int(row["event_ts_ns"] // 1_000_000_000 // size * size)
            for rule in self.pattern_rules:
                if row[match_column(rule)]:
                    hit = patterns.setdefault((rule, row["service"], b), [0, row["value"]])
                    hit[0] += 1
            if row["exception_type"]:
                seen = fingerprints.setdefault((row["service"], row["exception_type"]), [0.0, row["value"]])
                seen[0] = max(seen[0], row["event_ts_ns"] / 1e9)
            if row["severity_number"] >= 17 and row["service"] not in samples:
                samples[row["service"]] = row["value"]
        return BatchSummary(
            buckets=buckets,
            patterns=tuple(PatternHit(r, s, b, n, sample_line(v)) for (r, s, b), (n, v) in patterns.items()),
            fingerprints=tuple(FingerprintSeen(s, f, t, sample_line(v)) for (s, f), (t, v) in fingerprints.items()),
            error_samples=tuple((s, sample_line(v)) for s, v in samples.items()),
            max_event_ts=pc.max(seconds).as_py(),
            partition_max_ts=tuple((g["partition"], float(g["ts_max"])) for g in newest))

    # ------------------------------------------------------------------ alerts out

    def _alert(self, transitions: Transitions) -> None:
        now = self.clock()
        due = bool(transitions.started) or now - self.last_post >= self.rules.engine.repost_s
        self.totals.alerts_started += len(transitions.started)
        self.totals.alerts_resolved += len(transitions.resolved)
        queue = [*self.pending.alerts, *(alert_of(a).to_api() for a in (transitions.firing if due else ())),
                 *(alert_of(a, ended=True).to_api() for a in transitions.resolved)]
        latest = {_identity(body): body for body in queue}  # the newest word on each alert
        notified, hold = self.pending.notified, self.rules.engine.resolve_after_s
        outgoing, deferred = [], []
        for key, body in latest.items():
            if "endsAt" not in body:
                outgoing.append(body)
            elif key not in notified:  # never taken as firing: fire it now, resolve it later
                outgoing.append({k: v for k, v in body.items() if k != "endsAt"})
                deferred.append(body)
            elif now - notified[key] < hold:  # let Alertmanager notify FIRING first
                deferred.append(body)
            else:
                outgoing.append(body)
        if not outgoing:
            self.pending.alerts = deferred
            return
        try:
            self.alerts.post([Alert.from_api(body) for body in outgoing])
        except AlertsRejected as exc:  # a bug on our side: say so loudly, do not retry forever
            print(f"app_logs: Alertmanager rejected alerts: {exc}", flush=True)
            self.pending.alerts = deferred
            return
        except AlertsNotDelivered as exc:
            # Keep the resolutions and what Alertmanager never took as firing; firing alerts
            # it already holds are re-posted every repost_s anyway.
            waiting = {_identity(body) for body in deferred}
            keep = [body for body in outgoing if _identity(body) not in waiting
                    and ("endsAt" in body or _identity(body) not in notified)]
            self.pending.alerts = keep + deferred
            print(f"app_logs: {exc}; {len(self.pending.alerts)} kept to post again", flush=True)
            return
        for body in outgoing:
            if "endsAt" in body:
                notified.pop(_identity(body), None)
            else:
                notified.setdefault(_identity(body), now)
        self.pending.alerts = deferred
        self.last_post = now if due else self.last_post
        # Forget alerts that are neither firing nor waiting to be resolved.
        live = {_identity(alert_of(a).to_api()) for a in self.engine.firing.values()} | {
            _identity(body) for body in deferred}
        self.pending.notified = {k: t for k, t in notified.items() if k in live}
