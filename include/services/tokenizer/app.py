"""The HTTP API: ``POST /v1/tokenize`` (a batch of envelopes) and ``GET /health``.

The clear PAN exists only in a local variable of :func:`_tokenize_one` while it is hashed;
nothing here logs a PAN or an envelope body, and per-item errors carry only a reason.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from flowgate.fraud.envelope import EnvelopeError, generate_keypair, load_private_key, open_envelope

from tokenizer.settings import MAX_BATCH, Settings
from tokenizer.tokens import card_token, load_or_create_hmac_key
from tokenizer.vault import CardRecord, MemoryVault, PostgresVault

log = logging.getLogger("tokenizer")


class TokenizeRequest(BaseModel):
    # Items are not typed as str: a non-string item is one bad envelope, not a bad batch.
    envelopes: list[Any] = Field(max_length=MAX_BATCH)


@dataclass
class Tokenizer:
    private_key: Any
    hmac_key: bytes
    vault: MemoryVault | PostgresVault

    def tokenize(self, envelopes: list[Any]) -> list[dict[str, str]]:
        results: list[dict[str, str]] = []
        cards: list[CardRecord] = []
        for envelope in envelopes:
            try:
                card = self._tokenize_one(envelope)
            except EnvelopeError as err:
                results.append({"error": err.reason})
                continue
            cards.append(card)
            results.append({"token": card.token, "bin": card.bin, "last4": card.last4})
        self.vault.record(cards)  # before answering: a token we hand out is always in the vault
        return results

    def _tokenize_one(self, envelope: Any) -> CardRecord:
        pan = open_envelope(self.private_key, envelope)
        return CardRecord(token=card_token(self.hmac_key, pan), bin=pan[:6], last4=pan[-4:])


def build_tokenizer(settings: Settings) -> Tokenizer:
    private_path, public_path = generate_keypair(settings.key_dir)
    if settings.public_key_export is not None:
        settings.public_key_export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(public_path, settings.public_key_export)
    vault = PostgresVault(settings.database_url) if settings.database_url else MemoryVault()
    if isinstance(vault, MemoryVault):
        log.warning("vault in memory (TOKENIZER_VAULT=memory): tokens are not persisted")
    return Tokenizer(load_private_key(private_path), load_or_create_hmac_key(settings.key_dir), vault)


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.tokenizer = build_tokenizer(Settings.from_env())
    try:
        yield
    finally:
        app.state.tokenizer.vault.close()


app = FastAPI(title="FlowGate tokenizer", lifespan=lifespan, docs_url=None, redoc_url=None)


@app.exception_handler(RequestValidationError)
async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's default 422 echoes the request body back; ours names only the problem."""
    problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()][:5]
    return JSONResponse({"detail": problems}, status_code=422)


@app.get("/health")
def health() -> dict[str, str]:
    try:
        app.state.tokenizer.vault.check()
    except psycopg.Error as err:
        raise HTTPException(503, "vault unavailable") from err
    return {"status": "ok"}


@app.post("/v1/tokenize")
def tokenize(request: TokenizeRequest) -> JSONResponse:
    """Sync on purpose: FastAPI runs it in its thread pool, so /health stays responsive."""
    try:
        results = app.state.tokenizer.tokenize(request.envelopes)
    except psycopg.Error as err:
        log.error("vault write failed: %s", type(err).__name__)
        raise HTTPException(503, "vault unavailable") from err
    return JSONResponse({"results": results})
