"""Benchmark: one finance business date end to end, against the COPY floor.

    .venv/bin/python bench/finance_daily.py [--postings 1000000] [--date 2026-06-30]

End to end = stage (snapshot COPY source → mart) + GX gate + reconciliation + atomic
publish with audit row, in-process (no scheduler overhead). The floor, measured in the
same run on the same data: PostgreSQL COPY of the day's postings out of core_banking and
into the finance mart, nothing else. Goal (issue 3): ≤ 60 s and ≤ 4× the floor.

Uses the local stack's PostgreSQL (started, and stopped again, if it was not running).
Prints a table, then one line of JSON with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import date

import psycopg
from psycopg import sql


@contextmanager
def local_postgres():
    from flowgate.devstack import postgres, process
    from flowgate.devstack.config import StackConfig

    cfg = StackConfig.from_env()
    service = postgres.postgres_service(cfg)
    started_here = process.status(service).pid is None
    process.start(service)
    postgres.ensure_databases(cfg)
    try:
        yield postgres.database_url(cfg, "core_banking"), postgres.database_url(cfg, "finance_mart")
    finally:
        if started_here:
            process.stop(service)


def copy_floor(source_dsn: str, mart_dsn: str, business_date: date) -> float:
    """COPY the day's postings out of the source and into a plain table of the mart."""
    with psycopg.connect(source_dsn) as src, psycopg.connect(mart_dsn) as mart:
        mart.execute("drop table if exists public.bench_copy_floor")
        mart.execute(
            "create table public.bench_copy_floor (posting_id bigint, transaction_id bigint, account_id bigint, "
            "gl_code text, currency text, side text, amount numeric(18,2), value_date date, posted_at timestamptz, "
            "status text, reversal_of bigint)")
        mart.commit()
        started = time.perf_counter()
        with src.cursor().copy(sql.SQL("copy (select * from core.postings where value_date = {}) to stdout").format(
                sql.Literal(business_date))) as out, \
                mart.cursor().copy("copy public.bench_copy_floor from stdin") as into:
            for chunk in out:
                into.write(chunk)
        mart.commit()
        elapsed = time.perf_counter() - started
        mart.execute("drop table public.bench_copy_floor")
        mart.commit()
    return elapsed


def end_to_end(source_dsn: str, mart_dsn: str, business_date: date) -> dict[str, float]:
    from flowgate.finance import pipeline

    run = pipeline.FinanceRun(business_date, "finance_daily_reporting", f"bench__{time.time_ns()}", "manual",
                              source_dsn, mart_dsn)
    steps: dict[str, float] = {}
    t = time.perf_counter()
    staged = pipeline.stage(run)
    steps["stage"] = time.perf_counter() - t
    t = time.perf_counter()
    expectations = pipeline.validate_staged_postings(run)
    steps["expectations_gate"] = time.perf_counter() - t
    t = time.perf_counter()
    reconciliation = pipeline.reconcile_to_control_totals(run)
    steps["reconciliation_gate"] = time.perf_counter() - t
    t = time.perf_counter()
    pipeline.publish(run, staged, [expectations, reconciliation])
    pipeline.drop_stage(run)
    steps["publish"] = time.perf_counter() - t
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--date", type=date.fromisoformat, default=date(2026, 6, 30))
    args = parser.parse_args()

    from flowgate.finance.generator import seed_finance

    evidence = tempfile.mkdtemp(prefix="flowgate-bench-evidence-")
    os.environ["FLOWGATE_EVIDENCE_DIR"] = evidence
    with local_postgres() as (source_dsn, mart_dsn):
        t = time.perf_counter()
        seed_finance(source_dsn, args.date, args.postings)
        seed_seconds = time.perf_counter() - t
        floor = copy_floor(source_dsn, mart_dsn, args.date)
        steps = end_to_end(source_dsn, mart_dsn, args.date)
    shutil.rmtree(evidence, ignore_errors=True)

    total = sum(steps.values())
    print(f"finance_daily: one business date, {args.postings:,} postings (seeding took {seed_seconds:.1f} s)")
    print(f"{'step':<22}{'seconds':>10}")
    for name, seconds in steps.items():
        print(f"{name:<22}{seconds:>10.2f}")
    print(f"{'end to end':<22}{total:>10.2f}   goal <= 60 s")
    print(f"{'floor: COPY out+in':<22}{floor:>10.2f}")
    print(f"{'ratio':<22}{total / floor:>10.2f}x  goal <= 4x")
    print(json.dumps({"bench": "finance_daily", "postings": args.postings, "steps_s": steps,
                      "end_to_end_s": round(total, 3), "copy_floor_s": round(floor, 3),
                      "ratio": round(total / floor, 2), "goal_s": 60, "goal_ratio": 4}))


if __name__ == "__main__":
    main()
