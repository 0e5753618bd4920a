"""The small services of the local stack: the S3 API, the partner SFTP server and the
alert sink. Each is a real server on loopback, started as its own process."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncssh

from flowgate.devstack.config import LOOPBACK, StackConfig
from flowgate.devstack.process import Service, http_ok, tcp_open
from flowgate.devstack.secrets import load_secrets

LAKE_BUCKETS = ("flowgate-lake", "flowgate-audit")
# Our own HTTP services (tokenizer, CRM simulator) run from the checkout, not the package.
OUR_SERVICES_DIR = Path("include") / "services"
PARTNER_ACCOUNT = "partner"


def _python() -> str:
    return sys.executable


def uvicorn_argv(app: str, root: Path, host: str, port: int) -> list[str]:
    """The command that serves one of our services (``app``, e.g. ``tokenizer.app:app``)
    from ``root``'s include/services; docker-compose.yaml and the unit tests run the same."""
    return [
        sys.executable, "-m", "uvicorn", app, "--app-dir", str(root / OUR_SERVICES_DIR),
        "--host", host, "--port", str(port),
        # A request line holds nothing on-call needs (the services count in their own
        # endpoints), and a bench's thousands of requests need no log line each.
        "--no-access-log",
        "--timeout-graceful-shutdown", "5",
    ]


# --- S3 API (moto in server mode, objects' bytes on disk: devstack/s3_server.py) -------

def s3_endpoint(cfg: StackConfig) -> str:
    return f"http://{LOOPBACK}:{cfg.ports.s3}"


def s3_service(cfg: StackConfig) -> Service:
    return Service(
        name="s3",
        argv=[_python(), "-m", "flowgate.devstack.s3_server", "--spool-dir", str(cfg.data_dir("s3")),
              "-H", LOOPBACK, "-p", str(cfg.ports.s3)],
        health=lambda: http_ok(f"{s3_endpoint(cfg)}/moto-api/"),
        run_dir=cfg.run_dir,
        log_dir=cfg.log_dir,
        start_timeout=60,
    )


def s3_client(cfg: StackConfig):
    import boto3

    secrets = load_secrets(cfg)
    return boto3.client(
        "s3", endpoint_url=s3_endpoint(cfg), region_name="us-east-1",
        aws_access_key_id=secrets["s3_access_key"], aws_secret_access_key=secrets["s3_secret_key"],
    )


def ensure_buckets(cfg: StackConfig) -> None:
    client = s3_client(cfg)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for bucket in LAKE_BUCKETS:
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)


# --- partner SFTP (asyncssh) ---------------------------------------------------------

def sftp_keys(cfg: StackConfig) -> tuple[Path, Path]:
    """(server host key, partner's private key), generated once under the secrets dir."""
    keys = cfg.secrets_dir / "sftp"
    keys.mkdir(parents=True, exist_ok=True)
    host_key, client_key = keys / "ssh_host_ed25519_key", keys / f"{PARTNER_ACCOUNT}_ed25519"
    for path in (host_key, client_key):
        if not path.exists():
            key = asyncssh.generate_private_key("ssh-ed25519")
            key.write_private_key(str(path))
            key.write_public_key(str(path) + ".pub")
            path.chmod(0o600)
    return host_key, client_key


def sftp_host_public_key(cfg: StackConfig) -> str:
    """The host key as 'type base64', what the SFTP connection pins (no blind trust)."""
    host_key, _ = sftp_keys(cfg)
    return " ".join(Path(str(host_key) + ".pub").read_text().split()[:2])


def sftp_root(cfg: StackConfig) -> Path:
    return cfg.data_dir("sftp")


def sftp_service(cfg: StackConfig) -> Service:
    host_key, client_key = sftp_keys(cfg)
    return Service(
        name="sftp",
        argv=[
            _python(), "-m", "flowgate.devstack.sftp_server", "--host", LOOPBACK,
            "--port", str(cfg.ports.sftp), "--root", str(sftp_root(cfg)),
            "--host-key", str(host_key), "--account", f"{PARTNER_ACCOUNT}={client_key}.pub",
        ],
        health=lambda: tcp_open(cfg.ports.sftp),
        run_dir=cfg.run_dir,
        log_dir=cfg.log_dir,
        prepare=lambda: sftp_root(cfg).mkdir(parents=True, exist_ok=True),
        start_timeout=30,
    )


# --- alert sink ----------------------------------------------------------------------

def alert_webhook_url(cfg: StackConfig) -> str:
    return f"http://{LOOPBACK}:{cfg.ports.alert_sink}/hooks/alerts"


def alerts_file(cfg: StackConfig) -> Path:
    return cfg.log_dir / "alerts.jsonl"


def alert_sink_service(cfg: StackConfig) -> Service:
    return Service(
        name="alert-sink",
        argv=[
            _python(), "-m", "flowgate.devstack.alert_sink", "--host", LOOPBACK,
            "--port", str(cfg.ports.alert_sink), "--out", str(alerts_file(cfg)),
        ],
        health=lambda: http_ok(f"http://{LOOPBACK}:{cfg.ports.alert_sink}/health"),
        run_dir=cfg.run_dir,
        log_dir=cfg.log_dir,
        start_timeout=30,
    )
