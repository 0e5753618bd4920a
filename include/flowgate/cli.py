"""``flowgate``: what people do by hand with the platform, in one command."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from flowgate.devstack import stack
from flowgate.devstack.config import StackConfig
from flowgate.devstack.process import ServiceError
from flowgate.customer360.mobile_cli import mobile_app
from flowgate.customer360.cli import crm_app
from flowgate.fraud.cli import fraud_app
from flowgate.logs.cli import logs_app
from flowgate.partner.cli import partner_app

app = typer.Typer(help="FlowGate: the data platform's control plane.", no_args_is_help=True)


def _config() -> StackConfig:
    return StackConfig.from_env()


@app.command()
def up(airflow: bool = typer.Option(True, help="Start Airflow too (off: only the data services).")) -> None:
    """Start the local stack (idempotent: healthy services are reused) and write .env."""
    cfg = _config()
    typer.echo(f"Starting the FlowGate stack (state in {cfg.state_dir})")
    try:
        stack.up(cfg, with_airflow=airflow, echo=typer.echo)
    except ServiceError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        raise typer.Exit(1) from err
    typer.echo(f"Connections and settings: {cfg.env_file} (load with: set -a; . ./.env)")
    if airflow:
        typer.echo(f"Airflow UI: http://127.0.0.1:{cfg.ports.airflow} (user and password: "
                   "FLOWGATE_AIRFLOW_USER / FLOWGATE_AIRFLOW_PASSWORD in .env)")


@app.command()
def status() -> None:
    """Show each service of the local stack: healthy, unhealthy or stopped. Exit 1 unless all are healthy."""
    statuses = stack.status(_config())
    for s in statuses:
        typer.echo(f"  {s.name:<22} {s.state:<9} pid {s.pid or '-':<8} log {s.log_file}")
    if not all(s.healthy for s in statuses):
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop exactly the services this stack started (by their recorded pids)."""
    stopped = stack.down(_config(), echo=typer.echo)
    typer.echo(f"Stopped {len(stopped)} service(s).")


def _load_env_file(cfg: StackConfig) -> None:
    """Read the stack's .env into this process (values already set win)."""
    from dotenv import load_dotenv

    load_dotenv(cfg.env_file, override=False)


@app.command()
def trigger(
    dag_id: str,
    wait: bool = typer.Option(True, help="Wait for the run to finish and show each task's state."),
    timeout: float = typer.Option(900, help="Seconds to wait for the run."),
) -> None:
    """Trigger a DAG through Airflow's REST API (as the UI does) on the running stack."""
    from flowgate.airflow_api import AirflowApi

    _load_env_file(_config())
    api = AirflowApi.login()
    if not wait:
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
        typer.echo(f"triggered {dag_id}: run {api.trigger(dag_id)}")
        return
    run, tasks = api.run_dag(dag_id, timeout=timeout)
    for task_id, state in sorted(tasks.items()):
        typer.echo(f"  {task_id:<24} {state}")
    typer.echo(f"{dag_id} run {run['dag_run_id']}: {run['state']}")
    if run["state"] != "success":
        raise typer.Exit(1)


@app.command("scan-pan")
def scan_pan(
    paths: list[Path] = typer.Argument(None, help="Files or folders to scan (default: the stack's state dir)."),
) -> None:
    """Scan every byte of files (binary too) for card numbers: Luhn + network prefix/length.

    Prints each hit masked (411111******1111) with its file and byte offset and exits 1;
    exits 0 with the number of files and bytes scanned when nothing is found.
    """
    from flowgate.common.pan_scan import scan_paths

    targets = paths or [_config().state_dir]
    missing = [str(p) for p in targets if not p.exists()]
    if missing:
        typer.secho(f"error: no such file or folder: {', '.join(missing)}", fg="red", err=True)
        raise typer.Exit(2)
    report = scan_paths(targets)
    for error in report.errors:
        typer.secho(f"warning: not scanned: {error}", fg="yellow", err=True)
    if report.hits:
        for hit in report.hits:
            typer.echo(f"  {hit}")
        typer.secho(f"{len(report.hits)} PAN(s) found in {report.files} file(s) ({report.bytes:,} bytes scanned)",
                    fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"clean: no PAN in {report.files} file(s), {report.bytes:,} bytes scanned")


