"""The load generator: the platform's microservices writing their logs, with incidents.

At least ten services, each with its share of the traffic, its severity mix, its routes
(each with a typical latency) and the exceptions it normally throws. Incidents are
scheduled on the run's clock (seconds of event time from the start):

- :class:`ErrorBurst`     a share of a service's lines become errors;
- :class:`ServiceSilent`  a service writes nothing (the others carry on);
- :class:`LatencySpike`   a service's ``duration_ms`` is multiplied;
- :class:`NewException`   a service throws an exception type never seen before.

Lines an incident makes carry ``attributes["incident.id"]``, and the generator records
each incident's first line (:attr:`LogGenerator.first_lines`), so a bench can time an
alert from the first line of its incident. A silent service has no such line: its
first line is the first one written after the silence began.

Line ``i`` is stamped ``start + i / rate`` (event time). A paced run (:func:`pace`)
sends it at that moment; a run as fast as possible sends the same lines sooner. Same
seed, mix, incidents and start: the same lines, byte for byte.

:meth:`LogGenerator.malformed` writes the lines the downstream job must survive (not
JSON, missing fields, a 1 MiB body, invalid UTF-8), for fault tests.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from binascii import hexlify
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from flowgate.logs.record import ENVIRONMENT, HOST_NAME, SERVICE_NAME, RecordTemplate, encode

SEVERITIES = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")


_HEX_LETTERS = b"abcdef"

@dataclass(frozen=True)
class Route:
    method: str
    path: str
    median_ms: float


@dataclass(frozen=True)
class ServiceProfile:
    name: str
    weight: float                                  # share of all lines (relative to the others)
    routes: tuple[Route, ...]
    exceptions: tuple[tuple[str, str], ...]        # (exception.type, exception.message) it normally throws
    severity_mix: Mapping[str, float] = field(default_factory=lambda: dict(_NORMAL_MIX))
    hosts: int = 2


_NORMAL_MIX = {"DEBUG": 0.05, "INFO": 0.85, "WARN": 0.07, "ERROR": 0.028, "FATAL": 0.002}
_TIMEOUT = ("java.net.SocketTimeoutException", "Read timed out")
_POOL = ("org.postgresql.util.PSQLException", "Connection to the pool timed out after 30000 ms")


def _routes(*specs: tuple[str, str, float]) -> tuple[Route, ...]:
    return tuple(Route(method, path, median) for method, path, median in specs)


# A bank's platform: the services whose logs on-call reads.
DEFAULT_SERVICES: tuple[ServiceProfile, ...] = (
    ServiceProfile("api-gateway", 18, _routes(("GET", "/v1/accounts/{id}", 8), ("POST", "/v1/payments", 12)),
                   (_TIMEOUT, ("io.netty.channel.ConnectTimeoutException", "connection timed out: upstream"))),
    ServiceProfile("payments-api", 14, _routes(("POST", "/v1/payments", 45), ("GET", "/v1/payments/{id}", 9)),
                   (_POOL, ("com.flowgate.payments.DuplicatePaymentException", "idempotency key already used"))),
    ServiceProfile("card-gateway", 12, _routes(("POST", "/v1/authorisations", 60), ("POST", "/v1/captures", 35)),
                   (_TIMEOUT, ("com.flowgate.cards.IssuerDeclinedException", "issuer declined: do not honour"))),
    ServiceProfile("auth", 12, _routes(("POST", "/oauth/token", 20), ("GET", "/oauth/jwks", 2)),
                   (("com.flowgate.auth.InvalidGrantException", "refresh token expired"), _POOL)),
    ServiceProfile("ledger", 10, _routes(("POST", "/v1/entries", 15), ("GET", "/v1/balances/{account}", 6)),
                   (_POOL, ("com.flowgate.ledger.OptimisticLockException", "entry version conflict"))),
    ServiceProfile("fraud-scoring", 8, _routes(("POST", "/v1/score", 25),),
                   (_TIMEOUT, ("com.flowgate.fraud.ModelNotLoadedException", "no promoted model"))),
    ServiceProfile("customer-profile", 7, _routes(("GET", "/v1/customers/{id}", 10), ("PATCH", "/v1/customers/{id}", 30)),
                   (_POOL, ("com.flowgate.crm.ValidationException", "postcode does not match country"))),
    ServiceProfile("notifications", 6, _routes(("POST", "/v1/push", 80), ("POST", "/v1/email", 120)),
                   (("com.flowgate.notify.ProviderUnavailableException", "push provider answered 503"), _TIMEOUT)),
    ServiceProfile("fx-rates", 5, _routes(("GET", "/v1/rates/{pair}", 4),),
                   (("com.flowgate.fx.StaleRateException", "rate older than 60 s"), _TIMEOUT)),
    ServiceProfile("kyc", 3, _routes(("POST", "/v1/checks", 300), ("GET", "/v1/checks/{id}", 12)),
                   (("com.flowgate.kyc.DocumentRejectedException", "document unreadable"), _TIMEOUT)),
    ServiceProfile("statements", 3, _routes(("GET", "/v1/statements/{month}", 150),),
                   (("java.io.UncheckedIOException", "lake read failed"), _POOL)),
    ServiceProfile("merchant-onboarding", 2, _routes(("POST", "/v1/merchants", 200),),
                   (("com.flowgate.merchants.SanctionsHitException", "name matches a sanctions list"), _POOL)),
)


# --- incidents ----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Incident:
    id: str
    service: str
    start_s: float       # seconds of event time after the run's start
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True, kw_only=True)
class ErrorBurst(Incident):
    error_ratio: float = 0.5   # share of the service's lines that are errors during the burst


@dataclass(frozen=True, kw_only=True)
class ServiceSilent(Incident):
    pass


@dataclass(frozen=True, kw_only=True)
class LatencySpike(Incident):
    factor: float = 20.0


@dataclass(frozen=True, kw_only=True)
class NewException(Incident):
    exception_type: str = "java.lang.OutOfMemoryError"
    message: str = "Java heap space"
    ratio: float = 0.2   # share of the service's lines that throw it


INCIDENT_KINDS: dict[str, type[Incident]] = {
    "error_burst": ErrorBurst, "silent": ServiceSilent, "latency_spike": LatencySpike, "new_exception": NewException,
}


def parse_incident(spec: str) -> Incident:
    """``kind:service:start_s:duration_s`` (e.g. ``error_burst:payments-api:10:30``), the
    CLI's form; the incident id is ``<kind>-<service>-<start>``."""
    try:
        kind, service, start, duration = spec.split(":")
        cls = INCIDENT_KINDS[kind]
        return cls(id=f"{kind}-{service}-{start}", service=service, start_s=float(start), duration_s=float(duration))
    except (KeyError, ValueError) as error:
        raise ValueError(f"{spec!r}: expected kind:service:start_s:duration_s with kind one of "
                         f"{', '.join(INCIDENT_KINDS)}") from error


