"""Post alerts to Prometheus Alertmanager, the platform's one alert path (its v2 API).

Whoever detects a condition (a log rule in a stream, a stream-health check, later a failed
task) builds an :class:`Alert` and calls :meth:`AlertmanagerClient.fire`; Alertmanager
groups alerts by alertname, rule, service and env, drops duplicates, and sends on-call one
Slack message per group (the ``alertmanager`` connection says where it is; the route lives
in ``flowgate.devstack.alertmanager``).

- **Re-post while firing.** An alert without ``ends_at`` resolves itself after
  Alertmanager's ``resolve_timeout`` (5 min) unless it is posted again: fire it again on
  every evaluation (each micro-batch) while the condition holds. Re-posting is free: the
  same labels are the same alert.
- **Resolve** when the condition clears: :meth:`AlertmanagerClient.resolve` posts the same
  labels with ``endsAt`` now, and on-call gets the RESOLVED message.
- **Nothing is lost silently.** When Alertmanager stays unreachable through the retries,
  :class:`AlertmanagerUnavailable` is raised and carries exactly the alerts not delivered
  (``err.alerts``, firing or resolved as they were posted): keep them and post them again
  on the next evaluation, e.g. ``client.post(pending + new)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import httpx
import tenacity

ALERTMANAGER_CONN_ID = "alertmanager"
ALERTS_PATH = "/api/v2/alerts"
SEVERITIES = ("critical", "warning", "info")
# The labels every platform alert has (and Alertmanager groups by); others are extra_labels.
CORE_LABELS = ("alertname", "rule", "service", "severity", "env")
ANNOTATIONS = ("summary", "sample", "runbook_url", "opensearch_url")
# Slack shows a few lines; a log line can be 1 MB. The sample is a hint, not evidence.
MAX_SAMPLE_CHARS = 500


@dataclass(frozen=True)
class Alert:
    """One alert. The labels identify it (same labels = same alert, deduplicated); the
    annotations are what on-call reads. ``sample`` must already be redacted: it is shown
    as it is."""

    alertname: str
    rule: str
    service: str
    severity: str
    env: str
    summary: str
    sample: str = ""
    runbook_url: str = ""
    opensearch_url: str = ""
    starts_at: datetime | None = None  # None: Alertmanager takes the time it first sees it
    ends_at: datetime | None = None  # None while firing; set (to now) to resolve
    generator_url: str = ""  # where the alert comes from (e.g. the DAG run or the stream's UI)
    # More identity for alerts that need it (e.g. dag_id, task_id); not part of the grouping.
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        empty = [name for name, value in self.labels.items() if not value]
        if empty:
            raise ValueError(f"alert label(s) {empty} empty: Alertmanager would drop or merge the alert")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        for name in ("starts_at", "ends_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (Alertmanager reads RFC 3339 with an offset)")

    @classmethod
    def of(cls, labels: Mapping[str, str], annotations: Mapping[str, str], *, starts_at: datetime | None = None,
           ends_at: datetime | None = None, generator_url: str = "") -> Alert:
        """An alert from its labels and annotations (what Alertmanager and a rule engine speak)."""
        return cls(**{k: labels[k] for k in CORE_LABELS}, **{k: annotations.get(k, "") for k in ANNOTATIONS},
                   starts_at=starts_at, ends_at=ends_at, generator_url=generator_url,
                   extra_labels={k: v for k, v in labels.items() if k not in CORE_LABELS})

    @classmethod
    def from_api(cls, body: Mapping) -> Alert:
        """The alert a postableAlert (:meth:`to_api`) describes."""
        moment = lambda key: datetime.fromisoformat(body[key]) if body.get(key) else None  # noqa: E731
        return cls.of(body["labels"], body.get("annotations", {}), starts_at=moment("startsAt"),
                      ends_at=moment("endsAt"), generator_url=body.get("generatorURL", ""))

    @property
    def labels(self) -> dict[str, str]:
        return {**self.extra_labels, "alertname": self.alertname, "rule": self.rule, "service": self.service,
                "severity": self.severity, "env": self.env}

    @property
    def key(self) -> str:
        """A readable identity, for error messages and logs."""
        return "/".join((self.alertname, self.rule, self.service, self.env, self.severity))

    def resolved(self, at: datetime | None = None) -> Alert:
        return replace(self, ends_at=at or datetime.now(UTC))

    def to_api(self) -> dict:
        """The v2 API's postableAlert."""
        annotations = {k: getattr(self, k) for k in ANNOTATIONS} | {"sample": self.sample[:MAX_SAMPLE_CHARS]}
        body: dict = {"labels": self.labels, "annotations": {k: v for k, v in annotations.items() if v}}
        if self.starts_at:
            body["startsAt"] = self.starts_at.isoformat()
        if self.ends_at:
            body["endsAt"] = self.ends_at.isoformat()
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body


