"""The tokenizer in the local stack: its port, its place after postgres, what .env tells others."""

from __future__ import annotations

import json
import stat

from flowgate.devstack import stack
from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import stack_env
from flowgate.devstack.tokenizer import tokenizer_service


def test_port_comes_from_the_environment_and_everything_points_at_it(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    monkeypatch.setenv("FLOWGATE_TOKENIZER_PORT", "18097")
    cfg = StackConfig.from_env()
    env = stack_env(cfg)
    conn = json.loads(env["AIRFLOW_CONN_TOKENIZER"])
    assert (conn["conn_type"], conn["host"], conn["port"]) == ("http", "127.0.0.1", 18097)
    assert env["FLOWGATE_TOKENIZER_URL"] == "http://127.0.0.1:18097"
    assert env["FLOWGATE_TOKENIZER_PUBLIC_KEY"].startswith(str(cfg.secrets_dir / "tokenizer") + "/")
    argv = tokenizer_service(cfg).argv
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "18097"


def test_tokenizer_starts_after_postgres_and_before_airflow(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    names = [c.service.name for c in stack.components(StackConfig.from_env())]
    assert names.index("postgres") < names.index("tokenizer") < names.index("airflow-api-server")
    assert len(names) == len(set(names)) == 13
    data_only = [c.service.name for c in stack.components(StackConfig.from_env(), with_airflow=False)]
    assert data_only == ["postgres", "kafka", "s3", "sftp", "alert-sink", "alertmanager", "tokenizer", "opensearch",
                         "crm"]


def test_keys_are_made_before_the_first_start_and_the_vault_password_is_not_on_argv(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    cfg = StackConfig.from_env()
    service = tokenizer_service(cfg)
    service.prepare()
    key_dir = cfg.secrets_dir / "tokenizer"
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert (key_dir / "envelope_x25519.pem").exists()
    assert service.env["TOKENIZER_KEY_DIR"] == str(key_dir)
    password = service.env["TOKENIZER_DATABASE_URL"].split("//", 1)[1].split("@")[0].split(":")[1]
    assert password and not any(password in arg for arg in service.argv)
