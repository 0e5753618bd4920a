"""Airflow 3.3 on the stack's PostgreSQL: api-server, scheduler, dag-processor, triggerer.

The UI and REST API sit behind Airflow's simple auth manager; the admin password is
generated per state dir and handed out through ``.env`` only.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

from flowgate.devstack.config import LOOPBACK, StackConfig
from flowgate.devstack.env import AIRFLOW_ADMIN_USER, stack_env
from flowgate.devstack.process import Service, ServiceError
from flowgate.devstack.secrets import load_secrets

# Component name -> its key in the api-server's /api/v2/monitor/health answer.
COMPONENTS = {
    "airflow-scheduler": ("scheduler", "scheduler"),
    "airflow-dag-processor": ("dag-processor", "dag_processor"),
    "airflow-triggerer": ("triggerer", "triggerer"),
}


def airflow_env(cfg: StackConfig) -> dict[str, str]:
    env = stack_env(cfg)
    # Tasks run spark-submit and the project's console scripts from the virtualenv.
    env["PATH"] = f"{cfg.venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


def _airflow_cmd(cfg: StackConfig) -> str:
    return str(cfg.venv_bin / "airflow") if (cfg.venv_bin / "airflow").exists() else "airflow"


def prepare_metadata(cfg: StackConfig) -> None:
    """Write the admin's password file and migrate the metadata DB (both idempotent)."""
    passwords = cfg.secrets_dir / "airflow_passwords.json"
    passwords.write_text(json.dumps({AIRFLOW_ADMIN_USER: load_secrets(cfg)["airflow_admin"]}))
    passwords.chmod(0o600)
    (cfg.state_dir / "airflow").mkdir(parents=True, exist_ok=True)
    (cfg.state_dir / "lineage").mkdir(parents=True, exist_ok=True)
    result = subprocess.run([_airflow_cmd(cfg), "db", "migrate"], env={**os.environ, **airflow_env(cfg)},
                            capture_output=True, text=True)
    if result.returncode != 0:
        log = cfg.log_dir / "airflow-db-migrate.log"
        log.write_text(result.stdout + result.stderr)
        raise ServiceError(f"airflow db migrate failed; see {log}")


def health(cfg: StackConfig) -> dict | None:
    url = f"http://{LOOPBACK}:{cfg.ports.airflow}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def _component_healthy(cfg: StackConfig, key: str) -> bool:
    answer = health(cfg) or {}
    return (answer.get(key) or {}).get("status") == "healthy"


def airflow_services(cfg: StackConfig) -> list[Service]:
    env = airflow_env(cfg)
    common = dict(run_dir=cfg.run_dir, log_dir=cfg.log_dir, env=env, cwd=cfg.root, start_timeout=180)
    api = Service(
        name="airflow-api-server",
        argv=[_airflow_cmd(cfg), "api-server", "--host", LOOPBACK, "--port", str(cfg.ports.airflow)],
        health=lambda: health(cfg) is not None,
        prepare=lambda: prepare_metadata(cfg),
        **common,
    )
    others = [
        Service(name=name, argv=[_airflow_cmd(cfg), command],
                health=lambda key=key: _component_healthy(cfg, key), **common)
        for name, (command, key) in COMPONENTS.items()
    ]
    return [api, *others]
