"""``flowgate mobile``: play the mobile app's releases to Kafka, and run the ingest by hand."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer

mobile_app = typer.Typer(help="Customer 360 mobile events: the simulated app and the raw ingest.",
                         no_args_is_help=True)

RELEASES = ("1.0.0", "2.0.0", "3.0.0")  # mobile_app.APP_VERSIONS, spelled out so --help imports nothing


def _stack_config():
    from flowgate.devstack.config import StackConfig

    return StackConfig.from_env()


def _load_env_file() -> None:
    """The stack's .env into this process (values already set win), as ``flowgate`` does."""
    from dotenv import load_dotenv

    load_dotenv(_stack_config().env_file, override=False)


@mobile_app.command()
def produce(
    release: str = typer.Option("1.0.0", "--release", help=f"The app release that sends: one of {', '.join(RELEASES)}."),
    sessions: int = typer.Option(100, min=1, help="Sessions to play (4-11 events each)."),
    start: datetime = typer.Option(..., formats=["%Y-%m-%dT%H:%M"], help="Event time of the first session (UTC)."),
    seed: int = typer.Option(0, help="Same seed, same events (ids included)."),
    users: int = typer.Option(40, min=1, help="Users who can log in (user n: user{n}@example.com)."),
    devices: int = typer.Option(60, min=1, help="Phones (those beyond --users stay anonymous)."),
    resend: float = typer.Option(0.0, min=0.0, max=1.0, help="Fraction sent a second time (at least once)."),
    bootstrap: str = typer.Option(None, help="Kafka bootstrap servers (default: the local stack's broker)."),
    topic: str = typer.Option("mobile.events", help="Kafka topic."),
) -> None:
    """Send one release's sessions to Kafka, as the phones would (resends included)."""
    from datetime import UTC

    from flowgate.customer360 import mobile_app as app_module
    from flowgate.devstack.kafka import bootstrap_servers

    if release not in RELEASES:
        raise typer.BadParameter(f"--release must be one of {', '.join(RELEASES)}")
    app = app_module.MobileApp(seed, users=users, devices=devices)
    events = app.events(release, sessions, start.replace(tzinfo=UTC))
    again = app_module.resent(events, resend, seed)
    sent = app_module.produce(events + again, bootstrap or bootstrap_servers(_stack_config()), topic)
    typer.echo(f"{sent.messages} message(s) to {sent.topic}: {len(events)} events of app {release}, "
               f"{len(again)} resent")


@mobile_app.command()
def ingest(
    topic: str = typer.Option(None, help="Kafka topic (default: the schema file's, mobile.events)."),
    raw_schema: str = typer.Option("raw_mobile", help="Warehouse schema to load into."),
    state_dir: Path = typer.Option(None, help="Checkpoint folder (default: $FLOWGATE_HOME/streams/mobile_events)."),
    alert_env: str = typer.Option("local", help="The env label of drift alerts."),
) -> None:
    """What the hourly DAG's task does: one availableNow Spark run, then drift notified once."""
    _load_env_file()
    from flowgate.customer360.mobile_ingest import ingest_mobile_events

    typer.echo(json.dumps(ingest_mobile_events(topic=topic, raw_schema=raw_schema, state_dir=state_dir,
                                               alert_env=alert_env), indent=2))


@mobile_app.command()
def drift(raw_schema: str = typer.Option("raw_mobile", help="Warehouse schema.")) -> None:
    """List raw_mobile.schema_drift: field, change, first seen, app version, types, notified."""
    _load_env_file()
    import psycopg
    from psycopg import sql

    from flowgate.common.connections import postgres_dsn

    with psycopg.connect(postgres_dsn("warehouse")) as conn:
        rows = conn.execute(sql.SQL(
            "select field_path, change, app_version, first_seen, observed_types, type_conflicts, notified_at "
            "from {s}.schema_drift order by first_seen, field_path").format(s=sql.Identifier(raw_schema))).fetchall()
    for path, change, version, first_seen, types, conflicts, notified in rows:
        typer.echo(f"  {path:<28} {change:<14} app {version:<7} first {first_seen:%Y-%m-%d %H:%M:%S} "
                   f"types {','.join(types):<10} conflicts {conflicts:<6} "
                   f"{'notified ' + f'{notified:%H:%M:%S}' if notified else 'not notified'}")
    typer.echo(f"{len(rows)} drift row(s)")
