"""The stream's client of the tokenization service, behind a circuit breaker.

When the tokenizer is down or slow, every micro-batch would otherwise wait out its
timeout on every call; the breaker turns that into an immediate
:class:`TokenizerUnavailable` (no network at all) for ``reset_timeout_s``, then lets one
trial call through (half-open) that closes it again or re-opens it. What to decide for a
transaction meanwhile is ``policy``'s job, not this module's.

A bad envelope is the sender's fault, not the service's: it comes back as an
:class:`InvalidEnvelope` item and never counts against the breaker.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import pybreaker

TOKENIZE_PATH = "/v1/tokenize"


@dataclass(frozen=True)
class CardToken:
    token: str
    bin: str
    last4: str


@dataclass(frozen=True)
class InvalidEnvelope:
    reason: str


class TokenizerUnavailable(Exception):
    """The breaker is open, or the call timed out, could not connect, or got a 5xx."""


class TokenizerRequestError(Exception):
    """The service rejected the request itself (a 4xx, e.g. a batch over its limit): a bug
    on our side that retrying cannot fix, so it does not open the breaker."""


# Envelopes per request: ~0.1 s of the service's work at its measured ~3,000/s, well
# inside the default timeout, and under the service's own MAX_BATCH.
REQUEST_SIZE = 250


class TokenizerClient:
    def __init__(self, base_url: str, *, timeout_s: float = 0.5, fail_max: int = 3,
                 reset_timeout_s: float = 5.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30.0),
        )
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max, reset_timeout=reset_timeout_s, exclude=[TokenizerRequestError],
            name="tokenizer",
        )
        self._trial = threading.Lock()  # one trial call at a time while not closed

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (open stays open until a call after the reset timeout)."""
        return self._breaker.current_state

    def tokenize(self, envelopes: Sequence[str]) -> list[CardToken | InvalidEnvelope]:
        """One result per envelope, in order. Raises TokenizerUnavailable (or TokenizerRequestError).

        Sent in requests of at most ``REQUEST_SIZE`` envelopes: the timeout is per request,
        so a big micro-batch (a backlog after a restart) is not mistaken for a slow service.
        """
        results: list[CardToken | InvalidEnvelope] = []
        for start in range(0, len(envelopes), REQUEST_SIZE):
            results += self._tokenize_request(envelopes[start:start + REQUEST_SIZE])
        return results

    def _tokenize_request(self, envelopes: Sequence[str]) -> list[CardToken | InvalidEnvelope]:
        if not envelopes:
            return []
        if self._breaker.current_state == pybreaker.STATE_CLOSED:
            return self._guarded(envelopes)
        if not self._trial.acquire(blocking=False):
            raise TokenizerUnavailable("tokenizer circuit open (a trial call is in flight)")
        try:
            return self._guarded(envelopes)
        finally:
            self._trial.release()

    def _guarded(self, envelopes: Sequence[str]) -> list[CardToken | InvalidEnvelope]:
        try:
            return self._breaker.call(self._post, list(envelopes))
        except pybreaker.CircuitBreakerError as err:
            # Raised both when open (no call made) and on the failure that trips it.
            cause = err.__context__ if isinstance(err.__context__, TokenizerUnavailable) else None
            raise TokenizerUnavailable(f"tokenizer circuit open{f' ({cause})' if cause else ''}") from err

    def _post(self, envelopes: list[str]) -> list[CardToken | InvalidEnvelope]:
        try:
            response = self._http.post(TOKENIZE_PATH, json={"envelopes": envelopes})
        except httpx.TimeoutException as err:
            raise TokenizerUnavailable(f"tokenizer timed out ({type(err).__name__})") from err
        except httpx.TransportError as err:
            raise TokenizerUnavailable(f"tokenizer unreachable ({type(err).__name__})") from err
        if response.status_code >= 500:
            raise TokenizerUnavailable(f"tokenizer answered {response.status_code}")
        if response.status_code >= 400:
            # Never the request body: it holds envelopes.
            raise TokenizerRequestError(f"tokenizer rejected the batch: {response.status_code} {response.text[:200]}")
        return _parse_results(response, len(envelopes))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TokenizerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _parse_results(response: httpx.Response, expected: int) -> list[CardToken | InvalidEnvelope]:
    try:
        items = response.json()["results"]
        if len(items) != expected:
            raise ValueError(f"{len(items)} results for {expected} envelopes")
        return [InvalidEnvelope(item["error"]) if "error" in item
                else CardToken(item["token"], item["bin"], item["last4"]) for item in items]
    except (ValueError, KeyError, TypeError) as err:
        # A service that answers nonsense is as unusable as one that does not answer.
        raise TokenizerUnavailable(f"tokenizer answered an unreadable response ({err})") from err
