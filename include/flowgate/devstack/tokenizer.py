"""The tokenization service (include/services/tokenizer) as a process of the local stack.

It runs from the checkout with ``--app-dir include/services`` rather than from the
installed package: only this process should ever import the code that holds the
envelope private key and the token HMAC key. Its keys live under the stack's secrets
dir (``.flowgate/secrets/tokenizer/``), generated once per checkout, never in git; its
vault is the ``tokenizer`` database, owned by a role of its own.
"""

from __future__ import annotations

from pathlib import Path

from flowgate.devstack import postgres, services
from flowgate.devstack.config import LOOPBACK, StackConfig
from flowgate.devstack.process import Service, http_ok
from flowgate.fraud.envelope import PUBLIC_KEY_FILE, generate_keypair

APP = "tokenizer.app:app"


def tokenizer_url(cfg: StackConfig) -> str:
    return f"http://{LOOPBACK}:{cfg.ports.tokenizer}"


def tokenizer_key_dir(cfg: StackConfig) -> Path:
    """Envelope private key + token HMAC key: read by the tokenizer process only."""
    return cfg.secrets_dir / "tokenizer"


def tokenizer_public_key(cfg: StackConfig) -> Path:
    """The public PEM the gateway seals PANs with (FLOWGATE_TOKENIZER_PUBLIC_KEY)."""
    return tokenizer_key_dir(cfg) / PUBLIC_KEY_FILE


def uvicorn_argv(root: Path, host: str, port: int) -> list[str]:
    """The command that serves the tokenizer (request lines carry no PAN, but the hot path
    needs no log line either); the unit tests start it the same way."""
    return services.uvicorn_argv(APP, root, host, port)


def tokenizer_service(cfg: StackConfig) -> Service:
    return Service(
        name="tokenizer",
        argv=uvicorn_argv(cfg.root, LOOPBACK, cfg.ports.tokenizer),
        health=lambda: http_ok(f"{tokenizer_url(cfg)}/health"),
        run_dir=cfg.run_dir,
        log_dir=cfg.log_dir,
        # The vault password goes through the environment, not argv (which `ps` shows).
        env={
            "TOKENIZER_KEY_DIR": str(tokenizer_key_dir(cfg)),
            "TOKENIZER_DATABASE_URL": postgres.database_url(cfg, "tokenizer"),
        },
        # Keys exist before the first start, so the gateway can seal with the public key
        # as soon as `up` has written .env; the service would generate them too.
        prepare=lambda: generate_keypair(tokenizer_key_dir(cfg)),
        start_timeout=30,
    )
