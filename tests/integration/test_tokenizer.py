"""The stack's tokenization service end to end: envelopes in, keyed tokens out, and a vault
in PostgreSQL that holds token, BIN, last four and dates — never a card number."""

from __future__ import annotations

import random

import psycopg
import pytest

from flowgate.common.pan_scan import find_pans
from flowgate.devstack import postgres, process
from flowgate.devstack.tokenizer import tokenizer_public_key, tokenizer_service, tokenizer_url
from flowgate.fraud.envelope import load_public_key, seal_pan
from flowgate.fraud.pan import synthetic_pan
from flowgate.fraud.tokenizer_client import CardToken, InvalidEnvelope, TokenizerClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pans() -> list[str]:
    rng = random.Random()  # fresh cards each run: the vault must be new to some of them
    return [synthetic_pan(rng) for _ in range(40)]


@pytest.fixture(scope="module")
def seal(running_stack):
    public_key = load_public_key(tokenizer_public_key(running_stack))
    return lambda pan: seal_pan(public_key, pan)


@pytest.fixture
def client(running_stack):
    with TokenizerClient(tokenizer_url(running_stack), timeout_s=5.0) as client:
        yield client


def _vault_rows(cfg, tokens: list[str]) -> tuple[list[str], list[tuple]]:
    with psycopg.connect(postgres.database_url(cfg, "tokenizer")) as conn:
        cur = conn.execute("select * from vault.card_tokens where token = any(%s) order by token", (tokens,))
        return [c.name for c in cur.description], cur.fetchall()


def test_a_batch_gets_one_token_per_card_in_order(client, seal, pans):
    envelopes = [seal(p) for p in pans] + ["v1.tampered"] + [seal(p) for p in pans[:5]]
    results = client.tokenize(envelopes)
    assert len(results) == len(envelopes)
    cards, invalid, repeats = results[:40], results[40], results[41:]
    assert all(isinstance(r, CardToken) for r in cards)
    assert isinstance(invalid, InvalidEnvelope)
    assert [(r.bin, r.last4) for r in cards] == [(p[:6], p[-4:]) for p in pans]
    assert repeats == cards[:5], "the same card must get the same token"
    assert len({r.token for r in cards}) == len(set(pans)), "different cards must get different tokens"


def test_the_vault_holds_token_bin_last4_and_dates_and_no_pan(running_stack, client, seal, pans):
    tokens = [r.token for r in client.tokenize([seal(p) for p in pans])]
    columns, rows = _vault_rows(running_stack, tokens)
    assert columns == ["token", "bin", "last4", "first_seen", "last_seen"]
    assert sorted(r[0] for r in rows) == sorted(set(tokens))
    by_token = {r[0]: r for r in rows}
    for token, pan in zip(tokens, pans):
        assert (by_token[token][1], by_token[token][2]) == (pan[:6], pan[-4:])
    dump = "\n".join("|".join(str(v) for v in row) for row in rows).encode()
    assert find_pans(dump) == []
    assert not any(p.encode() in dump for p in pans)


def test_only_the_tokenizer_role_may_connect_to_the_vault(running_stack):
    dsn = postgres.database_url(running_stack, "warehouse").rsplit("/", 1)[0] + "/tokenizer"
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(dsn).close()


def test_tokens_stay_the_same_across_a_restart(running_stack, client, seal, pans):
    before = client.tokenize([seal(p) for p in pans[:10]])
    service = tokenizer_service(running_stack)
    assert process.stop(service)
    process.start(service)
    with TokenizerClient(tokenizer_url(running_stack), timeout_s=5.0) as fresh:
        after = fresh.tokenize([seal(p) for p in pans[:10]])
    assert after == before
    _, rows = _vault_rows(running_stack, [r.token for r in after])
    assert len(rows) == 10
