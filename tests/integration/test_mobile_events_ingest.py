"""Mobile events on the real stack: the simulated app through three releases -> Kafka ->
Spark (availableNow, offsets in its checkpoint) -> raw_mobile in the warehouse, with the
drift listed and notified once through Alertmanager, type conflicts counted, duplicates
gone, a run with nothing new adding nothing, and the counts reconciled.

One scenario for the module (three spark-submits: each costs a JVM), asserted by the tests:
run 1 ingests release 1.0.0 and 2.0.0; run 2 ingests 3.0.0, events the phones resent
(from every release, some twice in one batch) and one message that is not an event; run 3
finds nothing new.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from confluent_kafka import Producer

from flowgate.common.connections import postgres_dsn
from flowgate.customer360.mobile_app import MobileApp, produce, resent
from flowgate.customer360.mobile_ingest import ingest_mobile_events
from flowgate.devstack import kafka, stack
from flowgate.devstack.services import alerts_file

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 30, 9, tzinfo=UTC)
IDENTITY_KEY = "test-identity-key"
V2_DRIFT = {("network", "new_field"), ("properties.screen_name", "new_field"), ("properties.screen", "missing_field")}
V3_DRIFT = {("user_id", "type_change"), ("device", "new_field"), ("device.os", "new_field"),
            ("device.os_version", "new_field"), ("device.model", "new_field")}


@pytest.fixture(scope="module")
def services(stack_config):
    with stack.running(stack_config, {"postgres", "kafka", "alert-sink", "alertmanager"}) as cfg:
        yield cfg


@pytest.fixture(scope="module")
def scenario(services, tmp_path_factory):
    run = uuid.uuid4().hex[:8]
    topic, raw_schema, env = f"mobile.events.test-{run}", f"raw_mobile_test_{run}", f"test-{run}"
    kafka.ensure_topics(services, topics=(kafka.topic_like("mobile.events", topic),))
    bootstrap = kafka.bootstrap_servers(services)
    sink = alerts_file(services)
    sink_offset = sink.stat().st_size if sink.exists() else 0
    ingest = dict(topic=topic, raw_schema=raw_schema, state_dir=tmp_path_factory.mktemp("mobile_state"),
                  alert_env=env, max_offsets_per_trigger=150)  # a few micro-batches a run

    app = MobileApp(seed=13, users=30, devices=45)
    releases = {v: app.events(v, 15, START.replace(hour=9 + i)) for i, v in enumerate(("1.0.0", "2.0.0", "3.0.0"))}
    produced = 0
    for version in ("1.0.0", "2.0.0"):
        produced += produce(releases[version], bootstrap, topic).messages
    first = ingest_mobile_events(**ingest)

    everything = [e for events in releases.values() for e in events]
    again = resent(everything, 0.1, seed=1)
    twice_in_a_batch = resent(releases["3.0.0"], 0.1, seed=2)
    produced += produce(releases["3.0.0"] + twice_in_a_batch + again, bootstrap, topic).messages
    produced += _produce_raw(bootstrap, topic, b"this is not an event")
    second = ingest_mobile_events(**ingest)
    third = ingest_mobile_events(**ingest)

    yield dict(run=run, topic=topic, raw_schema=raw_schema, env=env, releases=releases, produced=produced,
               resent=len(again) + len(twice_in_a_batch), runs=(first, second, third), sink=sink,
               sink_offset=sink_offset, dsn=postgres_dsn("warehouse"))
    with psycopg.connect(postgres_dsn("warehouse"), autocommit=True) as conn:
        conn.execute(f'drop schema "{raw_schema}" cascade')


def _produce_raw(bootstrap: str, topic: str, value: bytes) -> int:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value=value)
    assert producer.flush(30) == 0
    return 1


def _query(scenario, statement: str, *params):
    with psycopg.connect(scenario["dsn"]) as conn:
        return conn.execute(statement.replace("{s}", f'"{scenario["raw_schema"]}"'), params).fetchall()


def test_each_event_is_in_the_table_once_whatever_was_resent(scenario):
    wanted = {e["event_id"] for events in scenario["releases"].values() for e in events}
    rows = _query(scenario, "select event_id, count(*) from {s}.events group by event_id")
    assert {event_id for event_id, _ in rows} == wanted
    assert all(count == 1 for _, count in rows)


def test_counts_reconcile_produced_equals_rows_plus_duplicates_plus_rejected(scenario):
    first, second, third = scenario["runs"]
    (rows,), = _query(scenario, "select count(*) from {s}.events")
    (rejected,), = _query(scenario, "select count(*) from {s}.rejected")
    received = sum(r["received"] for r in scenario["runs"])
    duplicates = sum(r["duplicates"] for r in scenario["runs"])
    assert received == scenario["produced"]
    assert scenario["produced"] == rows + duplicates + rejected
    assert duplicates == scenario["resent"] and rejected == 1
    assert first["duplicates"] == 0 and first["batches"] >= 2  # bounded micro-batches


def test_a_run_with_nothing_new_adds_nothing(scenario):
    third = scenario["runs"][2]
    assert (third["received"], third["inserted"], third["new_conflicts"], third["drift_notified"]) == (0, 0, 0, [])
    (latest_batch,), = _query(scenario, "select max(_batch_id) from {s}.events")
    assert latest_batch <= max(scenario["runs"][1]["batch_ids"])  # the checkpoint's offsets held


def test_each_drift_is_listed_once_with_when_where_and_types(scenario):
    rows = {(path, change): (expected, types, first_seen, version, events) for path, change, expected, types,
            first_seen, version, events in _query(
                scenario, "select field_path, change, expected_type, observed_types, first_seen, app_version, events "
                          "from {s}.schema_drift")}
    assert set(rows) == V2_DRIFT | V3_DRIFT
    for key in V2_DRIFT:
        assert rows[key][3] == "2.0.0"
        assert rows[key][2] == min(datetime.fromisoformat(e["ts"]) for e in scenario["releases"]["2.0.0"])
    for key in V3_DRIFT:
        assert rows[key][3] == "3.0.0"
    assert rows[("user_id", "type_change")][:2] == ("string", ["number"])
    assert rows[("device", "new_field")][1] == ["object"]
    assert rows[("properties.screen", "missing_field")][1] == ["absent"]
    assert rows[("network", "new_field")][1] == ["string"]


def test_drift_is_notified_once_per_row_and_reaches_the_team(scenario):
    first, second, third = scenario["runs"]
    as_keys = lambda notified: {tuple(n.split(":", 1)[::-1]) for n in notified}  # noqa: E731
    assert as_keys(first["drift_notified"]) == V2_DRIFT
    assert as_keys(second["drift_notified"]) == V3_DRIFT  # 2.0.0's drift, seen again, is not re-sent
    assert third["drift_notified"] == []
    assert _query(scenario, "select count(*) from {s}.schema_drift where notified_at is null") == [(0,)]

    messages = _wait_for_messages(scenario, 2)
    for version, drift in (("2.0.0", V2_DRIFT), ("3.0.0", V3_DRIFT)):
        (message,) = [m for m in messages if f"mobile-app@{version}" in m["title"]]
        assert message["title"].startswith(f"[FIRING:{len(drift)}] MobileSchemaDrift")
        for path, change in drift:
            assert f"field={path} " in message["text"] and f"change={change}" in message["text"]
        assert "team=customer-360" in message["text"]
        if version == "2.0.0":
            assert "`properties.screen_name`" in message["text"] and "perhaps a rename of `properties.screen`" in message["text"]
    assert "@example.com" not in json.dumps(messages).lower()  # field names and types, never a value


def _wait_for_messages(scenario, count: int, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = []
        if scenario["sink"].exists():
            with scenario["sink"].open() as f:
                f.seek(scenario["sink_offset"])
                for record in map(json.loads, f):
                    found += [a for a in record["payload"].get("attachments", [])
                              if f"({scenario['env']})" in a["title"] and "FIRING" in a["title"]]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_type_conflict_leaves_the_column_null_keeps_the_value_and_is_counted(scenario):
    numeric_ids = [e for e in scenario["releases"]["3.0.0"] if isinstance(e["user_id"], int)]
    assert numeric_ids, "release 3.0.0 sent numeric user ids"
    rows = _query(scenario, "select user_id, payload->'user_id', type_conflicts from {s}.events "
                            "where jsonb_typeof(payload->'user_id') = 'number'")
    assert len(rows) == len(numeric_ids)
    assert all(user_id is None and raw == int(raw) and conflicts == 1 for user_id, raw, conflicts in rows)
    assert _query(scenario, "select count(*) from {s}.type_conflicts where field_path = 'user_id'") == [(len(numeric_ids),)]
    assert _query(scenario, "select type_conflicts from {s}.schema_drift where field_path = 'user_id'") == [
        (len(numeric_ids),)]
    # Everything else of those events is typed as usual.
    assert _query(scenario, "select count(*) from {s}.events where app_version = '3.0.0' and event_ts is null") == [(0,)]


def test_new_fields_are_kept_in_the_raw_payload(scenario):
    (device, network, screen_name), = _query(
        scenario, "select payload->'device', payload->>'network', payload->'properties'->>'screen_name' "
                  "from {s}.events where event_id = %s", scenario["releases"]["3.0.0"][0]["event_id"])
    sent = scenario["releases"]["3.0.0"][0]
    assert (device, network, screen_name) == (sent["device"], sent["network"], sent["properties"]["screen_name"])


def test_users_log_in_mid_session_so_a_device_has_anonymous_then_identified_events(scenario):
    rows = _query(scenario, """
        select device_id from {s}.events group by device_id
        having bool_or(user_id is null and event_name = 'app_open')
           and bool_or(event_name = 'login' and user_id is not null)""")
    assert rows, "some device shows an anonymous start, then a login"


def test_a_batch_spark_replays_after_a_crash_adds_nothing_and_counts_no_conflict_twice(services):
    # Spark replays a micro-batch whose commit it had not recorded: the same batch id and
    # messages again, straight into the loader (no Spark needed to show the sink's side).
    from flowgate.customer360.mobile_app import encode
    from flowgate.customer360.mobile_ingest import MobileEventsLoader

    raw_schema = f"raw_mobile_test_{uuid.uuid4().hex[:8]}"
    events = MobileApp(seed=21).events("3.0.0", 6, START)
    messages = [{"topic": "mobile.events", "partition": 0, "offset": i, "timestamp": START, "value": encode(e).decode()}
                for i, e in enumerate(events)]
    loader = MobileEventsLoader(postgres_dsn("warehouse"), IDENTITY_KEY, raw_schema)
    try:
        first = loader.load(7, messages)
        replay = loader.load(7, messages)
        with psycopg.connect(postgres_dsn("warehouse")) as conn:
            (rows,), = conn.execute(f'select count(*) from "{raw_schema}".events').fetchall()
            (conflicts,), = conn.execute(
                f"select type_conflicts from \"{raw_schema}\".schema_drift where field_path = 'user_id'").fetchall()
    finally:
        loader.close()
        with psycopg.connect(postgres_dsn("warehouse"), autocommit=True) as conn:
            conn.execute(f'drop schema "{raw_schema}" cascade')
    numeric = sum(isinstance(e["user_id"], int) for e in events)
    assert (first.inserted, first.new_conflicts) == (len(events), numeric) and numeric > 0
    assert (replay.inserted, replay.duplicates, replay.new_conflicts) == (0, len(events), 0)
    assert (rows, conflicts) == (len(events), numeric)


def test_drift_alertmanager_did_not_take_stays_unnotified_and_goes_out_next_time(services):
    from flowgate.common.alertmanager import AlertmanagerClient, AlertmanagerUnavailable
    from flowgate.customer360.drift_alerts import notify_schema_drift
    from flowgate.customer360.mobile_app import encode
    from flowgate.customer360.mobile_ingest import MobileEventsLoader
    from flowgate.devstack.alertmanager import alertmanager_url

    raw_schema = f"raw_mobile_test_{uuid.uuid4().hex[:8]}"
    events = MobileApp(seed=22).events("2.0.0", 2, START)
    loader = MobileEventsLoader(postgres_dsn("warehouse"), IDENTITY_KEY, raw_schema)
    loader.load(0, [{"topic": "t", "partition": 0, "offset": i, "timestamp": START, "value": encode(e).decode()}
                    for i, e in enumerate(events)])
    loader.close()
    notify = dict(owner="customer-360", env=f"test-{raw_schema}", topic="mobile.events", raw_schema=raw_schema)
    try:
        with psycopg.connect(postgres_dsn("warehouse"), autocommit=True) as conn:
            with AlertmanagerClient("http://127.0.0.1:9", attempts=2, backoff_s=0.01) as down:  # nothing listens
                with pytest.raises(AlertmanagerUnavailable):
                    notify_schema_drift(conn, down, **notify)
            pending = f'select count(*) from "{raw_schema}".schema_drift where notified_at is null'
            assert conn.execute(pending).fetchone() == (3,)
            with AlertmanagerClient(alertmanager_url(services)) as up:
                assert len(notify_schema_drift(conn, up, **notify)) == 3
                assert notify_schema_drift(conn, up, **notify) == []
            assert conn.execute(pending).fetchone() == (0,)
    finally:
        with psycopg.connect(postgres_dsn("warehouse"), autocommit=True) as conn:
            conn.execute(f'drop schema "{raw_schema}" cascade')
