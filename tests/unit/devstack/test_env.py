"""The generated .env: every connection, loopback only, secrets generated not committed."""

from __future__ import annotations

import json
import shlex
import stat
import subprocess

import pytest

from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import CONNECTION_IDS, connections, stack_env, write_env_file
from flowgate.devstack.secrets import load_secrets


@pytest.fixture
def cfg(tmp_path, monkeypatch) -> StackConfig:
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path / "state"))
    return StackConfig.from_env()


def test_every_platform_connection_is_defined_and_parses_as_an_airflow_connection(cfg):
    from airflow.models.connection import Connection

    conns = connections(cfg)
    assert set(conns) == set(CONNECTION_IDS)
    env = stack_env(cfg)
    for conn_id in CONNECTION_IDS:
        conn = Connection.from_json(env[f"AIRFLOW_CONN_{conn_id.upper()}"], conn_id=conn_id)
        assert conn.conn_type == conns[conn_id]["conn_type"]
        if conn.host and conn.conn_type != "spark":
            assert conn.host == "127.0.0.1", f"{conn_id} is not on loopback"


def test_ports_come_from_env_vars(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    monkeypatch.setenv("FLOWGATE_KAFKA_PORT", "19092")
    monkeypatch.setenv("FLOWGATE_AIRFLOW_PORT", "18080")
    cfg = StackConfig.from_env()
    env = stack_env(cfg)
    assert json.loads(env["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]["bootstrap.servers"] == "127.0.0.1:19092"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18080"


def test_secrets_are_random_per_state_dir_stable_within_it_and_private(cfg, tmp_path):
    first = load_secrets(cfg)
    assert load_secrets(cfg) == first
    other = StackConfig(root=cfg.root, state_dir=tmp_path / "other", ports=cfg.ports)
    assert load_secrets(other)["airflow_admin"] != first["airflow_admin"]
    assert stat.S_IMODE((cfg.secrets_dir / "secrets.json").stat().st_mode) == 0o600


def test_env_file_is_shell_sourceable_and_private(tmp_path):
    cfg = StackConfig(root=tmp_path, state_dir=tmp_path / "state", ports=StackConfig.from_env().ports)
    path = write_env_file(cfg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    out = subprocess.run(["bash", "-c", f"set -a; . {shlex.quote(str(path))}; printenv AIRFLOW_CONN_PARTNER_SFTP"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["login"] == "partner"


def test_no_generated_secret_is_in_the_repository(cfg):
    secrets = load_secrets(cfg)
    tracked = subprocess.run(["git", "ls-files"], cwd=cfg.root, capture_output=True, text=True).stdout.split()
    for name in tracked:
        path = cfg.root / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            text = path.read_text(errors="ignore")
            assert not any(value in text for value in secrets.values()), f"{name} holds a generated secret"
