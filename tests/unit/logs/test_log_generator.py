"""The load generator: ten-plus services in the mix asked for, deterministic for a seed,
incidents where and when they are scheduled (and marked), malformed lines on request."""

from __future__ import annotations

import json
import statistics
from collections import Counter

import pytest

from flowgate.logs import generator as gen
from flowgate.logs.record import parse_line

START_NS = 1_767_225_600_000_000_000
RATE = 1000.0


def run(mix: gen.LoadMix, count: int, seed: int = 5) -> tuple[gen.LogGenerator, list[dict]]:
    generator = gen.LogGenerator(mix, seed=seed, start_ns=START_NS)
    return generator, [json.loads(line) for line in generator.lines(count)]


def service(record: dict) -> str:
    return record["resource"]["service.name"]


def seconds(record: dict) -> float:
    return (record["timestamp"] - START_NS) / 1e9


def in_window(records, name, start_s, end_s):
    return [r for r in records if service(r) == name and start_s <= seconds(r) < end_s]


def test_at_least_ten_services_and_every_line_is_a_valid_otel_record():
    generator = gen.LogGenerator(gen.LoadMix(rate_per_s=RATE), seed=1, start_ns=START_NS)
    lines = generator.lines(3000)
    records = [parse_line(line) for line in lines]
    assert len(gen.DEFAULT_SERVICES) >= 10
    assert {r.resource.service_name for r in records} == {s.name for s in gen.DEFAULT_SERVICES}
    assert [r.attributes["log.record.uid"] for r in records] == [generator.uid(i) for i in range(3000)]
    assert len({r.trace_id for r in records}) == 3000


def test_event_times_follow_the_rate():
    _, records = run(gen.LoadMix(rate_per_s=250.0), 1000)
    assert [r["timestamp"] - START_NS for r in records[:3]] == [0, 4_000_000, 8_000_000]
    assert all(0 <= r["observed_timestamp"] - r["timestamp"] < 3_000_000 for r in records)


def test_same_seed_same_bytes_other_seed_other_lines():
    mix = gen.LoadMix(rate_per_s=RATE, incidents=(gen.ErrorBurst(id="b", service="ledger", start_s=1, duration_s=1),))
    first = gen.LogGenerator(mix, seed=9, start_ns=START_NS).lines(3000)
    assert first == gen.LogGenerator(mix, seed=9, start_ns=START_NS).lines(3000)
    assert first != gen.LogGenerator(mix, seed=10, start_ns=START_NS).lines(3000)


def test_the_mix_holds_service_shares_and_severity_mix():
    mix = gen.LoadMix(rate_per_s=RATE).with_service("kyc", weight=50, severity_mix={"INFO": 0.5, "ERROR": 0.5})
    _, records = run(mix, 40_000)
    counts = Counter(service(r) for r in records)
    total_weight = sum(s.weight for s in mix.services)
    assert counts["kyc"] / len(records) == pytest.approx(50 / total_weight, abs=0.02)
    kyc = Counter(r["severity_text"] for r in records if service(r) == "kyc")
    assert kyc["ERROR"] / sum(kyc.values()) == pytest.approx(0.5, abs=0.03)
    assert set(kyc) == {"INFO", "ERROR"}
    others = Counter(r["severity_text"] for r in records if service(r) == "ledger")
    assert others["ERROR"] / sum(others.values()) < 0.06


def test_an_error_burst_raises_the_services_errors_in_its_window_only():
    burst = gen.ErrorBurst(id="burst-1", service="payments-api", start_s=10, duration_s=10, error_ratio=0.6)
    generator, records = run(gen.LoadMix(rate_per_s=RATE, incidents=(burst,)), 30_000)

    def error_share(lines):
        return sum(r["severity_text"] == "ERROR" for r in lines) / len(lines)

    assert error_share(in_window(records, "payments-api", 10, 20)) > 0.55
    assert error_share(in_window(records, "payments-api", 0, 10)) < 0.06
    assert error_share(in_window(records, "payments-api", 20, 30)) < 0.06
    marked = [r for r in records if r["attributes"].get("incident.id") == "burst-1"]
    assert marked and all(service(r) == "payments-api" and 10 <= seconds(r) < 20 for r in marked)
    first = generator.first_lines["burst-1"]
    assert records[first.seq] == marked[0] and first.timestamp_ns == marked[0]["timestamp"]


