"""The keyed hash of emails that identity stitching matches on, and what the ingest keys."""

import hashlib
import hmac
import json

import pytest

from flowgate.customer360.identity import email_key, keyed_login, pseudonymised_text
from flowgate.customer360.mobile_schema import KafkaCoordinates, load_schema, read_event

KEY = "test-identity-key"
AT = KafkaCoordinates("mobile.events", 0, 7)


def test_email_key_is_the_hmac_sha256_of_the_normalised_address():
    expected = hmac.new(KEY.encode(), b"ada.brown7@example.com", hashlib.sha256).hexdigest()
    assert email_key("  Ada.Brown7@Example.COM \t", KEY) == expected


def test_email_key_depends_on_the_key_so_it_is_not_a_plain_hash():
    assert email_key("a@example.com", KEY) != email_key("a@example.com", "another key")
    assert email_key("a@example.com", KEY) != hashlib.sha256(b"a@example.com").hexdigest()


def test_an_empty_key_is_refused():
    with pytest.raises(ValueError, match="customer_identity"):
        email_key("a@example.com", "")


def test_keyed_login_replaces_the_email_and_keeps_the_rest():
    assert keyed_login({"method": "email", "email": "A@Example.com"}, KEY) == {
        "method": "email", "email_key": email_key("a@example.com", KEY)}
    assert keyed_login({"method": "email", "email": 12}, KEY) == {"method": "email"}
    assert keyed_login({"screen": "home"}, KEY) == {"screen": "home"}


def test_pseudonymised_text_keys_every_address_in_free_text():
    text = pseudonymised_text('{"broken": "x@example.org and Y@Example.net"', KEY)
    assert "@" not in text and text.count("email_key:") == 2


def _login(email: object) -> str:
    return json.dumps({"event_id": "e1", "device_id": "d1", "user_id": "100001", "event_name": "login",
                       "ts": "2026-12-01T10:00:00.000Z", "app_version": "1.0.0",
                       "properties": {"screen": "login", "method": "email", "email": email}})


def test_the_ingest_stores_a_login_with_the_email_keyed_and_no_drift_for_it():
    examined = read_event(_login(" User1@Example.com"), AT, load_schema(), KEY)
    stored = json.loads(examined.payload_text)
    assert stored["properties"]["email_key"] == email_key("user1@example.com", KEY)
    assert "email" not in stored["properties"] and "example.com" not in examined.payload_text.lower()
    assert not [d for d in examined.drift if "email" in d.path]


def test_a_rejected_message_keeps_its_text_but_not_its_addresses():
    rejected = read_event('{"event_id": "", "properties": {"email": "u@example.com"}}', AT, load_schema(), KEY)
    assert "no event_id" in rejected.reason and "u@example.com" not in rejected.raw
    broken = read_event('{oops u@example.com', AT, load_schema(), KEY)
    assert "not JSON" in broken.reason and broken.raw == "{oops email_key:" + email_key("u@example.com", KEY)