@dataclass(frozen=True)
class LoadMix:
    """What the generator plays: the services, the line rate (event time) and incidents."""

    rate_per_s: float = 1000.0
    services: tuple[ServiceProfile, ...] = DEFAULT_SERVICES
    incidents: tuple[Incident, ...] = ()
    environment: str = "local"

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        names = [s.name for s in self.services]
        if len(set(names)) != len(names) or not names:
            raise ValueError("services must be a non-empty list of distinct names")
        for service in self.services:
            if service.weight <= 0 or not service.routes or not service.exceptions:
                raise ValueError(f"{service.name}: needs a weight > 0, routes and exceptions")
            unknown = set(service.severity_mix) - set(SEVERITIES)
            if unknown or sum(service.severity_mix.values()) <= 0:
                raise ValueError(f"{service.name}: severity_mix needs weights over {SEVERITIES}")
        for incident in self.incidents:
            if incident.service not in names:
                raise ValueError(f"incident {incident.id}: no service {incident.service!r}")
        known = {t for s in self.services for t, _ in s.exceptions}
        for incident in self.incidents:
            if isinstance(incident, NewException) and incident.exception_type in known:
                raise ValueError(f"incident {incident.id}: {incident.exception_type} is not new")

    def with_service(self, name: str, **changes) -> LoadMix:
        """This mix with one service changed (its weight, severity mix, ...)."""
        if name not in {s.name for s in self.services}:
            raise ValueError(f"no service {name!r}")
        return replace(self, services=tuple(replace(s, **changes) if s.name == name else s for s in self.services))


