"""The CRM simulator in the local stack: its port, its tokens, what the crm_api connection says."""

from __future__ import annotations

import json

from flowgate.devstack import stack
from flowgate.devstack.config import StackConfig
from flowgate.devstack.crm import crm_admin_token, crm_service
from flowgate.devstack.env import stack_env
from flowgate.devstack.secrets import load_secrets


def test_port_comes_from_the_environment_and_the_connection_carries_the_generated_token(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    monkeypatch.setenv("FLOWGATE_CRM_PORT", "18098")
    cfg = StackConfig.from_env()
    conn = json.loads(stack_env(cfg)["AIRFLOW_CONN_CRM_API"])
    assert (conn["conn_type"], conn["host"], conn["port"]) == ("http", "127.0.0.1", 18098)
    service = crm_service(cfg)
    assert conn["password"] == service.env["CRM_API_TOKEN"] == load_secrets(cfg)["crm_api_token"]
    argv = service.argv
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "18098"


def test_tokens_are_in_the_environment_not_on_argv_and_differ(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    cfg = StackConfig.from_env()
    service = crm_service(cfg)
    api, admin = service.env["CRM_API_TOKEN"], service.env["CRM_ADMIN_TOKEN"]
    assert api and admin and api != admin and admin == crm_admin_token(cfg)
    assert not any(api in arg or admin in arg for arg in service.argv)


def test_crm_is_a_data_service_that_stack_running_can_start(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    names = [c.service.name for c in stack.components(StackConfig.from_env(), with_airflow=False)]
    assert "crm" in names
