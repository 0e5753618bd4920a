"""The local no-Docker stack as a whole: ``up``, ``status`` and ``down``.

Order matters: PostgreSQL first (Airflow's metadata lives there), Airflow last.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flowgate.devstack import alertmanager, crm, kafka, opensearch, postgres, process, services, tokenizer
from flowgate.devstack.airflow import airflow_services
from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import write_env_file
from flowgate.devstack.process import Service, Status


@dataclass(frozen=True)
class Component:
    service: Service
    after_start: Callable[[], object] | None = None  # idempotent provisioning (DBs, topics, buckets)


def components(cfg: StackConfig, with_airflow: bool = True) -> list[Component]:
    parts = [
        Component(postgres.postgres_service(cfg), lambda: postgres.ensure_databases(cfg)),
        Component(kafka.kafka_service(cfg), lambda: kafka.ensure_topics(cfg)),
        Component(services.s3_service(cfg), lambda: services.ensure_buckets(cfg)),
        Component(services.sftp_service(cfg)),
        Component(services.alert_sink_service(cfg)),
        # In front of the alert sink: every alert goes through it (groups, dedup, resolve).
        Component(alertmanager.alertmanager_service(cfg)),
        # After postgres: its vault is the `tokenizer` database ensure_databases creates.
        Component(tokenizer.tokenizer_service(cfg)),
        Component(opensearch.opensearch_service(cfg)),
        # The CRM API simulator (Customer 360's source); in memory, needs nothing else.
        Component(crm.crm_service(cfg)),
    ]
    if with_airflow:
        parts += [Component(svc) for svc in airflow_services(cfg)]
    return parts


@contextmanager
def running(cfg: StackConfig, names: Collection[str]) -> Iterator[StackConfig]:
    """The named data services (e.g. {"postgres", "kafka"}) running and provisioned for the
    block; afterwards it stops exactly those it started, so a developer's stack is left as
    it was. What the benches use: they need a few services, not Airflow."""
    wanted = [c for c in components(cfg, with_airflow=False) if c.service.name in names]
    started = []
    try:
        for component in wanted:
            if process.status(component.service).pid is None:
                started.append(component.service)
            process.start(component.service)
            if component.after_start:
                component.after_start()
        yield cfg
    finally:
        for service in reversed(started):
            process.stop(service)


def up(cfg: StackConfig, with_airflow: bool = True, echo: Callable[[str], None] = print) -> list[Status]:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    statuses = []
    for component in components(cfg, with_airflow):
        status = process.start(component.service)
        if component.after_start:
            component.after_start()
        if component.service.name == "postgres":
            write_env_file(cfg)  # every later service reads its connections from it
        echo(f"  {status.name:<22} {status.state:<9} pid {status.pid}")
        statuses.append(status)
    return statuses


def status(cfg: StackConfig) -> list[Status]:
    return [process.status(c.service) for c in components(cfg)]


def down(cfg: StackConfig, echo: Callable[[str], None] = print) -> list[str]:
    stopped = []
    for component in reversed(components(cfg)):
        if process.stop(component.service):
            echo(f"  stopped {component.service.name}")
            stopped.append(component.service.name)
    return stopped