@dataclass(frozen=True)
class FirstLine:
    seq: int           # the line's index in the run
    timestamp_ns: int  # its event time


MalformedKind = Literal["not_json", "missing_fields", "huge_body", "invalid_utf8"]
MALFORMED_KINDS: tuple[MalformedKind, ...] = ("not_json", "missing_fields", "huge_body", "invalid_utf8")
HUGE_BODY_BYTES = 1024 * 1024


# --- the generator ------------------------------------------------------------------

def _normal_quantiles(n: int) -> tuple[float, ...]:
    from statistics import NormalDist

    dist = NormalDist()
    return tuple(dist.inv_cdf((k + 0.5) / n) for k in range(n))


# Latency multipliers: lognormal (sigma 0.5) quantiles, so a draw is one table lookup
# instead of a lognormvariate call (a third of a line's budget at 50,000 lines/s).
_LATENCY_TABLE = tuple(math.exp(0.5 * z) for z in _normal_quantiles(1024))


class _ServiceTemplates:
    """One service's pre-encoded lines: per severity, a list of (template, median ms)."""

    def __init__(self, service: ServiceProfile, environment: str):
        self.by_severity: dict[str, list[tuple[RecordTemplate, float]]] = {}
        for severity in SEVERITIES:
            options = []
            for host, route in itertools.product(range(1, service.hosts + 1), service.routes):
                resource = {SERVICE_NAME: service.name, HOST_NAME: f"{service.name}-{host}", ENVIRONMENT: environment}
                attrs = {"http.request.method": route.method, "http.route": route.path}
                if severity in ("ERROR", "FATAL"):
                    for exc_type, message in service.exceptions:
                        options.append((_template(severity, f"{exc_type}: {message}", resource,
                                                  {**attrs, "http.response.status_code": 500,
                                                   "exception.type": exc_type, "exception.message": message}),
                                        route.median_ms))
                else:
                    status = 200 if severity != "WARN" else 429
                    body = {"DEBUG": f"{route.method} {route.path} handler entered",
                            "INFO": f"{route.method} {route.path} completed",
                            "WARN": f"{route.method} {route.path} throttled: rate limit reached"}[severity]
                    options.append((_template(severity, body, resource, {**attrs, "http.response.status_code": status}),
                                    route.median_ms))
            self.by_severity[severity] = options
        weights = [max(0.0, service.severity_mix.get(s, 0.0)) for s in SEVERITIES]
        self.severity_cumulative = tuple(itertools.accumulate(weights))
        self.routes, self.environment, self.hosts, self.name = service.routes, environment, service.hosts, service.name

    def new_exception(self, incident: NewException) -> list[tuple[RecordTemplate, float]]:
        options = []
        for host, route in itertools.product(range(1, self.hosts + 1), self.routes):
            resource = {SERVICE_NAME: self.name, HOST_NAME: f"{self.name}-{host}", ENVIRONMENT: self.environment}
            options.append((_template("ERROR", f"{incident.exception_type}: {incident.message}", resource, {
                "http.request.method": route.method, "http.route": route.path, "http.response.status_code": 500,
                "exception.type": incident.exception_type, "exception.message": incident.message}), route.median_ms))
        return options


def _template(severity: str, body: str, resource: dict, attributes: dict) -> RecordTemplate:
    return RecordTemplate(severity=severity, body=body, resource=resource, attributes=attributes)


@dataclass
class _Phase:
    """What holds between two incident boundaries: who may log, and each one's effects."""

    until_s: float
    service_cumulative: tuple[float, ...]
    service_index: tuple[int, ...]
    bursts: dict[int, ErrorBurst]
    spikes: dict[int, LatencySpike]
    new_exceptions: dict[int, NewException]


