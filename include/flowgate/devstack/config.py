"""Where the local stack lives and which ports it uses: the one place for both.

Every value can be overridden by an environment variable so that two stacks (or a
stack and something else on the machine) never have to fight over a port.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

LOOPBACK = "127.0.0.1"


def _repo_root() -> Path:
    if "FLOWGATE_ROOT" in os.environ:
        return Path(os.environ["FLOWGATE_ROOT"]).resolve()
    # include/flowgate/devstack/config.py -> the repository root is three levels up.
    return Path(__file__).resolve().parents[3]


def _port(var: str, default: int) -> int:
    return int(os.environ.get(var, default))


@dataclass(frozen=True)
class Ports:
    postgres: int
    kafka: int
    kafka_controller: int
    s3: int
    sftp: int
    airflow: int
    alert_sink: int
    tokenizer: int
    alertmanager: int
    opensearch: int
    crm: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            postgres=_port("FLOWGATE_PG_PORT", 5432),
            kafka=_port("FLOWGATE_KAFKA_PORT", 9092),
            kafka_controller=_port("FLOWGATE_KAFKA_CONTROLLER_PORT", 9093),
            s3=_port("FLOWGATE_S3_PORT", 9000),
            sftp=_port("FLOWGATE_SFTP_PORT", 2222),
            airflow=_port("FLOWGATE_AIRFLOW_PORT", 8080),
            alert_sink=_port("FLOWGATE_ALERT_PORT", 8099),
            tokenizer=_port("FLOWGATE_TOKENIZER_PORT", 8097),
            # Not Alertmanager's own 9093: the Kafka controller has that one.
            alertmanager=_port("FLOWGATE_ALERTMANAGER_PORT", 9193),
            opensearch=_port("FLOWGATE_OPENSEARCH_PORT", 9200),
            # Between the tokenizer (8097) and the alert sink (8099).
            crm=_port("FLOWGATE_CRM_PORT", 8098),
        )


@dataclass(frozen=True)
class StackConfig:
    """Paths and ports of one local stack. All state stays under ``state_dir``."""

    root: Path
    state_dir: Path
    ports: Ports

    @classmethod
    def from_env(cls) -> StackConfig:
        root = _repo_root()
        state = Path(os.environ.get("FLOWGATE_HOME", root / ".flowgate")).resolve()
        return cls(root=root, state_dir=state, ports=Ports.from_env())

    @cached_property
    def run_dir(self) -> Path:
        """Pid files of the services this stack started."""
        return self.state_dir / "run"

    @cached_property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @cached_property
    def secrets_dir(self) -> Path:
        """Generated passwords and keys; never committed (the state dir is git-ignored)."""
        return self.state_dir / "secrets"

    @cached_property
    def env_file(self) -> Path:
        return self.root / ".env"

    @cached_property
    def venv_bin(self) -> Path:
        return self.root / ".venv" / "bin"

    @cached_property
    def jars_dir(self) -> Path:
        """Jars resolved from Maven Central by ``make setup`` (Kafka broker, Spark connector).

        Always the repo's own ``.flowgate/jars``: a stack with another state dir (a test's)
        shares them instead of resolving them again."""
        return self.root / ".flowgate" / "jars"

    def data_dir(self, service: str) -> Path:
        return self.state_dir / "data" / service
