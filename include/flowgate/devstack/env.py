"""The generated ``.env``: every connection as ``AIRFLOW_CONN_<ID>`` plus Airflow's settings.

Airflow, the ``flowgate`` CLI and the tests all read this one file (``set -a; . ./.env``),
and docker-compose.yaml sets the same connection ids for its own hosts.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from flowgate.devstack import kafka, partner_keys, postgres, services, tokenizer
from flowgate.devstack.config import LOOPBACK, StackConfig
from flowgate.devstack.secrets import load_secrets

AIRFLOW_ADMIN_USER = "admin"

# Connection ids the platform uses: code refers to these, never to hosts or passwords.
# Each partner contract adds its keys connection (``keys_conn_id``, e.g. partner_acme_keys).
CONNECTION_IDS = (
    "core_banking", "finance_staging", "finance_mart", "partner_staging", "warehouse", "lake_s3", "kafka_default",
    "partner_sftp", "spark_default", "alert_webhook", "tokenizer", "fraud_store", "alertmanager", "opensearch",
    "crm_api", "customer_identity",
) + partner_keys.connection_ids()
# Of those, the ones that hold key material only: they point at no host.
KEY_CONNECTION_IDS = ("customer_identity",) + partner_keys.connection_ids()


def _postgres_conn(cfg: StackConfig, database: str) -> dict:
    role = postgres.DATABASES[database]
    return {
        "conn_type": "postgres", "host": LOOPBACK, "port": cfg.ports.postgres, "schema": database,
        "login": role, "password": load_secrets(cfg)[f"postgres_{role}"],
    }


def connections(cfg: StackConfig) -> dict[str, dict]:
    secrets = load_secrets(cfg)
    _, partner_key = services.sftp_keys(cfg)
    return {
        "core_banking": _postgres_conn(cfg, "core_banking"),
        # Where the finance flow stages and checks a day (always PostgreSQL); locally the
        # same database as the mart, which in production may be Snowflake.
        "finance_staging": _postgres_conn(cfg, "finance_mart"),
        "finance_mart": _postgres_conn(cfg, "finance_mart"),
        # Where the partner flow keeps its file ledger, stages and checks a week (always
        # PostgreSQL); locally the warehouse database itself, which in production may be Snowflake.
        "partner_staging": _postgres_conn(cfg, "warehouse"),
        "warehouse": _postgres_conn(cfg, "warehouse"),
        "fraud_store": _postgres_conn(cfg, "fraud"),
        "lake_s3": {
            "conn_type": "aws", "login": secrets["s3_access_key"], "password": secrets["s3_secret_key"],
            "extra": {"endpoint_url": services.s3_endpoint(cfg), "region_name": "us-east-1"},
        },
        "kafka_default": {
            "conn_type": "kafka",
            "extra": {"bootstrap.servers": kafka.bootstrap_servers(cfg), "group.id": "flowgate",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False},
        },
        "partner_sftp": {
            "conn_type": "sftp", "host": LOOPBACK, "port": cfg.ports.sftp, "login": services.PARTNER_ACCOUNT,
            "extra": {"key_file": str(partner_key), "host_key": services.sftp_host_public_key(cfg),
                      "no_host_key_check": False},
        },
        "spark_default": {
            "conn_type": "spark", "host": "local[*]",
            "extra": {"deploy-mode": "client", "spark-binary": "spark-submit"},
        },
        # A Slack incoming-webhook connection: the password is the full webhook URL.
        "alert_webhook": {"conn_type": "slackwebhook", "password": services.alert_webhook_url(cfg)},
        # The tokenization service (HTTP; no credentials: it answers tokens, never PANs).
        "tokenizer": {"conn_type": "http", "host": LOOPBACK, "port": cfg.ports.tokenizer, "schema": "http"},
        # Where every alert goes (its v2 API); it groups them and posts to alert_webhook's URL.
        "alertmanager": {"conn_type": "http", "host": LOOPBACK, "port": cfg.ports.alertmanager, "schema": "http"},
        # Log search (daily indices of WARN+ lines); no security plugin locally.
        "opensearch": {"conn_type": "http", "host": LOOPBACK, "port": cfg.ports.opensearch, "schema": "http"},
        # The CRM API (the simulator locally, HubSpot in production): an HTTP connection whose
        # password is the bearer token.
        "crm_api": {"conn_type": "http", "host": LOOPBACK, "port": cfg.ports.crm, "schema": "http",
                    "password": secrets["crm_api_token"]},
        # Customer 360's key for the HMAC of emails that identity stitching matches on
        # (flowgate.customer360.identity): a generic connection whose password is the key.
        "customer_identity": {"conn_type": "generic", "password": secrets["identity_hash_key"]},
        # Per partner: HMAC and AES keys, and for PGP partners our private key and the
        # partner's signing key (devstack/partner_keys.py).
        **partner_keys.connections(cfg),
    }


def airflow_settings(cfg: StackConfig) -> dict[str, str]:
    secrets = load_secrets(cfg)
    home = cfg.state_dir / "airflow"
    base_url = f"http://{LOOPBACK}:{cfg.ports.airflow}"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(cfg.root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(cfg.root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__FERNET_KEY": secrets["airflow_fernet"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.database_url(cfg, "airflow", "postgresql+psycopg2"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(cfg.secrets_dir / "airflow_passwords.json"),
        "AIRFLOW__API__HOST": LOOPBACK,
        "AIRFLOW__API__PORT": str(cfg.ports.airflow),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets["airflow_jwt"],
        "AIRFLOW__API__SECRET_KEY": secrets["airflow_api_secret"],
        # New DAG files show up within seconds locally, not the default five minutes.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "flowgate-local",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(cfg.state_dir / "lineage" / "events.jsonl"), "append": True}
        ),
        "FLOWGATE_AIRFLOW_URL": base_url,
        "FLOWGATE_AIRFLOW_USER": AIRFLOW_ADMIN_USER,
        "FLOWGATE_AIRFLOW_PASSWORD": secrets["airflow_admin"],
        "FLOWGATE_HOME": str(cfg.state_dir),
        "FLOWGATE_SPARK_JARS": ",".join(str(p) for p in sorted((cfg.jars_dir / "spark-kafka").glob("*.jar"))),
        "FLOWGATE_SPARK_S3_JARS": ",".join(str(p) for p in sorted((cfg.jars_dir / "spark-s3").glob("*.jar"))),
        # Spark's driver (and its block manager) on loopback, like every service of the stack.
        "SPARK_LOCAL_IP": LOOPBACK,
    }


def fraud_settings(cfg: StackConfig) -> dict[str, str]:
    """What the fraud flow's gateway and stream read: where the tokenizer is, what to seal with."""
    return {
        "FLOWGATE_TOKENIZER_URL": tokenizer.tokenizer_url(cfg),
        "FLOWGATE_TOKENIZER_PUBLIC_KEY": str(tokenizer.tokenizer_public_key(cfg)),
    }


def stack_env(cfg: StackConfig) -> dict[str, str]:
    env = {**airflow_settings(cfg), **fraud_settings(cfg)}
    for conn_id, conn in connections(cfg).items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    return env


def write_env_file(cfg: StackConfig) -> Path:
    """Write ``.env`` (mode 0600): shell-sourceable and readable by docker compose."""
    lines = ["# Generated by `make up` for the local stack. Do not commit (it is git-ignored)."]
    lines += [f"{key}={shlex.quote(value)}" for key, value in stack_env(cfg).items()]
    cfg.env_file.write_text("\n".join(lines) + "\n")
    cfg.env_file.chmod(0o600)
    return cfg.env_file
