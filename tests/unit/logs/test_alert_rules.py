"""The log alert rules on event time: each kind fires and resolves when it should, late
lines are not counted, and a snapshot restores the same engine."""

from __future__ import annotations

import json

import pytest

from flowgate.logs.redact import redact, sample_line
from flowgate.logs.rules import (
    BatchSummary,
    FingerprintSeen,
    PatternHit,
    RuleEngine,
    RuleSet,
    ServiceBucket,
    load_rules,
)

T0 = 1_780_000_000  # event time (epoch s), a multiple of the 5 s bucket

RULES = RuleSet.model_validate({
    "engine": {"bucket_s": 5, "lateness_s": 10, "env": "test"},
    "rules": [
        {"name": "Burst", "kind": "threshold", "severity": "critical", "count": 10, "window_s": 30,
         "runbook_section": "burst"},
        {"name": "Ratio", "kind": "error_ratio", "severity": "warning", "ratio": 0.5, "min_lines": 20,
         "window_s": 30, "runbook_section": "ratio"},
        {"name": "Silent", "kind": "absence", "severity": "critical", "window_s": 30, "runbook_section": "silent"},
        {"name": "Oom", "kind": "pattern", "severity": "critical", "regex": "OutOfMemoryError", "window_s": 30,
         "runbook_section": "oom"},
        {"name": "NewType", "kind": "new_fingerprint", "severity": "warning", "lookback_days": 7, "learn_s": 20,
         "window_s": 60, "runbook_section": "new"},
    ],
})


def steady(t: int, services=("api", "ledger"), lines=10, error=0, **extra) -> BatchSummary:
    return BatchSummary(buckets=tuple(ServiceBucket(s, t, lines, error=error if s == "api" else 0)
                                      for s in services), max_event_ts=t + 4, **extra)


def names(alerts) -> list[tuple[str, str]]:
    return [(a.labels["alertname"], a.labels["service"]) for a in alerts]


def run(engine: RuleEngine, summaries) -> list:
    out = []
    for summary in summaries:
        engine.observe(summary)
        out.append(engine.evaluate())
    return out


def test_the_repo_rules_load_and_cover_every_kind():
    kinds = {r.kind for r in load_rules().rules}
    assert kinds == {"threshold", "error_ratio", "absence", "pattern", "new_fingerprint"}


def test_duplicate_rule_names_are_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    rule = {"name": "A", "kind": "absence", "severity": "warning", "window_s": 5, "runbook_section": "a"}
    path.write_text(json.dumps({"rules": [rule, rule]}))
    with pytest.raises(ValueError, match="unique"):
        load_rules(path)


def test_threshold_fires_with_labels_and_annotations_then_resolves_when_the_window_passes():
    engine = RuleEngine(RULES)
    quiet = run(engine, [steady(T0), steady(T0 + 5)])
    assert all(not t.firing for t in quiet)
    burst = run(engine, [steady(T0 + 10, error=6, error_samples=(("api", "boom card [PAN]"),)),
                         steady(T0 + 15, error=6)])
    assert burst[0].firing == [] and names(burst[1].started) == [("Burst", "api")]
    alert = burst[1].started[0]
    assert alert.labels == {"alertname": "Burst", "rule": "threshold", "service": "api", "severity": "critical",
                            "env": "test"}
    assert alert.annotations["sample"] == "boom card [PAN]"
    assert alert.annotations["runbook_url"].endswith("app_logs_stream.md#burst")
    assert "api" in alert.annotations["opensearch_url"] and "12 ERROR+" in alert.annotations["summary"]
    later = run(engine, [steady(T0 + 20 + 5 * i) for i in range(6)])
    assert names(later[0].firing) == [("Burst", "api")] and later[0].started == []
    resolved = [t for t in later if t.resolved]
    assert len(resolved) == 1 and names(resolved[0].resolved) == [("Burst", "api")]
    assert not later[-1].firing


def test_error_ratio_needs_enough_lines():
    engine = RuleEngine(RULES)
    few = run(engine, [steady(T0, lines=8, error=6)])[0]
    assert "Ratio" not in [n for n, _ in names(few.firing)]
    many = run(engine, [steady(T0 + 5, lines=20, error=15)])[0]
    assert ("Ratio", "api") in names(many.firing) and ("Ratio", "ledger") not in names(many.firing)


def test_absence_fires_for_a_silent_service_and_resolves_when_it_logs_again():
    engine = RuleEngine(RULES)
    run(engine, [steady(T0)])
    silent = run(engine, [steady(T0 + 5 * i, services=("api",)) for i in range(1, 9)])
    fired = [t for t in silent if t.started]
    assert names(fired[0].started) == [("Silent", "ledger")]
    assert "no log line" in fired[0].started[0].annotations["summary"]
    back = run(engine, [steady(T0 + 45)])[0]
    assert names(back.resolved) == [("Silent", "ledger")]


def test_pattern_hits_fire_with_their_sample():
    engine = RuleEngine(RULES)
    hit = PatternHit("Oom", "ledger", T0, 1, "java.lang.OutOfMemoryError: Java heap space")
    t = run(engine, [steady(T0, patterns=(hit,))])[0]
    assert names(t.started) == [("Oom", "ledger")]
    assert t.started[0].annotations["sample"].startswith("java.lang.OutOfMemoryError")


