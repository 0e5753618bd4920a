"""One micro-batch of ``app.logs``, on the driver: lake, search, rules, alerts, state.

``spark_jobs/app_logs.py`` reads the topic (bounded per trigger) and hands the batch over
as an Arrow table of Kafka's coordinates and raw bytes (:data:`fields.RAW_COLUMNS`).
:class:`BatchProcessor` then, in this order:

0. **parse** — the few fields the rules need (``flowgate.logs.fields``);
1. **lake** — every line, as received, into its batch objects (a replay rewrites them);
2. **search** — WARN+ lines handed to the indexer's thread (``flowgate.logs.indexing``),
   which indexes them into the daily index behind the lake; what it has not confirmed is
   pending by lake object key, saved with the state, and indexed from the lake later;
3. **rules** — the batch's counts into the event-time engine, then an evaluation;
4. **alerts** — firing alerts posted to Alertmanager (new ones at once, all of them every
   ``repost_s``), resolved ones once; what Alertmanager did not take stays pending. A
   resolution goes out only ``resolve_after_s`` after Alertmanager took the alert as
   firing (it is sent firing first if it never was): Alertmanager never notifies a group
   that only ever held resolved alerts, so an incident that began and ended during an
   outage, or within two quick batches, would otherwise never reach on-call;
5. **state** — the engine and what is pending, saved under the batch id.

Alerts pending are also retried between batches (:meth:`BatchProcessor.retry_pending`,
from a timer thread of the job), and the indexer retries on its own: catching up after an
outage must not wait for the next line to arrive.

A lost alert is the one thing the flow may not do, so the lake write is the only step
that fails the batch (Spark then replays it); search and alert outages are absorbed and
caught up. After a driver crash the processor starts from the state saved for the last
batch *before* the one Spark replays, so the replay is evaluated as it was the first time.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowgate.common.alertmanager import Alert, AlertmanagerClient, AlertsNotDelivered, AlertsRejected
from flowgate.logs import lake, search
from flowgate.logs.fields import RAW_COLUMNS, append_fields, match_column, parse_fields
from flowgate.logs.indexing import Indexer, IndexWork
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

SNAPSHOTS_KEPT = 5
STAGES = ("arrow", "parse", "lake", "index", "rules", "alerts", "state")


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
    index_pending_batches: int = 0  # lake objects the indexer has not confirmed yet
    index_busy_s: float = 0.0  # the indexer thread's time in building and sending bulks
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

    index_keys: list[str] = field(default_factory=list)  # lake objects still to index (the indexer's)
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
                 gzip_level: int = 3, index_prefix: str = search.INDEX_PREFIX,
                 on_progress: Callable[[], None] = lambda: None, query: str = ""):
        self.rules, self.s3, self.search, self.alerts, self.state = rules, s3, search_client, alerts, state
        self.bucket, self.clock, self.gzip_level, self.index_prefix = bucket, clock, gzip_level, index_prefix
        self.on_progress = on_progress  # the heartbeat shows what a thread did between batches
        self.query = query  # the streaming query's tag in the lake's object names (lake.query_tag)
        self.engine: RuleEngine | None = None
        self.pending = PendingWork()
        self.last_post = 0.0
        self.totals = Totals()
        self.patterns = [(r.name, re.compile(r.regex)) for r in rules.of_kind("pattern")]
        self.pattern_rules = [name for name, _ in self.patterns]
        self.lock = threading.Lock()  # Spark's batch thread and the retry timer
        self.last_attempt = 0.0  # monotonic time a batch or a retry last tried what is pending
        self.indexer = Indexer(search_client, self._lake_lines, self._daily, on_progress=self._indexed)

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
        columns = table.select(list(RAW_COLUMNS)).to_pydict()
        lap("arrow")
        parsed = parse_fields(columns["value"], self.patterns)
        columns |= parsed
        table = append_fields(table, parsed)
        lap("parse")
        objects = self._store_in_lake(batch_id, columns)
        lap("lake")
        self._hand_to_indexer(columns, [o.key for o in objects])
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
        """Post the alerts pending when no batch has tried them for ``idle_s``: a stream
        that goes quiet after an outage still catches up. True if it had work.

        The state of the last batch is saved again with what is still pending, so a
        replay of the next batch does not post again what was done meanwhile.
        """
        with self.lock:
            if self.engine is None or time.monotonic() - self.last_attempt < idle_s:
                return False
            if not self.pending.alerts:
                return False
            self._alert(Transitions())
            self._save(self.engine_batch)
            self.last_attempt = time.monotonic()
            self._count_pending()
            return True

    def _save(self, batch_id: int) -> None:
        self.pending.index_keys = self.indexer.pending
        self.state.save(batch_id, {"engine": self.engine.snapshot(), "pending": asdict(self.pending)})

    def _count_pending(self) -> None:
        self.totals.index_pending_batches = len(self.indexer.pending)
        self.totals.alerts_pending = len(self.pending.alerts)

    def _restore(self, batch_id: int) -> None:
        saved = self.state.before(batch_id)
        where = {"opensearch_url": self.search.base_url, "index_prefix": self.index_prefix}
        self.engine = (RuleEngine.restore(self.rules, saved["engine"], **where)
                       if saved else RuleEngine(self.rules, **where))
        self.pending = PendingWork(**saved["pending"]) if saved else PendingWork()
        self.indexer.restore(self.pending.index_keys)
        self.engine_batch = batch_id - 1

    def _store_in_lake(self, batch_id: int, columns: dict) -> list[lake.LakeObject]:
        if not columns["offset"]:
            return []
        objects = lake.batch_objects(batch_id, columns["partition"], columns["offset"], columns["kafka_ts_ms"],
                                     columns["value"], level=self.gzip_level, query=self.query)
        lake.put_objects(self.s3, objects, self.bucket)  # an error here fails the batch: Spark replays it
        self.totals.lake_objects += len(objects)
        self.totals.enveloped += sum(o.malformed for o in objects)
        return objects

    def _hand_to_indexer(self, columns: dict, keys: list[str]) -> None:
        """This batch's WARN+ lines, indexed behind the lake by the indexer's thread."""
        warn = search.MIN_SEVERITY
        lines = tuple((f"{p}-{o}", ts, v) for p, o, v, sev, ts in zip(
            columns["partition"], columns["offset"], columns["value"], columns["severity_number"],
            columns["event_ts_ns"], strict=True) if sev is not None and sev >= warn and ts is not None)
        self.indexer.submit(IndexWork(tuple(keys), lines))

    def _indexed(self) -> None:
        """The indexer's progress into the counters, and the heartbeat."""
        t, counts = self.totals, self.indexer.counts
        t.indexed, t.index_rejected, t.index_busy_s = counts.indexed, counts.rejected, round(counts.busy_s, 3)
        t.index_pending_batches = len(self.indexer.pending)
        self.on_progress()

    def _lake_lines(self, key: str):
        return (lake.original_line(line) for line in lake.read_lines(self.s3, key, self.bucket))

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
