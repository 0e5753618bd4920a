"""The CRM API simulator (include/services/crm) as a process of the local stack.

Like the tokenizer it runs from the checkout with ``--app-dir include/services``: it is a
stand-in for an external SaaS API, not part of the platform's package. Its two tokens
(the API's bearer token, which the ``crm_api`` connection carries, and the admin token of
``/_chaos`` and ``/_simulate``) are generated per checkout into the stack's secrets and
reach the process through its environment, never argv.
"""

from __future__ import annotations

from pathlib import Path

from flowgate.customer360.customers import DEFAULT_SEED
from flowgate.devstack import services
from flowgate.devstack.config import LOOPBACK, StackConfig
from flowgate.devstack.process import Service, http_ok
from flowgate.devstack.secrets import load_secrets

APP = "crm.app:app"
DEFAULT_CUSTOMERS = 1000


def crm_url(cfg: StackConfig) -> str:
    return f"http://{LOOPBACK}:{cfg.ports.crm}"


def crm_admin_token(cfg: StackConfig) -> str:
    """For tests, drills and ``flowgate crm chaos|advance``; no Airflow task needs it."""
    return load_secrets(cfg)["crm_admin_token"]


def uvicorn_argv(root: Path, host: str, port: int) -> list[str]:
    """The command that serves the simulator (its counters are in /_stats)."""
    return services.uvicorn_argv(APP, root, host, port)


def crm_service(cfg: StackConfig) -> Service:
    secrets = load_secrets(cfg)
    return Service(
        name="crm",
        argv=uvicorn_argv(cfg.root, LOOPBACK, cfg.ports.crm),
        health=lambda: http_ok(f"{crm_url(cfg)}/health"),
        run_dir=cfg.run_dir,
        log_dir=cfg.log_dir,
        env={
            "CRM_API_TOKEN": secrets["crm_api_token"],
            "CRM_ADMIN_TOKEN": secrets["crm_admin_token"],
            "CRM_SEED": str(DEFAULT_SEED),
            "CRM_CUSTOMERS": str(DEFAULT_CUSTOMERS),
        },
        start_timeout=30,
    )