class LogGenerator:
    def __init__(self, mix: LoadMix, seed: int, start_ns: int | None = None):
        self.mix, self.seed = mix, seed
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.rng = random.Random(seed)
        self.seq = 0
        self.first_lines: dict[str, FirstLine] = {}
        self._uid_prefix = f"{seed:x}-".encode()
        self._interval_ns = 1e9 / mix.rate_per_s
        self._services = [_ServiceTemplates(s, mix.environment) for s in mix.services]
        self._index = {s.name: i for i, s in enumerate(mix.services)}
        self._new_templates = {inc.id: self._services[self._index[inc.service]].new_exception(inc)
                               for inc in mix.incidents if isinstance(inc, NewException)}
        self._phase = self._phase_at(0.0)

    # --- the schedule -----------------------------------------------------------
    def _phase_at(self, t_s: float) -> _Phase:
        incidents = self.mix.incidents
        active = [inc for inc in incidents if inc.start_s <= t_s < inc.end_s]
        boundaries = [b for inc in incidents for b in (inc.start_s, inc.end_s) if b > t_s]
        silent = {self._index[inc.service] for inc in active if isinstance(inc, ServiceSilent)}
        logging = tuple(i for i in range(len(self._services)) if i not in silent)
        if not logging:
            raise ValueError(f"every service is silent at {t_s}s")
        weights = [self.mix.services[i].weight for i in logging]
        for inc in active:
            if isinstance(inc, ServiceSilent) and inc.id not in self.first_lines:
                # A silence has no line of its own: its start is the first line after it began.
                self.first_lines[inc.id] = FirstLine(self.seq, self._timestamp(self.seq))
        return _Phase(
            until_s=min(boundaries, default=math.inf),
            service_cumulative=tuple(itertools.accumulate(weights)), service_index=logging,
            bursts={self._index[i.service]: i for i in active if isinstance(i, ErrorBurst)},
            spikes={self._index[i.service]: i for i in active if isinstance(i, LatencySpike)},
            new_exceptions={self._index[i.service]: i for i in active if isinstance(i, NewException)},
        )

    def _timestamp(self, seq: int) -> int:
        return self.start_ns + int(seq * self._interval_ns)

    # --- lines ------------------------------------------------------------------
    def lines(self, count: int) -> list[bytes]:
        """The next ``count`` lines. The hot loop: locals only, one template per line."""
        rng = self.rng
        random_, randbytes = rng.random, rng.randbytes
        services, latency, n_latency = self._services, _LATENCY_TABLE, len(_LATENCY_TABLE)
        uid_prefix, interval, start_ns = self._uid_prefix, self._interval_ns, self.start_ns
        rate = self.mix.rate_per_s
        phase = self._phase
        out = []
        append = out.append
        for _ in range(count):
            seq = self.seq
            t_s = seq / rate
            if t_s >= phase.until_s:
                phase = self._phase = self._phase_at(t_s)
            cumulative = phase.service_cumulative
            svc = phase.service_index[bisect.bisect_right(cumulative, random_() * cumulative[-1])]
            templates = services[svc]
            incident = None
            burst = phase.bursts.get(svc) if phase.bursts else None
            novel = phase.new_exceptions.get(svc) if phase.new_exceptions else None
            if novel is not None and random_() < novel.ratio:
                options, incident = self._new_templates[novel.id], novel
            elif burst is not None and random_() < burst.error_ratio:
                options, incident = templates.by_severity["ERROR"], burst
            else:
                sev_cumulative = templates.severity_cumulative
                severity = SEVERITIES[bisect.bisect_right(sev_cumulative, random_() * sev_cumulative[-1])]
                options = templates.by_severity[severity]
            template, median_ms = options[int(random_() * len(options))]
            duration = median_ms * latency[int(random_() * n_latency)]
            spike = phase.spikes.get(svc) if phase.spikes else None
            if spike is not None:
                duration *= spike.factor
                incident = incident or spike
            timestamp = start_ns + int(seq * interval)
            # 24 random bytes as 48 hex digits: trace id, then span id (one call, no int formatting).
            # Each id starts with a hex letter: one in ~2,000 random span ids is all decimal
            # digits, and the PAN scan cannot tell such a 16-digit id from a card number.
            ids = bytearray(hexlify(randbytes(24)))
            ids[0], ids[32] = _HEX_LETTERS[ids[0] % 6], _HEX_LETTERS[ids[32] % 6]
            marker = b""
            if incident is not None:
                marker = incident.id.encode()
                if incident.id not in self.first_lines:
                    self.first_lines[incident.id] = FirstLine(seq, timestamp)
            # Observed ~0-3 ms after the event: the time a collector would have read it.
            append(template.render(timestamp, timestamp + (seq * 7919) % 3_000_000, duration,
                                   uid_prefix + str(seq).encode(), ids[:32], ids[32:], marker))
            self.seq = seq + 1
        return out

    def next_line(self) -> bytes:
        return self.lines(1)[0]

    def uid(self, seq: int) -> str:
        """The ``log.record.uid`` of line ``seq`` of this run."""
        return f"{self.seed:x}-{seq}"

    # --- lines the downstream job must survive --------------------------------------
    def malformed(self, kind: MalformedKind) -> bytes:
        """One bad line of ``kind``; it uses a sequence number, and names its uid where
        the line can hold one, so a test finds it in the lake."""
        seq = self.seq
        self.seq += 1
        uid = self.uid(seq)
        timestamp = self._timestamp(seq)
        if kind == "not_json":
            return f"{timestamp} ERROR payments-api uid={uid} plain text, not JSON".encode()
        if kind == "missing_fields":
            return encode({"timestamp": timestamp, "body": "no severity, resource or ids",
                           "attributes": {"log.record.uid": uid}})
        if kind == "huge_body":
            return encode({"timestamp": timestamp, "observed_timestamp": timestamp, "severity_text": "ERROR",
                           "severity_number": 17, "body": "x" * HUGE_BODY_BYTES,
                           "resource": {SERVICE_NAME: "statements", HOST_NAME: "statements-1",
                                        ENVIRONMENT: self.mix.environment},
                           "attributes": {"log.record.uid": uid}, "trace_id": "0" * 32, "span_id": "0" * 16})
        if kind == "invalid_utf8":
            return (b'{"timestamp":' + str(timestamp).encode() + b',"body":"bad \xff\xfe bytes",'
                    b'"attributes":{"log.record.uid":"' + uid.encode() + b'"}}')
        raise ValueError(f"unknown malformed kind {kind!r}; one of {MALFORMED_KINDS}")


