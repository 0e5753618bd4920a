"""The tokenizer client against a real tokenizer (uvicorn, started here on a free port):
tokens, per-item errors, and the circuit breaker through stop, restart and a stalled server.

The service runs with its vault in memory (TOKENIZER_VAULT=memory): these tests are about
the HTTP contract and the breaker; tests/integration/test_tokenizer.py covers the vault.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flowgate.devstack import process
from flowgate.devstack.process import Service, http_ok
from flowgate.devstack.tokenizer import uvicorn_argv
from flowgate.fraud.envelope import PUBLIC_KEY_FILE, load_public_key, seal_pan
from flowgate.fraud.pan import synthetic_pan
from flowgate.fraud.tokenizer_client import (
    CardToken,
    InvalidEnvelope,
    TokenizerClient,
    TokenizerRequestError,
    TokenizerUnavailable,
)

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Tokenizer:
    service: Service
    url: str
    public_key: Any

    def stop(self) -> None:
        process.stop(self.service)

    def start(self) -> None:
        process.start(self.service)  # returns once /health answers


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Tokenizer:
    state = tmp_path_factory.mktemp("tokenizer")
    port = _free_port()
    svc = Service(
        name="tokenizer-test",
        argv=uvicorn_argv(REPO, "127.0.0.1", port),
        health=lambda: http_ok(f"http://127.0.0.1:{port}/health"),
        run_dir=state / "run", log_dir=state / "logs",
        env={"TOKENIZER_KEY_DIR": str(state / "keys"), "TOKENIZER_VAULT": "memory"},
        start_timeout=30,
    )
    process.start(svc)
    yield Tokenizer(svc, f"http://127.0.0.1:{port}", load_public_key(state / "keys" / PUBLIC_KEY_FILE))
    process.stop(svc)


@pytest.fixture
def running(tokenizer) -> Tokenizer:
    tokenizer.start()  # a no-op when a test before left it healthy
    return tokenizer


def _trip(client: TokenizerClient, envelopes: list[str], fail_max: int) -> None:
    for _ in range(fail_max):
        with pytest.raises(TokenizerUnavailable):
            client.tokenize(envelopes)
    assert client.breaker_state == "open"


def _fails_fast(client: TokenizerClient, envelopes: list[str]) -> float:
    started = time.perf_counter()
    with pytest.raises(TokenizerUnavailable, match="circuit open"):
        client.tokenize(envelopes)
    return time.perf_counter() - started


def test_tokenizes_a_batch_in_order_with_keyed_deterministic_tokens(running):
    rng = random.Random(5)
    pans = [synthetic_pan(rng, n) for n in ("visa", "mastercard", "amex", "discover")]
    envelopes = [seal_pan(running.public_key, p) for p in pans]
    with TokenizerClient(running.url) as client:
        first = client.tokenize(envelopes)
        again = client.tokenize([seal_pan(running.public_key, p) for p in pans])  # new envelopes, same cards
    assert [(r.bin, r.last4) for r in first] == [(p[:6], p[-4:]) for p in pans]
    assert all(isinstance(r, CardToken) and r.token.startswith("tok_") for r in first)
    assert first == again
    assert len({r.token for r in first}) == 4
    assert all(p not in r.token for p, r in zip(pans, first))


def test_a_bad_envelope_is_an_item_error_not_a_breaker_failure(running):
    good = seal_pan(running.public_key, synthetic_pan(random.Random(1), "visa"))
    tampered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    with TokenizerClient(running.url, fail_max=1) as client:
        for _ in range(3):
            results = client.tokenize([good, "v1.not-an-envelope", tampered, "hello"])
            assert isinstance(results[0], CardToken)
            assert [type(r) for r in results[1:]] == [InvalidEnvelope] * 3
            assert "authentication failed" in results[2].reason
        assert client.breaker_state == "closed"


def test_a_rejected_request_is_our_bug_and_does_not_open_the_breaker(running, monkeypatch):
    import flowgate.fraud.tokenizer_client as tokenizer_client

    monkeypatch.setattr(tokenizer_client, "REQUEST_SIZE", 10_000)  # one request over the limit
    with TokenizerClient(running.url, fail_max=1) as client:
        with pytest.raises(TokenizerRequestError, match="422"):
            client.tokenize(["x"] * 2_001)  # over the service's batch limit
        assert client.breaker_state == "closed"
        assert client.tokenize([]) == []


def test_breaker_opens_when_the_service_stops_fails_fast_and_closes_after_a_restart(running):
    envelopes = [seal_pan(running.public_key, synthetic_pan(random.Random(2)))]
    reset = 8.0
    with TokenizerClient(running.url, fail_max=3, reset_timeout_s=reset) as client:
        assert isinstance(client.tokenize(envelopes)[0], CardToken)
        running.stop()
        _trip(client, envelopes, fail_max=3)
        tripped = time.monotonic()
        running.start()
        assert running.service.health()
        # The service is back, yet the call fails at once: while open, no request is sent.
        assert _fails_fast(client, envelopes) < 0.05
        assert client.breaker_state == "open"
        time.sleep(max(0.0, reset - (time.monotonic() - tripped)) + 0.2)
        # The trial call (half-open) succeeds and closes the breaker.
        assert isinstance(client.tokenize(envelopes)[0], CardToken)
        assert client.breaker_state == "closed"


def test_a_failed_trial_call_reopens_the_breaker(running):
    envelopes = [seal_pan(running.public_key, synthetic_pan(random.Random(3)))]
    with TokenizerClient(running.url, fail_max=2, reset_timeout_s=1.0) as client:
        running.stop()
        _trip(client, envelopes, fail_max=2)
        time.sleep(1.1)
        with pytest.raises(TokenizerUnavailable, match="unreachable|circuit open"):
            client.tokenize(envelopes)  # the trial: still down
        assert client.breaker_state == "open"
        assert _fails_fast(client, envelopes) < 0.05


def test_a_stalled_service_times_out_and_counts_as_a_failure(running):
    envelopes = [seal_pan(running.public_key, synthetic_pan(random.Random(4)))]
    pid = process.running_pid(running.service.pid_file)
    with TokenizerClient(running.url, timeout_s=0.3, fail_max=2, reset_timeout_s=30) as client:
        assert isinstance(client.tokenize(envelopes)[0], CardToken)  # keep-alive connection open
        os.kill(pid, signal.SIGSTOP)  # the process still holds its socket but answers nothing
        try:
            started = time.perf_counter()
            with pytest.raises(TokenizerUnavailable, match="timed out"):
                client.tokenize(envelopes)
            assert 0.25 < time.perf_counter() - started < 2.0
            assert client.breaker_state == "closed"  # one failure of two
            with pytest.raises(TokenizerUnavailable):
                client.tokenize(envelopes)
            assert client.breaker_state == "open"
        finally:
            os.kill(pid, signal.SIGCONT)


def test_a_big_batch_goes_in_requests_the_service_accepts_and_keeps_its_order(running):
    rng = random.Random(9)
    pans = [synthetic_pan(rng) for _ in range(2_100)]  # over the service's per-request limit
    with TokenizerClient(running.url) as client:
        results = client.tokenize([seal_pan(running.public_key, p) for p in pans])
    assert [(r.bin, r.last4) for r in results] == [(p[:6], p[-4:]) for p in pans]
