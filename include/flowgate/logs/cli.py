"""``flowgate logs``: play the microservices' logs, and run the local forwarder."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import typer

logs_app = typer.Typer(help="Application logs: the load generator and the local log forwarder.",
                       no_args_is_help=True)


def _stack_config():
    from flowgate.devstack.config import StackConfig

    return StackConfig.from_env()


def _bootstrap(bootstrap: str | None) -> str:
    from flowgate.devstack.kafka import bootstrap_servers

    return bootstrap or bootstrap_servers(_stack_config())


def _buffer_dir(buffer_dir: Path | None) -> Path:
    # Under the stack's state dir: git-ignored, and where a restart finds the backlog again.
    return buffer_dir or _stack_config().state_dir / "forwarder" / "buffer"


@logs_app.command()
def generate(
    rate: float = typer.Option(1000.0, min=0.0, help="Lines per second; 0 = as fast as possible (a bench)."),
    duration: float = typer.Option(60.0, min=0.1, help="Seconds of event time to play (rate x duration lines)."),
    count: int = typer.Option(None, min=1, help="Lines to write (instead of --duration; needed with --rate 0)."),
    seed: int = typer.Option(7, help="Same seed, same lines (ids included)."),
    incident: list[str] = typer.Option([], "--incident", help="kind:service:start_s:duration_s, kind one of "
                                       "error_burst, silent, latency_spike, new_exception (repeatable)."),
    malformed: list[str] = typer.Option([], "--malformed", help="Also write one bad line of this kind at the end: "
                                        "not_json, missing_fields, huge_body, invalid_utf8 (repeatable)."),
    stdout: bool = typer.Option(False, "--stdout", help="Write the lines to stdout (for `| flowgate logs "
                                "forward`) instead of forwarding them in-process."),
    tcp: str = typer.Option(None, "--tcp", help="host:port: write the lines to a TCP socket (Fluent Bit's tcp input)."),
    bootstrap: str = typer.Option(None, help="Kafka bootstrap servers (default: the local stack's broker)."),
    topic: str = typer.Option("app.logs", help="Kafka topic."),
    buffer_dir: Path = typer.Option(None, "--buffer-dir", help="The forwarder's disk buffer "
                                    "(default: $FLOWGATE_HOME/forwarder/buffer)."),
) -> None:
    """Play the platform's microservices: OTel JSON log lines with scheduled incidents,
    shipped through the local forwarder to Kafka (or to stdout / a TCP socket)."""
    from flowgate.logs.generator import LoadMix, LogGenerator, pace, parse_incident

    try:
        incidents = tuple(parse_incident(spec) for spec in incident)
        mix = LoadMix(rate_per_s=rate or 1000.0, incidents=incidents)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    if rate == 0 and count is None:
        raise typer.BadParameter("--rate 0 (as fast as possible) needs --count")
    total = count or max(1, round(rate * duration))
    generator = LogGenerator(mix, seed=seed)
    target = None if rate == 0 else rate

    if stdout or tcp:
        out = sys.stdout.buffer if stdout else _tcp_writer(tcp)
        report = pace(generator, lambda lines: out.write(b"".join(line + b"\n" for line in lines)), total, target)
        for kind in malformed:
            out.write(generator.malformed(kind).replace(b"\n", b" ") + b"\n")
        out.flush()
        typer.echo(f"wrote {report.lines:,} lines in {report.seconds:.2f}s ({report.rate:,.0f}/s)", err=True)
        return

    from flowgate.logs.forwarder import Forwarder

    started = time.perf_counter()
    with Forwarder(_bootstrap(bootstrap), _buffer_dir(buffer_dir), topic=topic) as forwarder:
        report = pace(generator, forwarder.send_many, total, target)
        for kind in malformed:
            forwarder.send(generator.malformed(kind))
        drained = forwarder.flush(120)
        seconds = time.perf_counter() - started
        stats = forwarder.stats()
    typer.echo(f"sent {report.lines:,} lines in {report.seconds:.2f}s ({report.rate:,.0f}/s); "
               f"{stats.delivered:,} delivered to {topic} in {seconds:.2f}s ({stats.delivered / seconds:,.0f}/s)")
    for incident_id, first in generator.first_lines.items():
        typer.echo(f"  incident {incident_id}: first line #{first.seq} at {first.timestamp_ns} ns")
    typer.echo(json.dumps({"lines": report.lines, "send_rate": round(report.rate), "seconds": round(seconds, 3),
                           "delivered_rate": round(stats.delivered / seconds), **stats.as_dict()}))
    if not drained:
        typer.secho(f"{stats.pending_lines:,} lines still buffered in {_buffer_dir(buffer_dir)} "
                    "(Kafka unreachable?): the next forwarder run sends them", fg="yellow", err=True)
        raise typer.Exit(1)


def _tcp_writer(address: str):
    host, _, port = address.rpartition(":")
    return socket.create_connection((host, int(port))).makefile("wb")


@logs_app.command()
def forward(
    bootstrap: str = typer.Option(None, help="Kafka bootstrap servers (default: the local stack's broker)."),
    topic: str = typer.Option("app.logs", help="Kafka topic."),
    buffer_dir: Path = typer.Option(None, "--buffer-dir", help="The disk buffer "
                                    "(default: $FLOWGATE_HOME/forwarder/buffer)."),
    limit_bytes: int = typer.Option(None, min=1, help="Disk buffer limit (default: forwarder.buffer_bytes "
                                    "in include/flowgate/logs/ttl.yaml)."),
    stats_every: float = typer.Option(10.0, min=0.5, help="Seconds between stats lines (JSON, on stderr)."),
) -> None:
    """The local forwarder as a process: log lines on stdin (``service | flowgate logs
    forward``), to Kafka through the bounded disk buffer. Stops at end of input."""
    from flowgate.logs.forwarder import Forwarder

    with Forwarder(_bootstrap(bootstrap), _buffer_dir(buffer_dir), topic=topic, limit_bytes=limit_bytes) as forwarder:
        next_stats = time.monotonic() + stats_every
        # Line by line as they arrive: a quiet service's line must not wait for company
        # (the forwarder batches into chunks itself).
        for line in sys.stdin.buffer:
            line = line.rstrip(b"\r\n")
            if line:
                forwarder.send(line)
            if time.monotonic() >= next_stats:
                typer.echo(json.dumps(forwarder.stats().as_dict()), err=True)
                next_stats += stats_every
        drained = forwarder.flush(60)
        typer.echo(json.dumps(forwarder.stats().as_dict()), err=True)
    if not drained:
        raise typer.Exit(1)
