"""The fraud flow's part of ``make demo``: the stream started from Airflow, a burst of
payments with planted fraud, an outage of the tokenizer, and what came out.

Everything here is the platform's own: the ``fraud_stream`` DAG submits the job, the
gateway simulator produces to ``payments.events``, the real tokenizer is stopped and
started, and the figures are read back from ``fraud.decisions``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from flowgate.common import stream_supervisor as supervisor
from flowgate.common.connections import kafka_bootstrap, postgres_dsn
from flowgate.common.heartbeat import read_heartbeat
from flowgate.fraud import drill, envelope, gateway
from flowgate.fraud.stream import KAFKA_CONN_ID, STORE_CONN_ID, fraud_stream_spec

DAG_ID = "fraud_stream"
EVENTS_TOPIC = "payments.events"

Echo = Callable[[str], None]


def ensure_model(echo: Echo) -> str:
    from flowgate.fraud.model import NoModelError, load_current_model, models_dir, promote, save_model, train_model

    try:
        return load_current_model().version
    except NoModelError:
        echo("No fraud model yet: training one (60,000 simulated payments) ...")
        model, metrics = train_model(transactions=60_000)
        promote(save_model(model, models_dir()), models_dir())
        echo(f"  model {model.version}: hold-out precision {metrics['precision']:.3f}, "
             f"recall {metrics['recall']:.3f}, AUC {metrics['auc']:.4f}")
        return model.version


def start_from_airflow(api, echo: Echo, timeout_s: float = 300) -> supervisor.StreamSpec:
    """Trigger ``fraud_stream`` with action=start and wait for the job's first heartbeat."""
    spec = fraud_stream_spec()
    api.wait_for_dag(DAG_ID)
    api.unpause(DAG_ID)
    run_id = api.trigger(DAG_ID, conf={"action": "start"})
    echo(f"Triggered {DAG_ID} ({run_id}): the supervisor submits the Spark job detached ...")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        heartbeat = read_heartbeat(spec.heartbeat_file)
        started = supervisor.driver_started_at(spec)
        if heartbeat and started and heartbeat.written_at >= started:
            echo(f"  stream up: driver pid {supervisor.driver_pid(spec)}, heartbeat {heartbeat.state}")
            return spec
        time.sleep(2)
    raise RuntimeError(f"the fraud stream sent no heartbeat within {timeout_s:.0f}s; see {spec.state_dir}")


def burst(count: int, rate: float, public_key, seed: int) -> tuple[list, list[tuple[str, bytes]]]:
    transactions = list(gateway.simulate(count, 0.03, seed, datetime.now(UTC), rate))
    return transactions, [(tx.transaction_id, gateway.to_event_bytes(tx, public_key)) for tx in transactions]