def test_a_silent_service_writes_nothing_in_its_window_and_the_rest_carry_on():
    silent = gen.ServiceSilent(id="quiet", service="auth", start_s=5, duration_s=10)
    generator, records = run(gen.LoadMix(rate_per_s=RATE, incidents=(silent,)), 20_000)
    assert not in_window(records, "auth", 5, 15)
    assert in_window(records, "auth", 0, 5) and in_window(records, "auth", 15, 20)
    assert len([r for r in records if 5 <= seconds(r) < 15]) == 10_000  # the rate holds
    assert generator.first_lines["quiet"] == gen.FirstLine(5000, START_NS + 5 * 10**9)


def test_a_latency_spike_multiplies_the_services_durations():
    spike = gen.LatencySpike(id="slow", service="ledger", start_s=5, duration_s=5, factor=20)
    _, records = run(gen.LoadMix(rate_per_s=RATE, incidents=(spike,)), 15_000)

    def median(lines):
        return statistics.median(r["attributes"]["duration_ms"] for r in lines)

    assert median(in_window(records, "ledger", 5, 10)) > 10 * median(in_window(records, "ledger", 0, 5))
    assert all(r["attributes"]["incident.id"] == "slow" for r in in_window(records, "ledger", 5, 10))
    assert median(in_window(records, "auth", 5, 10)) < 2 * median(in_window(records, "auth", 0, 5))


def test_a_new_exception_type_appears_only_in_its_window():
    novel = gen.NewException(id="oom", service="statements", start_s=5, duration_s=5,
                             exception_type="java.lang.OutOfMemoryError", ratio=0.5)
    _, records = run(gen.LoadMix(rate_per_s=RATE, incidents=(novel,)), 15_000)
    normal = {t for s in gen.DEFAULT_SERVICES for t, _ in s.exceptions}
    with_it = [r for r in records if r["attributes"].get("exception.type") == "java.lang.OutOfMemoryError"]
    assert "java.lang.OutOfMemoryError" not in normal
    assert with_it and all(service(r) == "statements" and 5 <= seconds(r) < 10 for r in with_it)
    assert all(r["attributes"]["incident.id"] == "oom" and r["body"].startswith("java.lang.OutOfMemoryError")
               for r in with_it)


def test_an_exception_the_services_already_throw_is_not_new():
    with pytest.raises(ValueError, match="not new"):
        gen.LoadMix(incidents=(gen.NewException(id="x", service="ledger", start_s=0, duration_s=1,
                                                exception_type="java.net.SocketTimeoutException"),))


def test_incidents_parse_from_the_cli_form():
    incident = gen.parse_incident("error_burst:payments-api:10:30")
    assert incident == gen.ErrorBurst(id="error_burst-payments-api-10", service="payments-api",
                                      start_s=10.0, duration_s=30.0)
    with pytest.raises(ValueError):
        gen.parse_incident("meltdown:ledger:1:2")


def test_malformed_lines_are_what_they_say():
    generator = gen.LogGenerator(gen.LoadMix(), seed=2, start_ns=START_NS)
    not_json = generator.malformed("not_json")
    with pytest.raises(ValueError):
        json.loads(not_json)
    missing = json.loads(generator.malformed("missing_fields"))
    assert "severity_text" not in missing and "resource" not in missing
    huge = generator.malformed("huge_body")
    assert len(json.loads(huge)["body"]) == gen.HUGE_BODY_BYTES
    bad = generator.malformed("invalid_utf8")
    with pytest.raises(UnicodeDecodeError):
        bad.decode("utf-8")
    # Each names its uid, so a test can find it downstream.
    assert b"2-0" in not_json and missing["attributes"]["log.record.uid"] == "2-1" and b'"2-3"' in bad


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pace_spreads_the_lines_over_the_rate_in_batches():
    clock, batches = FakeClock(), []
    generator = gen.LogGenerator(gen.LoadMix(rate_per_s=RATE), seed=1, start_ns=START_NS)
    report = gen.pace(generator, batches.append, 10_000, 2000.0, clock=clock, sleep=clock.sleep)
    assert sum(map(len, batches)) == report.lines == 10_000
    assert max(map(len, batches)) == 20                   # 10 ms of lines at 2000/s
    assert clock.now == pytest.approx(9_999 / 2000.0, abs=0.02)


def test_pace_without_a_rate_does_not_sleep():
    clock, batches = FakeClock(), []
    generator = gen.LogGenerator(gen.LoadMix(), seed=1, start_ns=START_NS)
    gen.pace(generator, batches.append, 2_000, None, batch=500, clock=clock, sleep=clock.sleep)
    assert clock.now == 0.0 and [len(b) for b in batches] == [500] * 4
