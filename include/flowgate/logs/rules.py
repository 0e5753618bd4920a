"""Alert rules over the log stream, on event time, with a watermark.

The Spark job reduces each micro-batch to a :class:`BatchSummary` — line and error
counts per service and time bucket, pattern hits, exception fingerprints, one redacted
sample line each — and hands it to :class:`RuleEngine` on the driver. The engine's state
is those counts and fingerprints, never a log body: it is small, it is saved with each
batch (:meth:`RuleEngine.snapshot`) and restored after a crash, so a replayed batch is
evaluated against the state it was first evaluated with.

Event time, per Kafka partition: each partition's event time is the newest it has
delivered, and "now" is the *slowest* of them (among partitions heard from in the last
``idle_partition_s`` of processing time; a partition gone quiet does not hold it back).
So when one partition's backlog is read ahead of another's (a burst through a sticky
producer, a replay), the other's older lines are not mistaken for late ones: a global
"newest line seen" would have dropped them, and with them an alert. "now" never moves
back. The watermark trails it by ``lateness_s``; a line older than the watermark is late:
the lake keeps it, the rules no longer count it (it is counted as late). Buckets older
than the longest window behind the watermark are forgotten.

Rules come from ``alert_rules/app_logs.yaml`` (see that file for each kind).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, Field

from flowgate.logs.search import INDEX_PREFIX

# OpenTelemetry severity numbers: 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL.
SEVERITY_FLOOR = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
ERROR = SEVERITY_FLOOR["ERROR"]
LEVELS = ("WARN", "ERROR", "FATAL")  # the levels a bucket counts (each line counts once, in its level)


def rules_file() -> Path:
    return Path(__file__).resolve().parents[3] / "alert_rules" / "app_logs.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineSettings(_Strict):
    bucket_s: int = Field(5, gt=0)
    lateness_s: int = Field(30, ge=0)
    repost_s: int = Field(30, gt=0)
    idle_partition_s: int = Field(30, gt=0)
    # A resolution is posted this long after Alertmanager took the alert as firing: more
    # than its group_wait (2 s), or the group's first notification would already be
    # "resolved", which Alertmanager never sends (see logs.stream).
    resolve_after_s: float = Field(10, ge=0)
    env: str = "local"
    runbook: str = "docs/runbooks/app_logs_stream.md"


class _Rule(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    severity: Literal["info", "warning", "critical"]
    window_s: int = Field(gt=0)
    services: tuple[str, ...] | None = None
    runbook_section: str

    def applies_to(self, service: str) -> bool:
        return self.services is None or service in self.services


class ThresholdRule(_Rule):
    kind: Literal["threshold"]
    min_severity: Literal["WARN", "ERROR", "FATAL"] = "ERROR"
    count: int = Field(gt=0)


class ErrorRatioRule(_Rule):
    kind: Literal["error_ratio"]
    ratio: float = Field(gt=0, le=1)
    min_lines: int = Field(gt=0)


class AbsenceRule(_Rule):
    kind: Literal["absence"]


class PatternRule(_Rule):
    kind: Literal["pattern"]
    regex: str

    @cached_property
    def compiled(self) -> re.Pattern:
        return re.compile(self.regex)


class NewFingerprintRule(_Rule):
    kind: Literal["new_fingerprint"]
    lookback_days: int = Field(7, gt=0)
    learn_s: int = Field(60, ge=0)


Rule = Annotated[ThresholdRule | ErrorRatioRule | AbsenceRule | PatternRule | NewFingerprintRule,
                 Field(discriminator="kind")]


class RuleSet(_Strict):
    engine: EngineSettings = EngineSettings()
    rules: tuple[Rule, ...]

    @property
    def longest_window_s(self) -> int:
        return max((r.window_s for r in self.rules), default=0)

    def of_kind(self, kind: str) -> list:
        return [r for r in self.rules if r.kind == kind]


def load_rules(path: Path | None = None) -> RuleSet:
    ruleset = RuleSet.model_validate(yaml.safe_load((path or rules_file()).read_text()))
    names = [r.name for r in ruleset.rules]
    if len(names) != len(set(names)):
        raise ValueError(f"{path or rules_file()}: rule names must be unique, got {names}")
    return ruleset


# --------------------------------------------------------------------------- what a batch tells


@dataclass(frozen=True)
class ServiceBucket:
    """One service's lines in one time bucket (``bucket`` = its start, epoch seconds)."""

    service: str
    bucket: int
    lines: int
    warn: int = 0
    error: int = 0
    fatal: int = 0


@dataclass(frozen=True)
class PatternHit:
    rule: str
    service: str
    bucket: int
    count: int
    sample: str


