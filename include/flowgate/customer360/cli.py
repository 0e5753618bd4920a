"""``flowgate crm``: extract the CRM into raw_crm by hand, and drive the simulator (chaos, changes)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import typer

crm_app = typer.Typer(help="Customer 360's CRM source (flow 3): extract/load into raw_crm; the simulator's "
                           "chaos and changes.", no_args_is_help=True)

EXIT_STOPPED = 3  # the run stopped cleanly before the end (budget, a long 429 storm): run again to resume


def _stack_config():
    from dotenv import load_dotenv

    from flowgate.devstack.config import StackConfig

    cfg = StackConfig.from_env()
    load_dotenv(cfg.env_file, override=False)  # the connections, as `flowgate` reads them
    return cfg


def _admin():
    from flowgate.customer360.crm_admin import CrmAdmin

    return CrmAdmin.from_stack(_stack_config())


def _print(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2))


@crm_app.command()
def extract(
    budget: int = typer.Option(2_000, min=1, help="Requests this run may send (retries count); then it stops, resumable."),
    lookback_minutes: float = typer.Option(15, min=0, help="Re-read this far behind each stream's cursor (late changes)."),
    schema: str = typer.Option("raw_crm", help="Schema of the raw tables and checkpoints in the warehouse."),
    stream: list[str] = typer.Option(None, help="Only these streams (companies, companies_archived, contacts, "
                                                "contacts_archived); default all."),
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Ignore the cursors and read everything once."),
    run_id: str = typer.Option(None, help="Recorded in _run_id (default manual__<now>)."),
    conn_id: str = typer.Option("crm_api", help="The CRM's HTTP connection (the password is the bearer token)."),
) -> None:
    """Extract the CRM incrementally into raw_crm.contacts / raw_crm.companies (the warehouse connection).

    Resumes a pass an earlier run left (crash, budget) at its last committed page.
    Exit 0 when every stream's pass completed, 3 when the run stopped cleanly before.
    """
    from flowgate.common.connections import postgres_dsn
    from flowgate.customer360.crm_client import CrmClient, RequestBudget
    from flowgate.customer360.crm_extract import STREAM_NAMES, ExtractSettings, extract_crm

    _stack_config()
    unknown = set(stream or ()) - set(STREAM_NAMES)
    if unknown:
        raise typer.BadParameter(f"unknown stream(s): {', '.join(sorted(unknown))}", param_hint="--stream")
    settings = ExtractSettings(schema=schema, lookback=timedelta(minutes=lookback_minutes),
                               streams=tuple(stream or STREAM_NAMES), full_refresh=full_refresh)
    run_id = run_id or f"manual__{datetime.now(timezone.utc).isoformat(timespec='seconds')}"
    with CrmClient.from_connection(conn_id, budget=RequestBudget(budget)) as client:
        result = extract_crm(postgres_dsn("warehouse"), client, run_id, settings)
        waited = client.stats.waited_s
    typer.echo(f"run {run_id}: {result.requests} request(s), {waited:.1f} s waiting on 429s/backoff")
    for s in result.streams:
        state = "complete" if s.complete else "stopped"
        typer.echo(f"  {s.stream:<20} {state:<9} pages {s.pages:<5} records {s.records:<7} new {s.inserted:<7}"
                   + (" (resumed)" if s.resumed else ""))
    if result.stopped:
        typer.secho(f"stopped ({result.stopped}): the checkpoints are kept; run again to resume", fg="yellow")
        raise typer.Exit(EXIT_STOPPED)


@crm_app.command()
def chaos(
    error_rate: float = typer.Option(0.0, min=0, max=1, help="Share of API requests answered with a 5xx."),
    latency_ms: int = typer.Option(0, min=0, help="Added before answering a slowed request."),
    slow_rate: float = typer.Option(1.0, min=0, max=1, help="Share of requests slowed by --latency-ms."),
    storm_seconds: float = typer.Option(0, min=0, help="From now on, every API request gets a 429 for this long..."),
    retry_after: int = typer.Option(1, min=0, help="... with this Retry-After (seconds)."),
    show: bool = typer.Option(False, "--show", help="Only show what is in force (and what it served)."),
) -> None:
    """Set the simulator's chaos (it replaces the current one; no options: none). For drills and tests."""
    admin = _admin()
    if show:
        _print(admin.show_chaos())
        return
    _print(admin.chaos(error_rate=error_rate, latency_ms=latency_ms, slow_rate=slow_rate,
                       storm_seconds=storm_seconds, storm_retry_after_s=retry_after))


@crm_app.command()
def advance(
    seconds: float = typer.Option(60, min=0.001, help="How far the CRM's clock moves."),
    creates: int = typer.Option(0, min=0), updates: int = typer.Option(0, min=0),
    company_updates: int = typer.Option(0, min=0), merges: int = typer.Option(0, min=0),
    deletions: int = typer.Option(0, min=0), company_deletions: int = typer.Option(0, min=0),
    late_updates: int = typer.Option(0, min=0, help="Updates that show up with an updatedAt already behind the clock."),
    late_by_seconds: float = typer.Option(600, min=0.001, help="How far behind the clock late updates are."),
) -> None:
    """Let time pass in the simulated CRM: new contacts, updates, merges, deletions (deterministic per seed)."""
    changes = _admin().advance(
        seconds=seconds, creates=creates, updates=updates, company_updates=company_updates, merges=merges,
        deletions=deletions, company_deletions=company_deletions, late_updates=late_updates,
        late_by_seconds=late_by_seconds)
    # The ids changed, unless there are many: then how many of each.
    counts = {k: len(v) for k, v in changes.items() if isinstance(v, list)}
    _print(changes if sum(counts.values()) <= 50 else {**changes, **counts})


@crm_app.command()
def reset(seed: int = typer.Option(None, help="Default: the simulator's own (13)."),
          customers: int = typer.Option(None, min=0, help="Default: the simulator's own (1000).")) -> None:
    """A fresh simulated CRM: seeded records, no chaos, empty rate-limit windows and counters."""
    _print(_admin().reset(seed, customers))


@crm_app.command()
def stats() -> None:
    """The simulator's clock, record counts and per-token request counters."""
    _print(_admin().stats())
