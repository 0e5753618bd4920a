"""Alertmanager in the local stack: its route, its Slack receiver, where it listens, its place."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from flowgate.devstack import alertmanager, stack
from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import stack_env
from flowgate.devstack.services import alert_webhook_url


@pytest.fixture
def cfg(monkeypatch, tmp_path) -> StackConfig:
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    monkeypatch.setenv("FLOWGATE_ALERTMANAGER_PORT", "19193")
    monkeypatch.setenv("FLOWGATE_ALERT_PORT", "18099")
    return StackConfig.from_env()


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(duration[:-1]) * units[duration[-1]]


def test_route_groups_by_incident_and_notifies_within_seconds(cfg):
    route = yaml.safe_load(alertmanager.render_config(alert_webhook_url(cfg)))["route"]
    assert route["group_by"] == ["alertname", "rule", "service", "env"]
    # The log flow's goal is p95 <= 10 s from incident to Slack: the wait must leave room.
    assert _seconds(route["group_wait"]) <= 3
    assert _seconds(route["group_wait"]) < _seconds(route["group_interval"]) <= 30
    assert _seconds(route["repeat_interval"]) >= 3600


def test_the_receiver_posts_to_the_alert_sink_and_sends_resolved(cfg):
    config = yaml.safe_load(alertmanager.render_config(alert_webhook_url(cfg)))
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    (slack,) = receiver["slack_configs"]
    assert slack["api_url"] == "http://127.0.0.1:18099/hooks/alerts"
    assert slack["send_resolved"] is True
    assert ".Status | toUpper" in slack["title"]
    for annotation in ("summary", "sample", "runbook_url", "opensearch_url"):
        assert f".Annotations.{annotation}" in slack["text"]
    assert ".Labels.SortedPairs" in slack["text"]


def test_alertmanagers_own_checker_accepts_the_written_config(cfg):
    path = alertmanager.write_config(cfg)
    assert path.is_relative_to(cfg.state_dir) and alertmanager.storage_dir(cfg).is_dir()
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_listens_on_loopback_only_with_clustering_off(cfg):
    argv = alertmanager.alertmanager_service(cfg).argv
    flags = dict(arg.split("=", 1) for arg in argv[1:])
    assert flags["--web.listen-address"] == "127.0.0.1:19193"
    assert flags["--cluster.listen-address"] == "", "clustering would bind 0.0.0.0:9094"
    assert Path(flags["--storage.path"]).is_relative_to(cfg.data_dir("alertmanager"))
    assert Path(flags["--config.file"]) == alertmanager.config_file(cfg)


def test_the_default_port_is_not_the_kafka_controllers(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    for var in ("FLOWGATE_ALERTMANAGER_PORT", "FLOWGATE_KAFKA_CONTROLLER_PORT"):
        monkeypatch.delenv(var, raising=False)
    ports = StackConfig.from_env().ports
    assert ports.alertmanager == 9193 and ports.alertmanager != ports.kafka_controller


def test_the_alertmanager_connection_points_at_it(cfg):
    conn = json.loads(stack_env(cfg)["AIRFLOW_CONN_ALERTMANAGER"])
    assert conn == {"conn_type": "http", "host": "127.0.0.1", "port": 19193, "schema": "http"}


def test_it_starts_right_after_the_alert_sink(cfg):
    names = [c.service.name for c in stack.components(cfg, with_airflow=False)]
    assert names.index("alertmanager") == names.index("alert-sink") + 1