@dataclass(frozen=True)
class FingerprintSeen:
    service: str
    fingerprint: str  # the exception type
    last_ts: float
    sample: str


@dataclass(frozen=True)
class BatchSummary:
    buckets: tuple[ServiceBucket, ...] = ()
    patterns: tuple[PatternHit, ...] = ()
    fingerprints: tuple[FingerprintSeen, ...] = ()
    error_samples: tuple[tuple[str, str], ...] = ()  # (service, redacted ERROR+ line)
    max_event_ts: float | None = None
    partition_max_ts: tuple[tuple[int, float], ...] = ()  # (Kafka partition, its newest event time)


# --------------------------------------------------------------------------- alerts out


@dataclass(frozen=True)
class AlertState:
    """An alert as Alertmanager receives it (labels identify it; annotations describe it)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float  # event time the condition first held

    @property
    def key(self) -> str:
        return "|".join(f"{k}={v}" for k, v in sorted(self.labels.items()))


@dataclass
class Transitions:
    firing: list[AlertState] = field(default_factory=list)   # every alert whose condition holds now
    started: list[AlertState] = field(default_factory=list)  # ...of which these began with this batch
    resolved: list[AlertState] = field(default_factory=list)  # held before, no longer


# --------------------------------------------------------------------------- the engine


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass
class RuleEngine:
    rules: RuleSet
    opensearch_url: str = "http://127.0.0.1:9200"
    index_prefix: str = INDEX_PREFIX
    # state: counts, fingerprints, times — everything snapshot() saves
    now: float | None = None  # newest event time seen
    first_ts: float | None = None  # event time the engine first saw a line (fingerprint learning)
    buckets: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # -> [lines, warn, error, fatal]
    pattern_buckets: dict[tuple[str, str, int], int] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str], float] = field(default_factory=dict)  # -> last seen
    fresh_fingerprints: dict[tuple[str, str], float] = field(default_factory=dict)  # new ones -> last seen
    samples: dict[str, str] = field(default_factory=dict)  # rule|service -> a redacted line
    firing: dict[str, AlertState] = field(default_factory=dict)
    late_lines: int = 0
    partition_ts: dict[int, float] = field(default_factory=dict)  # partition -> newest event time
    partition_heard: dict[int, float] = field(default_factory=dict)  # partition -> processing time

    @property
    def watermark(self) -> float | None:
        return None if self.now is None else self.now - self.rules.engine.lateness_s

    def _bucket_of(self, ts: float) -> int:
        size = self.rules.engine.bucket_s
        return int(ts // size) * size

    # ---------------------------------------------------------------- observe

    def observe(self, summary: BatchSummary, processed_at: float | None = None) -> None:
        """Fold one batch into the state (lines behind the watermark are only counted as late).

        ``processed_at`` (processing time, epoch s) tells which partitions are still
        heard from; without it, or without partitions, the batch's newest line is "now".
        """
        # The watermark of the batches before this one, as Spark's: a batch's own early
        # lines are never late because of its own late ones.
        watermark = self.watermark
        if summary.max_event_ts is not None:
            self._advance(summary, processed_at)
            if self.first_ts is None:
                self.first_ts = min([b.bucket for b in summary.buckets] or [summary.max_event_ts])
        for b in summary.buckets:
            if watermark is not None and b.bucket + self.rules.engine.bucket_s <= watermark:
                self.late_lines += b.lines
                continue
            counts = self.buckets.setdefault((b.service, b.bucket), [0, 0, 0, 0])
            for i, n in enumerate((b.lines, b.warn, b.error, b.fatal)):
                counts[i] += n
            self.last_seen[b.service] = max(self.last_seen.get(b.service, 0.0), b.bucket + self.rules.engine.bucket_s)
        for hit in summary.patterns:
            if watermark is not None and hit.bucket + self.rules.engine.bucket_s <= watermark:
                continue
            key = (hit.rule, hit.service, hit.bucket)
            self.pattern_buckets[key] = self.pattern_buckets.get(key, 0) + hit.count
            self.samples.setdefault(f"{hit.rule}|{hit.service}", hit.sample)
        for fp in summary.fingerprints:
            self._observe_fingerprint(fp)
        for service, sample in summary.error_samples:
            self.samples[f"error|{service}"] = sample
        self._forget_old()

    def _advance(self, summary: BatchSummary, processed_at: float | None) -> None:
        """Move "now" to the slowest partition still heard from (never backwards)."""
        if not summary.partition_max_ts or processed_at is None:
            candidate = summary.max_event_ts
        else:
            for partition, ts in summary.partition_max_ts:
                self.partition_ts[partition] = max(self.partition_ts.get(partition, ts), ts)
                self.partition_heard[partition] = processed_at
            recent = processed_at - self.rules.engine.idle_partition_s
            active = [self.partition_ts[p] for p, heard in self.partition_heard.items() if heard >= recent]
            candidate = min(active)
        self.now = candidate if self.now is None else max(self.now, candidate)

    def _observe_fingerprint(self, fp: FingerprintSeen) -> None:
        key = (fp.service, fp.fingerprint)
        learning = [r for r in self.rules.of_kind("new_fingerprint") if r.applies_to(fp.service)]
        known_at = self.fingerprints.get(key)
        if key not in self.fresh_fingerprints and learning:
            rule = learning[0]
            lookback = rule.lookback_days * 86400
            unseen = known_at is None or fp.last_ts - known_at > lookback
            still_learning = self.first_ts is not None and fp.last_ts < self.first_ts + rule.learn_s
            if unseen and not still_learning:
                self.fresh_fingerprints[key] = fp.last_ts
                self.samples[f"{rule.name}|{fp.service}|{fp.fingerprint}"] = fp.sample
        if key in self.fresh_fingerprints:
            self.fresh_fingerprints[key] = max(self.fresh_fingerprints[key], fp.last_ts)
        self.fingerprints[key] = max(known_at or 0.0, fp.last_ts)

    def _forget_old(self) -> None:
        if self.watermark is None:
            return
        horizon = self.watermark - self.rules.longest_window_s - self.rules.engine.bucket_s
        self.buckets = {k: v for k, v in self.buckets.items() if k[1] >= horizon}
        self.pattern_buckets = {k: v for k, v in self.pattern_buckets.items() if k[2] >= horizon}
        lookback = max((r.lookback_days for r in self.rules.of_kind("new_fingerprint")), default=7) * 86400
        self.fingerprints = {k: v for k, v in self.fingerprints.items() if v >= self.now - lookback}

    # ---------------------------------------------------------------- evaluate

    def evaluate(self) -> Transitions:
        """Every rule against the state: what fires now, what began, what resolved."""
        holding: dict[str, AlertState] = {}
        if self.now is not None:
            for rule in self.rules.rules:
                for alert in getattr(self, f"_eval_{rule.kind}")(rule):
                    # Still the same alert (it started when it first held), with today's figures.
                    before = self.firing.get(alert.key)
                    holding[alert.key] = replace(alert, starts_at=before.starts_at) if before else alert
        result = Transitions(
            firing=sorted(holding.values(), key=lambda a: a.key),
            started=sorted((a for k, a in holding.items() if k not in self.firing), key=lambda a: a.key),
            resolved=sorted((a for k, a in self.firing.items() if k not in holding), key=lambda a: a.key))
        self.firing = holding
        return result

    def _window(self, rule, service: str) -> tuple[int, int, int, int]:
        """(lines, warn, error, fatal) of ``service`` in the rule's window ending now."""
        start = self.now - rule.window_s
        totals = [0, 0, 0, 0]
        for (svc, bucket), counts in self.buckets.items():
            if svc == service and bucket + self.rules.engine.bucket_s > start:
                for i in range(4):
                    totals[i] += counts[i]
        return tuple(totals)

    def _services(self, rule) -> list[str]:
        return sorted(s for s in self.last_seen if rule.applies_to(s))

    def _eval_threshold(self, rule: ThresholdRule):
        first = LEVELS.index(rule.min_severity) + 1
        for service in self._services(rule):
            counts = self._window(rule, service)
            n = sum(counts[first:])
            if n >= rule.count:
                yield self._alert(rule, service, f"{service}: {n} {rule.min_severity}+ lines in the last "
                                  f"{rule.window_s} s (threshold {rule.count})", self.samples.get(f"error|{service}"))

    def _eval_error_ratio(self, rule: ErrorRatioRule):
        for service in self._services(rule):
            lines, _, error, fatal = self._window(rule, service)
            if lines >= rule.min_lines and (error + fatal) / lines >= rule.ratio:
                yield self._alert(rule, service, f"{service}: {(error + fatal) / lines:.0%} of {lines} lines are "
                                  f"ERROR+ in the last {rule.window_s} s (limit {rule.ratio:.0%})",
                                  self.samples.get(f"error|{service}"))

    def _eval_absence(self, rule: AbsenceRule):
        for service in self._services(rule):
            silent_for = self.now - self.last_seen[service]
            if silent_for >= rule.window_s:
                yield self._alert(rule, service, f"{service} has sent no log line for {math.floor(silent_for)} s "
                                  f"of event time (since {_iso(self.last_seen[service])})", None)

    def _eval_pattern(self, rule: PatternRule):
        start = self.now - rule.window_s
        hits: dict[str, int] = defaultdict(int)
        for (name, service, bucket), n in self.pattern_buckets.items():
            if name == rule.name and bucket + self.rules.engine.bucket_s > start and rule.applies_to(service):
                hits[service] += n
        for service, n in sorted(hits.items()):
            yield self._alert(rule, service, f"{service}: {n} line(s) matching /{rule.regex}/ in the last "
                              f"{rule.window_s} s", self.samples.get(f"{rule.name}|{service}"))

    def _eval_new_fingerprint(self, rule: NewFingerprintRule):
        for (service, fingerprint), last in sorted(self.fresh_fingerprints.items()):
            if not rule.applies_to(service):
                continue
            if self.now - last >= rule.window_s:
                continue  # stays firing for a window after its last line, then resolves
            yield self._alert(rule, service, f"{service}: exception type {fingerprint} not seen in the last "
                              f"{rule.lookback_days} days", self.samples.get(f"{rule.name}|{service}|{fingerprint}"),
                              extra_labels={"fingerprint": fingerprint})
        self.fresh_fingerprints = {k: v for k, v in self.fresh_fingerprints.items() if self.now - v < rule.window_s}

    def _alert(self, rule, service: str, summary: str, sample: str | None,
               extra_labels: dict[str, str] | None = None) -> AlertState:
        settings = self.rules.engine
        labels = {"alertname": rule.name, "rule": rule.kind, "service": service, "severity": rule.severity,
                  "env": settings.env, **(extra_labels or {})}
        annotations = {"summary": summary, "sample": sample or "(no sample line)",
                       "runbook_url": f"{settings.runbook}#{rule.runbook_section}",
                       "opensearch_url": self.search_link(service, rule)}
        return AlertState(labels, annotations, starts_at=self.now)

    def search_link(self, service: str, rule) -> str:
        """An OpenSearch query for the alert's lines: the service, WARN and above, the window."""
        query = f'resource.service.name:"{service}" AND severity_number:>={SEVERITY_FLOOR["WARN"]}'
        since, until = int((self.now - rule.window_s) * 1000), int(self.now * 1000) + 1
        return (f"{self.opensearch_url}/{self.index_prefix}-*/_search?sort=timestamp_ms:desc&size=50"
                f"&q={quote(query + f' AND timestamp_ms:[{since} TO {until}]')}")

    # ---------------------------------------------------------------- state

    def snapshot(self) -> dict:
        """The state as JSON-ready values (counts, fingerprints and times; no log bodies)."""
        return {
            "now": self.now, "first_ts": self.first_ts, "late_lines": self.late_lines,
            "buckets": [[s, b, *c] for (s, b), c in self.buckets.items()],
            "pattern_buckets": [[r, s, b, n] for (r, s, b), n in self.pattern_buckets.items()],
            "last_seen": self.last_seen,
            "fingerprints": [[s, f, t] for (s, f), t in self.fingerprints.items()],
            "fresh_fingerprints": [[s, f, t] for (s, f), t in self.fresh_fingerprints.items()],
            "samples": self.samples,
            "partition_ts": [[p, t] for p, t in self.partition_ts.items()],
            "partition_heard": [[p, t] for p, t in self.partition_heard.items()],
            "firing": [{"labels": a.labels, "annotations": a.annotations, "starts_at": a.starts_at}
                       for a in self.firing.values()],
        }

    @classmethod
    def restore(cls, rules: RuleSet, snapshot: dict, **kwargs) -> RuleEngine:
        engine = cls(rules, **kwargs)
        engine.now, engine.first_ts = snapshot["now"], snapshot["first_ts"]
        engine.late_lines = snapshot.get("late_lines", 0)
        engine.buckets = {(s, b): list(c) for s, b, *c in snapshot["buckets"]}
        engine.pattern_buckets = {(r, s, b): n for r, s, b, n in snapshot["pattern_buckets"]}
        engine.last_seen = dict(snapshot["last_seen"])
        engine.fingerprints = {(s, f): t for s, f, t in snapshot["fingerprints"]}
        engine.fresh_fingerprints = {(s, f): t for s, f, t in snapshot["fresh_fingerprints"]}
        engine.samples = dict(snapshot["samples"])
        engine.partition_ts = {p: t for p, t in snapshot.get("partition_ts", [])}
        engine.partition_heard = {p: t for p, t in snapshot.get("partition_heard", [])}
        alerts = (AlertState(a["labels"], a["annotations"], a["starts_at"]) for a in snapshot["firing"])
        engine.firing = {a.key: a for a in alerts}
        return engine
