"""Benchmark: one finance business date end to end, against the COPY floor.

    .venv/bin/python bench/finance_daily.py [--postings 1000000] [--date 2026-06-30]

End to end = stage (snapshot COPY source → mart) + the two gates, side by side as the DAG
runs them (GX checkpoint ∥ reconciliation; the step is the longer of the two) + atomic
publish with audit row, in-process (no scheduler overhead). Nothing is imported ahead: the
GX gate pays for importing Great Expectations, pandas and pyarrow, as its task process
does. The floor, measured in the same run on the same data: PostgreSQL COPY of the day's
postings out of core_banking and into the finance mart, nothing else. Goal (issue 3):
≤ 60 s and ≤ 4× the floor.

Uses the local stack's PostgreSQL (started, and stopped again, if it was not running).
Prints a table, then one line of JSON with every figure. The machine's load moves every
figure (a shared 2-core box swings the ratio by ±1): run it more than once.

Last measured (1M postings, 2-core box): quiet, stage 2.3–2.8 s, gates 4.1–4.3 s (GX gate;
reconciliation 0.3 s beside it), publish 0.85 s, end to end 7.3–7.8 s against a floor of
2.1–2.4 s: 3.61×, 3.21×, 3.51×. Later the same day the host's CPU ran ~1.6× slower (the GX
import alone 4.1 s instead of 2.6 s): 4.19×, 3.76×, 4.09× while autovacuum still worked on
the re-seeded source, then 2.93×, 3.26×, 3.76× once the bench vacuumed it before timing.
The GX gate's critical path is the import of Great Expectations (the staged rows load
beside it in a child process); validation and Data Docs take ≈ 0.7 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date

import psycopg
from psycopg import sql


@contextmanager
def local_postgres():
    """The stack's PostgreSQL (started, and stopped again, if it was not running):
    (core_banking DSN, finance_mart DSN)."""
    from flowgate.devstack import postgres, stack
    from flowgate.devstack.config import StackConfig

    with stack.running(StackConfig.from_env(), {"postgres"}) as cfg:
        yield postgres.database_url(cfg, "core_banking"), postgres.database_url(cfg, "finance_mart")


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


def end_to_end(source_dsn: str, mart_dsn: str, business_date: date) -> tuple[dict[str, float], dict[str, float]]:
    """The DAG's critical path: stage, then both gates side by side (as the DAG runs
    them: each depends only on stage), then publish. Returns the steps that add up to end
    to end, and each gate's own time (the longer one is the gates' step).

    Nothing is imported ahead: the first gate to need Great Expectations, pandas or
    pyarrow pays for importing them, as each gate task's process does in Airflow. The two
    gates share this process (and its GIL) where Airflow gives each its own: if anything,
    that makes the bench slower than a real run.
    """
    from flowgate.finance import pipeline

    run = pipeline.FinanceRun(business_date, "finance_daily_reporting", f"bench__{time.time_ns()}", "manual",
                              source_dsn, mart_dsn)
    steps: dict[str, float] = {}
    t = time.perf_counter()
    staged = pipeline.stage(run)
    steps["stage"] = time.perf_counter() - t
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="gate") as pool:
        expectations = pool.submit(_timed, pipeline.validate_staged_postings, run)
        reconciliation = pool.submit(_timed, pipeline.reconcile_to_control_totals, run)
        (expectations, expectations_s), (reconciliation, reconciliation_s) = \
            expectations.result(), reconciliation.result()
    steps["gates (parallel)"] = time.perf_counter() - t
    t = time.perf_counter()
    pipeline.publish(run, staged, [expectations, reconciliation])
    pipeline.drop_stage(run)
    steps["publish"] = time.perf_counter() - t
    return steps, {"expectations_gate": expectations_s, "reconciliation_gate": reconciliation_s}


def settle_after_seeding(source_dsn: str) -> None:
    """Vacuum and analyze the freshly re-seeded source before anything is timed: otherwise
    autovacuum wakes up on the million rows the seed just replaced and shares the two cores
    with the measured steps (it made both the floor and the run up to 2x slower)."""
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("vacuum (analyze)")


def _timed(step, *args):
    started = time.perf_counter()
    result = step(*args)
    return result, time.perf_counter() - started


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
        settle_after_seeding(source_dsn)
        floor = copy_floor(source_dsn, mart_dsn, args.date)
        steps, gates = end_to_end(source_dsn, mart_dsn, args.date)
    shutil.rmtree(evidence, ignore_errors=True)

    total = sum(steps.values())
    print(f"finance_daily: one business date, {args.postings:,} postings (seeding took {seed_seconds:.1f} s)")
    print(f"{'step':<22}{'seconds':>10}")
    for name, seconds in steps.items():
        print(f"{name:<22}{seconds:>10.2f}")
        if name.startswith("gates"):
            for gate, gate_seconds in gates.items():
                print(f"  {gate:<20}{gate_seconds:>10.2f}")
    print(f"{'end to end':<22}{total:>10.2f}   goal <= 60 s")
    print(f"{'floor: COPY out+in':<22}{floor:>10.2f}")
    print(f"{'ratio':<22}{total / floor:>10.2f}x  goal <= 4x")
    print(json.dumps({"bench": "finance_daily", "postings": args.postings, "steps_s": steps, "gates_s": gates,
                      "end_to_end_s": round(total, 3), "copy_floor_s": round(floor, 3),
                      "ratio": round(total / floor, 2), "goal_s": 60, "goal_ratio": 4}))


if __name__ == "__main__":
    main()