seed_app = typer.Typer(help="Load deterministic demo data into the sources.", no_args_is_help=True)
app.add_typer(seed_app, name="seed")
app.add_typer(fraud_app, name="fraud")
app.add_typer(partner_app, name="partner")
app.add_typer(logs_app, name="logs")
app.add_typer(mobile_app, name="mobile")
app.add_typer(crm_app, name="crm")


@seed_app.command("finance")
def seed_finance_cmd(
    business_date: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="Business date YYYY-MM-DD."),
    postings: int = typer.Option(100_000, help="Postings to generate for the date."),
    seed: int = typer.Option(42, help="Random seed: the same seed gives identical rows."),
) -> None:
    """Replace one business date of the core-banking source with generated books."""
    from flowgate.common.connections import postgres_dsn
    from flowgate.finance.generator import seed_finance

    _load_env_file(_config())
    summary = seed_finance(postgres_dsn("core_banking"), business_date.date(), postings, seed)
    typer.echo(f"core_banking {summary.business_date}: {summary.postings} postings in {summary.transactions} "
               f"transactions ({summary.pending} pending), {summary.control_total_rows} control totals, "
               f"debits = credits = {summary.debit_total}")


@app.command()
def demo(keep_running: bool = typer.Option(False, "--keep-running", help="Leave the stack up afterwards.")) -> None:
    """Bring the stack up, run the platform's DAGs through the scheduler, show the results."""
    cfg = _config()
    up(airflow=True)
    try:
        typer.echo("\nRunning platform_smoke through the Airflow scheduler ...")
        trigger("platform_smoke", wait=True, timeout=900)
        _demo_finance()
        _demo_partner(cfg)
        _demo_logs(cfg)
        _demo_fraud()
        typer.echo(f"\nAirflow UI: http://127.0.0.1:{cfg.ports.airflow} "
                   "(login: FLOWGATE_AIRFLOW_USER / FLOWGATE_AIRFLOW_PASSWORD in .env)")
    finally:
        if keep_running:
            typer.echo("The stack keeps running; stop it with `make down`.")
        else:
            typer.echo("\nStopping the stack (use --keep-running / KEEP_RUNNING=1 to leave it up).")
            down()


def _demo_finance() -> None:
    """Seed the last two business dates, run each through the scheduler, show what was published.

    The last two complete days: unpausing the DAG also schedules the latest one, which
    then finds its data too.
    """
    from datetime import UTC, datetime, timedelta

    from flowgate.airflow_api import AirflowApi
    from flowgate.common.connections import postgres_dsn
    from flowgate.finance.generator import seed_finance
    from flowgate.finance.report import published_day

    dag_id = "finance_daily_reporting"
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=2), today - timedelta(days=1)]
    typer.echo(f"\nSeeding core banking for {', '.join(map(str, days))} (100,000 postings each) ...")
    for day in days:
        seed_finance(postgres_dsn("core_banking"), day)
    api = AirflowApi.login()
    api.wait_for_dag(dag_id)
    api.unpause(dag_id)
    for day in days:
        # As an analyst would from the "Trigger DAG" form: the date as the run's param.
        run_id = api.trigger(dag_id, conf={"business_date": day.isoformat()})
        typer.echo(f"Running {dag_id} for {day} ({run_id}) ...")
        run = api.wait_for_run(dag_id, run_id, timeout=900)
        typer.echo(f"  {run['state']}: " + ", ".join(f"{t} {s}" for t, s in sorted(api.task_states(dag_id, run_id).items())))
    typer.echo("\nPublished in the finance mart (reporting.daily_trial_balance, audit.publish_log):")
    for day in days:
        published = published_day(postgres_dsn("finance_mart"), day)
        for line in published.lines() if published else [f"{day}: not published"]:
            typer.echo(line)


def _demo_partner(cfg) -> None:
    from flowgate.airflow_api import AirflowApi
    from flowgate.partner import demo as partner_demo

    partner_demo.run(AirflowApi.login(), cfg, typer.echo)


def _demo_logs(cfg) -> None:
    from flowgate.airflow_api import AirflowApi
    from flowgate.logs import demo as logs_demo

    logs_demo.run(AirflowApi.login(), cfg, typer.echo)


def _demo_fraud() -> None:
    from flowgate.airflow_api import AirflowApi
    from flowgate.fraud import demo as fraud_demo

    fraud_demo.run(AirflowApi.login(), typer.echo)


if __name__ == "__main__":
    app()
