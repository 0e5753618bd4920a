"""``flowgate``: what people do by hand with the platform, in one command."""

from __future__ import annotations

import typer

from flowgate.devstack import stack
from flowgate.devstack.config import StackConfig
from flowgate.devstack.process import ServiceError

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


if __name__ == "__main__":
    app()