def decided(store_dsn: str, ids: list[str]) -> list[dict]:
    with psycopg.connect(store_dsn) as conn:
        cursor = conn.execute(
            "select transaction_id::text, decision, scored, reason_codes, "
            "extract(epoch from decided_at - produced_at) * 1000 "
            "from fraud.decisions where transaction_id = any(%s::uuid[])", (ids,))
        return [dict(zip(("id", "decision", "scored", "reasons", "latency_ms"), row, strict=True))
                for row in cursor.fetchall()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def describe_burst(echo: Echo, transactions: list, rows: list[dict]) -> None:
    by_id = {row["id"]: row for row in rows}
    echo(f"  decided {len(rows):,} of {len(transactions):,}: "
         + ", ".join(f"{d} {n:,}" for d, n in sorted(Counter(r["decision"] for r in rows).items())))
    fraud = [t for t in transactions if t.label]
    caught = sum(by_id[t.transaction_id]["decision"] != "approve" for t in fraud if t.transaction_id in by_id)
    legit_ok = sum(by_id[t.transaction_id]["decision"] == "approve" for t in transactions
                   if not t.label and t.transaction_id in by_id)
    echo(f"  planted fraud flagged (review/decline): {caught:,} of {len(fraud):,}; "
         f"legitimate approved: {legit_ok:,} of {len(transactions) - len(fraud):,}")
    for pattern, n in sorted(Counter(t.pattern for t in fraud).items()):
        hit = sum(by_id.get(t.transaction_id, {}).get("decision", "approve") != "approve"
                  for t in fraud if t.pattern == pattern)
        echo(f"    {pattern:<14} {hit:>5,} of {n:,} flagged")
    latencies = [float(r["latency_ms"]) for r in rows]
    echo(f"  gateway produce → decision recorded: p50 {percentile(latencies, .50):.0f} ms, "
         f"p95 {percentile(latencies, .95):.0f} ms, p99 {percentile(latencies, .99):.0f} ms: a driver started "
         "seconds ago, beside Airflow (bench/fraud_latency.py measures a warm one, against the Kafka floor)")


def tokenizer_outage(spec, public_key, store_dsn: str, bootstrap: str, echo: Echo, outage_s: float = 10) -> None:
    """A second burst while the real tokenizer is stopped and started again."""
    from flowgate.devstack import process, tokenizer
    from flowgate.devstack.config import StackConfig

    # 30 s of traffic: 5 s normal, the outage, then long enough after the restart for the
    # breaker's trial call (5 s after it opened) to close it while payments still flow.
    transactions, events = burst(12_000, 400, public_key, random.randrange(1 << 30))
    sender = threading.Thread(target=gateway.produce, args=(bootstrap, EVENTS_TOPIC, events, 400))
    service = tokenizer.tokenizer_service(StackConfig.from_env())
    echo(f"\nSecond burst (12,000 at 400/s); the tokenizer is stopped for {outage_s:.0f}s in the middle ...")
    sender.start()
    time.sleep(5)
    process.stop(service)
    try:
        time.sleep(outage_s)
    finally:
        process.start(service)
    sender.join()
    ids = [tx_id for tx_id, _ in events]
    drill.wait_until_decided(store_dsn, ids, timeout_s=300)
    rows = decided(store_dsn, ids)
    unscored = Counter(r["reasons"][0] for r in rows if not r["scored"])
    echo(f"  decided {len(rows):,} of {len(ids):,}; without the tokenizer: "
         + (", ".join(f"{reason} {n:,}" for reason, n in unscored.items()) or "none"))
    order = {tx_id: i for i, tx_id in enumerate(ids)}
    last_unscored = max((order[r["id"]] for r in rows if not r["scored"]), default=-1)
    rescored = sum(1 for r in rows if r["scored"] and order[r["id"]] > last_unscored)
    echo(f"  scored again after the restart: the last {rescored:,} payments of the burst")
    heartbeat = read_heartbeat(spec.heartbeat_file)
    if heartbeat:
        echo(f"  breaker opened {heartbeat.app.get('breaker_opened', 0)} time(s); now {heartbeat.app.get('breaker_state')}; "
             f"consumer lag {heartbeat.consumer_lag}")


def run(api, echo: Echo) -> None:
    echo("\n--- Fraud detection (flow 1) ---")
    version = ensure_model(echo)
    store_dsn, bootstrap = postgres_dsn(STORE_CONN_ID), kafka_bootstrap(KAFKA_CONN_ID)
    key_path = gateway.sealing_key_path()
    if key_path is None:
        raise RuntimeError("no tokenizer public key: the stack's tokenizer creates it on its first start")
    public_key = envelope.load_public_key(key_path)
    spec = start_from_airflow(api, echo)
    try:
        transactions, events = burst(10_000, 1_000, public_key, random.randrange(1 << 30))
        echo(f"\nBurst: 10,000 payments at 1,000/s ({sum(t.label for t in transactions)} planted fraud), "
             f"model {version} ...")
        gateway.produce(bootstrap, EVENTS_TOPIC, events, 1_000)
        ids = [tx_id for tx_id, _ in events]
        drill.wait_until_decided(store_dsn, ids, timeout_s=300)
        describe_burst(echo, transactions, decided(store_dsn, ids))
        tokenizer_outage(spec, public_key, store_dsn, bootstrap, echo)
    finally:
        supervisor.stop(spec, on_purpose=True)
        api.pause(DAG_ID)
        echo("\nStream stopped on purpose (the supervisor leaves it stopped); "
             "`flowgate fraud stream start` resumes it from its checkpoint.")

