"""Tell the owning team about schema drift, once per drift row, through Alertmanager.

A drift row (``raw_mobile.schema_drift``) is news once: the rows not yet notified are
locked, posted as one alert each (labels ``field`` and ``change``) and stamped
``notified_at`` in the same transaction. The alert's ``service`` is the app release that
showed the drift first (``mobile-app@3.0.0``): Alertmanager groups by it, so the team gets
one Slack message per release that drifted, and a later run's drift of another release
does not re-list this one's. If Alertmanager does not take them, the
transaction rolls back, nothing is stamped and the next run posts them again: a drift is
never silently lost, and never announced twice by us.

Each alert says which field, how it changed, first seen when and in which app version,
and the types observed — never a value (an event can carry an email).

Alertmanager resolves an alert that is not re-posted after its ``resolve_timeout``
(5 min): drift is an event, not a condition that holds, so the group's RESOLVED message
follows. The FIRING message is the notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from flowgate.common.alertmanager import Alert, AlertmanagerClient
from flowgate.customer360.mobile_store import RAW_SCHEMA

ALERTNAME = "MobileSchemaDrift"
RULE = "schema-drift"
SERVICE = "mobile-app"  # @<app version> is appended: see the module docstring
RUNBOOK = "docs/runbooks/customer_360_hourly.md#schema-drift"

CHANGE_WORDS = {"new_field": "new field", "type_change": "type change", "missing_field": "missing field"}


@dataclass(frozen=True)
class DriftNotice:
    field_path: str
    change: str
    expected_type: str | None
    observed_types: list[str]
    first_seen: datetime
    app_version: str
    type_conflicts: int


def renamed_from(notices: list[DriftNotice]) -> dict[str, str]:
    """New field -> the missing field it probably renames: same release, same parent
    object, and the missing field's type among the new one's. A hint for the team, not a
    verdict (the drift rows stay as they are: one new field, one missing field)."""
    missing = [n for n in notices if n.change == "missing_field"]
    hints = {}
    for new in (n for n in notices if n.change == "new_field"):
        candidates = [m.field_path for m in missing if m.app_version == new.app_version
                      and _parent(m.field_path) == _parent(new.field_path) and m.expected_type in new.observed_types]
        if len(candidates) == 1:
            hints[new.field_path] = candidates[0]
    return hints


def _parent(path: str) -> str:
    return path.rpartition(".")[0]


def drift_alert(notice: DriftNotice, *, owner: str, env: str, topic: str, renames: str | None = None) -> Alert:
    expected = f", expected {notice.expected_type}" if notice.expected_type else ""
    conflicts = f"; {notice.type_conflicts} event(s) left its typed column null" if notice.type_conflicts else ""
    rename = f"; perhaps a rename of `{renames}`" if renames else ""
    return Alert(
        alertname=ALERTNAME, rule=RULE, service=f"{SERVICE}@{notice.app_version}", severity="warning", env=env,
        summary=(f"{topic}: {CHANGE_WORDS[notice.change]} `{notice.field_path}` first seen "
                 f"{notice.first_seen.isoformat()} in app {notice.app_version} "
                 f"(observed {', '.join(notice.observed_types)}{expected}){conflicts}{rename}. "
                 "Kept raw in the payload; accept it in expectations/mobile_events.yaml."),
        runbook_url=RUNBOOK,
        extra_labels={"team": owner, "field": notice.field_path, "change": notice.change},
    )


def notify_schema_drift(conn: psycopg.Connection, client: AlertmanagerClient, *, owner: str, env: str,
                        topic: str, raw_schema: str = RAW_SCHEMA) -> list[DriftNotice]:
    """Post every drift row not yet notified and stamp it; the rows notified now."""
    s = sql.Identifier(raw_schema)
    with conn.transaction():
        rows = conn.execute(sql.SQL(
            "select field_path, change, expected_type, observed_types, first_seen, app_version, type_conflicts "
            "from {s}.schema_drift where notified_at is null order by first_seen, field_path, change "
            "for update").format(s=s)).fetchall()
        notices = [DriftNotice(*row) for row in rows]
        if not notices:
            return []
        renames = renamed_from(notices)
        client.fire([drift_alert(n, owner=owner, env=env, topic=topic, renames=renames.get(n.field_path))
                     for n in notices])  # raises: nothing stamped
        conn.execute(sql.SQL(
            "update {s}.schema_drift set notified_at = clock_timestamp() "
            "where notified_at is null and (field_path, change) in (select * from unnest(%s::text[], %s::text[]))"
        ).format(s=s), ([n.field_path for n in notices], [n.change for n in notices]))
    return notices