class AlertsNotDelivered(Exception):
    """Alertmanager did not take ``alerts``; the message names each of them."""

    def __init__(self, alerts: Sequence[Alert], reason: str) -> None:
        self.alerts = tuple(alerts)
        self.reason = reason
        names = ", ".join(alert.key for alert in self.alerts)
        super().__init__(f"{len(self.alerts)} alert(s) not delivered to Alertmanager ({reason}): {names}")


class AlertmanagerUnavailable(AlertsNotDelivered):
    """Unreachable, timing out or answering 5xx through every retry: post ``alerts`` again later."""


class AlertsRejected(AlertsNotDelivered):
    """A 4xx: Alertmanager refuses the alerts themselves, a bug on our side that
    re-posting cannot fix (so it is not retried)."""


class _Transient(Exception):
    """One failed attempt worth retrying."""


class AlertmanagerClient:
    def __init__(self, base_url: str, *, timeout_s: float = 2.0, attempts: int = 3, backoff_s: float = 0.25) -> None:
        # Three short tries (~0.75 s of waiting) ride out a restart's blip without holding a
        # stream's micro-batch for long; past that, the caller keeps the alerts pending.
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(timeout_s))
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=backoff_s, max=2.0),
            reraise=True,
        )

    @classmethod
    def from_connection(cls, conn_id: str = ALERTMANAGER_CONN_ID, **kwargs) -> AlertmanagerClient:
        """A client for the Airflow connection ``conn_id`` (``AIRFLOW_CONN_ALERTMANAGER`` locally)."""
        from flowgate.common.connections import http_base_url

        return cls(http_base_url(conn_id), **kwargs)

    def fire(self, alerts: Sequence[Alert]) -> None:
        """Post ``alerts`` as they are (firing, unless one carries ``ends_at``)."""
        self.post(alerts)

    def resolve(self, alerts: Sequence[Alert], at: datetime | None = None) -> None:
        """Post ``alerts`` as resolved at ``at`` (default now): on-call gets RESOLVED."""
        moment = at or datetime.now(UTC)
        self.post([alert.resolved(moment) for alert in alerts])

    def post(self, alerts: Sequence[Alert]) -> None:
        """One request for all of ``alerts``: delivered together or raised together."""
        if not alerts:
            return
        body = [alert.to_api() for alert in alerts]
        try:
            # A copy per call: a Retrying keeps the state of its current call on itself.
            response = self._retrying.copy()(self._attempt, body)
        except _Transient as err:
            raise AlertmanagerUnavailable(alerts, f"{err} at {self.base_url}") from err
        if response.status_code >= 400:
            raise AlertsRejected(alerts, f"{response.status_code} {response.text[:300]}")

    def _attempt(self, body: list[dict]) -> httpx.Response:
        try:
            response = self._http.post(ALERTS_PATH, json=body)
        except httpx.TransportError as err:  # connect errors and timeouts alike
            raise _Transient(f"unreachable: {type(err).__name__}") from err
        if response.status_code >= 500:
            raise _Transient(f"answered {response.status_code}")
        return response

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AlertmanagerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fire(alerts: Sequence[Alert], conn_id: str = ALERTMANAGER_CONN_ID) -> None:
    """Fire ``alerts`` through the ``conn_id`` Alertmanager (a client for one call)."""
    with AlertmanagerClient.from_connection(conn_id) as client:
        client.fire(alerts)


def resolve(alerts: Sequence[Alert], conn_id: str = ALERTMANAGER_CONN_ID) -> None:
    """Resolve ``alerts`` (now) through the ``conn_id`` Alertmanager."""
    with AlertmanagerClient.from_connection(conn_id) as client:
        client.resolve(alerts)
