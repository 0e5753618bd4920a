"""``flowgate fraud``: train the model, run the payment gateway against the local stack."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import typer

fraud_app = typer.Typer(help="Fraud detection: train the model, simulate the payment gateway.",
                        no_args_is_help=True)

DEFAULT_TOPIC = "payments.events"


def _stack_config():
    from flowgate.devstack.config import StackConfig

    return StackConfig.from_env()


@fraud_app.command()
def train(
    transactions: int = typer.Option(200_000, min=1_000, help="Simulated payments to learn from (80 % train, "
                                                               "the later 20 % hold-out)."),
    fraud_rate: float = typer.Option(0.02, min=0.001, max=0.4, help="Share of planted fraud."),
    seed: int = typer.Option(7, help="Simulator seed: the same seed gives the same payments."),
    models_dir: Path = typer.Option(None, "--models-dir",
                                    help="Model registry (default: $FLOWGATE_HOME/models/fraud)."),
    promote_model: bool = typer.Option(True, "--promote/--no-promote",
                                       help="Make the new model the one the stream loads (current.json)."),
) -> None:
    """Train the fraud model on simulated payments, save it (JSON) and promote it."""
    from flowgate.fraud.model import models_dir as default_models_dir
    from flowgate.fraud.model import promote, save_model, train_model

    directory = models_dir or default_models_dir()
    typer.echo(f"Training on {transactions:,} simulated payments (fraud rate {fraud_rate}, seed {seed}) ...")
    started = time.perf_counter()
    model, metrics = train_model(transactions, fraud_rate, seed)
    path = save_model(model, directory)
    rows = metrics["train_rows"] + metrics["holdout_rows"]
    typer.echo(f"hold-out ({metrics['holdout_rows']:,} payments, the latest {100 * metrics['holdout_rows'] // rows} %):")
    typer.echo(f"  precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}  AUC {metrics['auc']:.4f}  "
               f"(flagged = review or decline)")
    typer.echo(f"  decline: precision {metrics['decline_precision']:.3f}  recall {metrics['decline_recall']:.3f}")
    typer.echo("  flagged by pattern: " + ", ".join(f"{p} {r:.0%}" for p, r in metrics["flag_rate_by_pattern"].items()))
    typer.echo(f"  thresholds: review {metrics['threshold_review']:.4f}, decline {metrics['threshold_decline']:.4f}")
    typer.echo(f"model {model.version} ({time.perf_counter() - started:.1f}s): {path}")
    if promote_model:
        typer.echo(f"promoted: {promote(path, directory)}")


@fraud_app.command()
def gateway(
    rate: float = typer.Option(1000.0, min=1.0, help="Payments per second."),
    duration: float = typer.Option(60.0, min=0.1, help="Seconds to send for (rate x duration payments)."),
    fraud_rate: float = typer.Option(0.02, min=0.0, max=0.4, help="Share of planted fraud."),
    seed: int = typer.Option(11, help="Simulator seed: the same seed gives the same payments and ids."),
    topic: str = typer.Option(DEFAULT_TOPIC, help="Kafka topic of the payment events."),
    bootstrap: str = typer.Option(None, help="Kafka bootstrap servers (default: the local stack's broker)."),
    public_key: Path = typer.Option(None, "--public-key", help="The tokenizer's envelope public key (PEM) "
                                    "(default: $FLOWGATE_TOKENIZER_PUBLIC_KEY, else the local stack's)."),
    truth: Path = typer.Option(None, "--truth", help="Write transaction_id,label,pattern of every payment "
                               "here (no card data), to score the decisions afterwards."),
) -> None:
    """Simulate the payment gateway: seal each PAN, then send the events at a steady rate."""
    from flowgate.devstack.config import LOOPBACK
    from flowgate.fraud.envelope import load_public_key
    from flowgate.fraud.gateway import produce, sealing_key_path, simulate, to_event_bytes, write_truth

    key_path = public_key or sealing_key_path()
    if key_path is None or not key_path.exists():
        typer.secho("error: no tokenizer public key: pass --public-key or set FLOWGATE_TOKENIZER_PUBLIC_KEY "
                    "(`flowgate up` creates the local one)", fg="red", err=True)
        raise typer.Exit(2)
    key = load_public_key(key_path)
    bootstrap = bootstrap or f"{LOOPBACK}:{_stack_config().ports.kafka}"
    count = max(1, round(rate * duration))
    # Event times start now; sealing and serialising happen before the timed run, so the
    # pacing measures the producer only (the produce time is the Kafka CreateTime).
    transactions = list(simulate(count, fraud_rate, seed, datetime.now(UTC), rate))
    typer.echo(f"Sealing {count:,} payments ({sum(t.label for t in transactions):,} planted fraud) ...")
    events = [(t.transaction_id, to_event_bytes(t, key)) for t in transactions]
    if truth is not None:
        typer.echo(f"truth: {write_truth(truth, transactions)}")
    del transactions  # the clear PANs are not needed any more
    typer.echo(f"Sending to {topic} on {bootstrap} at {rate:,.0f}/s for {count / rate:.1f}s ...")
    report = produce(bootstrap, topic, events, rate,
                     on_progress=lambda sent, elapsed: typer.echo(f"  {sent:,} sent in {elapsed:.0f}s"))
    typer.echo(report.summary())
    if report.failed:
        raise typer.Exit(1)


stream_app = typer.Typer(help="The fraud detection stream: start, stop, status (what the fraud_stream DAG does).",
                         no_args_is_help=True)
fraud_app.add_typer(stream_app, name="stream")


def _with_stack_connections() -> None:
    """The local stack's connections for anything not already in the environment (in
    Docker or production the environment has them all)."""
    from flowgate.devstack.env import stack_env

    for key, value in stack_env(_stack_config()).items():
        os.environ.setdefault(key, value)


@stream_app.command("start")
def stream_start() -> None:
    """Submit the stream detached (unless it runs already) and clear a stop."""
    from flowgate.common import stream_supervisor as supervisor
    from flowgate.fraud.stream import fraud_stream_spec

    _with_stack_connections()
    spec = fraud_stream_spec()
    supervisor.allow_start(spec)
    typer.echo(f"{spec.name}: driver pid {supervisor.submit(spec)} (state in {spec.state_dir})")


@stream_app.command("stop")
def stream_stop() -> None:
    """Stop the stream on purpose: the supervisor will not resubmit it until a start."""
    from flowgate.common import stream_supervisor as supervisor
    from flowgate.fraud.stream import fraud_stream_spec

    _with_stack_connections()
    spec = fraud_stream_spec()
    stopped = supervisor.stop(spec, on_purpose=True)
    typer.echo(f"{spec.name}: {'stopped' if stopped else 'was not running'}; marked stopped on purpose")


@stream_app.command("status")
def stream_status() -> None:
    """The supervisor's judgement (driver, heartbeat, lag) and the stream's own counters."""
    from flowgate.common import stream_supervisor as supervisor
    from flowgate.fraud.stream import BUDGET, fraud_stream_spec

    _with_stack_connections()
    spec = fraud_stream_spec()
    health = supervisor.assess(spec, BUDGET)
    state = "stopped on purpose" if supervisor.stopped_on_purpose(spec) else health.summary()
    typer.echo(f"{spec.name}: {state}")
    if health.heartbeat:
        hb = health.heartbeat
        typer.echo(f"  heartbeat {hb.state} {hb.age_seconds():.0f}s ago: batch {hb.batch_id}, "
                   f"in {hb.input_rows_per_second or 0:.0f}/s, processed {hb.processed_rows_per_second or 0:.0f}/s, "
                   f"batch {hb.batch_duration_ms} ms, lag {hb.consumer_lag}")
        app = hb.app
        typer.echo(f"  decided {app.get('decided', 0):,}, dead-lettered {app.get('dead_lettered', 0):,}, "
                   f"unscored {app.get('unscored', 0):,}, breaker {app.get('breaker_state')} "
                   f"(opened {app.get('breaker_opened', 0)}x)")
    if not health.healthy and not supervisor.stopped_on_purpose(spec):
        raise typer.Exit(1)