# --- sending -----------------------------------------------------------------------

@dataclass(frozen=True)
class PaceReport:
    lines: int
    seconds: float
    target_rate: float | None   # None: as fast as possible
    max_behind_s: float

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else float("inf")


def pace(generator: LogGenerator, sink: Callable[[Sequence[bytes]], object], count: int,
         rate_per_s: float | None = None, *, batch: int = 500,
         clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep) -> PaceReport:
    """Hand ``count`` lines to ``sink`` (e.g. ``Forwarder.send_many``) in batches: at
    ``rate_per_s`` (line i due i / rate after the first), or as fast as possible (None).

    Batches, because the per-call overhead of a sink is what limits a Python producer; a
    paced batch is small enough (<= 10 ms of lines) that the pacing stays smooth."""
    if rate_per_s is not None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0 (or None for as fast as possible)")
        batch = max(1, min(batch, int(rate_per_s / 100)))
    started = clock()
    sent, max_behind = 0, 0.0
    while sent < count:
        n = min(batch, count - sent)
        if rate_per_s is not None:
            due = started + (sent + n - 1) / rate_per_s
            now = clock()
            if now < due:
                sleep(due - now)
            else:
                max_behind = max(max_behind, now - due)
        sink(generator.lines(n))
        sent += n
    return PaceReport(sent, clock() - started, rate_per_s, max_behind)