def test_a_new_exception_type_fires_once_learned_types_do_not():
    engine = RuleEngine(RULES)
    learned = FingerprintSeen("api", "TimeoutError", T0 + 1, "TimeoutError: upstream")
    assert not run(engine, [steady(T0, fingerprints=(learned,))])[0].firing
    again = FingerprintSeen("api", "TimeoutError", T0 + 31, "TimeoutError: upstream")
    new = FingerprintSeen("api", "SchemaDriftError", T0 + 31, "SchemaDriftError: column x")
    t = run(engine, [steady(T0 + 30, fingerprints=(again, new))])[0]
    assert [(a.labels["alertname"], a.labels["fingerprint"]) for a in t.started] == [("NewType", "SchemaDriftError")]
    # still firing within its window, resolved after it
    assert run(engine, [steady(T0 + 60)])[0].firing
    assert names(run(engine, [steady(T0 + 100)])[0].resolved) == [("NewType", "api")]


def test_a_type_last_seen_more_than_the_lookback_ago_is_new_again():
    engine = RuleEngine(RULES)
    run(engine, [steady(T0, fingerprints=(FingerprintSeen("api", "OldError", T0, "x"),))])
    eight_days = T0 + 8 * 86400
    t = run(engine, [steady(eight_days, fingerprints=(FingerprintSeen("api", "OldError", eight_days, "x"),))])[0]
    assert [a.labels["fingerprint"] for a in t.started] == ["OldError"]


def test_lines_behind_the_watermark_are_not_counted():
    engine = RuleEngine(RULES)
    run(engine, [steady(T0 + 60)])
    late = BatchSummary(buckets=(ServiceBucket("api", T0, 50, error=50),), max_event_ts=T0 + 4)
    t = run(engine, [late])[0]
    assert engine.late_lines == 50 and engine.now == T0 + 64
    assert ("Burst", "api") not in names(t.firing)


def test_a_restored_snapshot_evaluates_like_the_engine_it_came_from():
    first = RuleEngine(RULES)
    history = [steady(T0 + 5 * i, error=3) for i in range(5)]
    run(first, history)
    saved = json.loads(json.dumps(first.snapshot()))
    assert "boom" not in json.dumps(saved)  # counts, never bodies (no sample was given)
    second = RuleEngine.restore(RULES, saved)
    nxt = steady(T0 + 25, error=3)
    a, b = run(first, [nxt])[0], run(second, [nxt])[0]
    assert names(a.firing) == names(b.firing) and names(a.started) == names(b.started) == []
    assert first.snapshot() == second.snapshot()


@pytest.mark.parametrize("line, hidden", [
    ("charge 4111 1111 1111 1111 declined", "4111"),
    ("card=5500-0000-0000-0004 ok", "5500"),
    ("user jane.doe@example.com logged in", "jane.doe"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGci"),
    ('{"password": "hunter22", "user": "x"}', "hunter22"),
    ("from 10.12.0.7 port 443", "10.12.0.7"),
])
def test_samples_are_redacted(line, hidden):
    assert hidden not in redact(line)


def test_samples_are_cut_and_keep_ordinary_text():
    assert redact("order 123456 failed") == "order 123456 failed"
    assert len(redact("x" * 5000)) == 500


def test_a_partition_read_ahead_does_not_make_the_others_lines_late():
    engine = RuleEngine(RULES)  # lateness 10 s
    ahead = BatchSummary(buckets=(ServiceBucket("api", T0 + 60, 10),), max_event_ts=T0 + 64,
                         partition_max_ts=((0, T0 + 64), (1, T0 + 24)))
    engine.observe(ahead, processed_at=1000.0)
    assert engine.now == T0 + 24, "now is the slowest partition"
    behind = BatchSummary(buckets=(ServiceBucket("api", T0 + 25, 40, error=40),), max_event_ts=T0 + 29,
                          partition_max_ts=((1, T0 + 29),))
    engine.observe(behind, processed_at=1001.0)
    assert engine.late_lines == 0 and ("Burst", "api") in names(engine.evaluate().firing)


def test_a_partition_gone_quiet_stops_holding_event_time_back():
    engine = RuleEngine(RULES)  # idle_partition_s 30
    engine.observe(BatchSummary(buckets=(), max_event_ts=T0, partition_max_ts=((0, T0), (1, T0))), processed_at=1000.0)
    engine.observe(BatchSummary(buckets=(), max_event_ts=T0 + 50, partition_max_ts=((0, T0 + 50),)), processed_at=1010.0)
    assert engine.now == T0, "partition 1 was heard from 10 s ago: it still counts"
    engine.observe(BatchSummary(buckets=(), max_event_ts=T0 + 90, partition_max_ts=((0, T0 + 90),)), processed_at=1040.0)
    assert engine.now == T0 + 90


def test_a_sample_shows_severity_service_and_body_redacted():
    line = json.dumps({"timestamp": 1796192266000000000, "severity_text": "ERROR", "body": "card 4111111111111111 declined",
                       "resource": {"service.name": "card-gateway"}}).encode()
    assert sample_line(line) == "ERROR card-gateway: card [PAN] declined"
    assert sample_line(b"\xff not json 4111111111111111") == "\ufffd not json [PAN]"


def test_a_firing_alerts_figures_are_refreshed_but_it_keeps_its_start():
    engine = RuleEngine(RULES)
    first = run(engine, [steady(T0, error=12)])[0].started[0]
    later = run(engine, [steady(T0 + 5, error=12)])[0].firing
    burst = next(a for a in later if a.labels["alertname"] == "Burst")
    assert burst.starts_at == first.starts_at and "24 ERROR+" in burst.annotations["summary"]


def test_a_batch_spanning_more_than_the_lateness_keeps_its_own_early_lines():
    engine = RuleEngine(RULES)  # lateness 10 s
    minute = BatchSummary(buckets=tuple(ServiceBucket("api", T0 + 5 * i, 10) for i in range(12)),
                          max_event_ts=T0 + 59, partition_max_ts=((0, T0 + 59),))
    engine.observe(minute, processed_at=1000.0)
    assert engine.late_lines == 0 and sum(c[0] for c in engine.buckets.values()) == 120
