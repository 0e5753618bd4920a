"""The reader and the scrubber on small hand-written files: what passes, what is refused,
and that a refusal names checks, counts and rows, never a value."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date
from decimal import Decimal

import pytest

from flowgate.partner import crypto
from flowgate.partner.contract import load_contract
from flowgate.partner.reader import FileRejected, ReadStats, TrailerHoldback, decompressed, record_batches
from flowgate.partner.scrub import Scrubber, Violations

ACME = load_contract("acme")
KEYS = crypto.PartnerKeys("acme", hmac_key=b"h" * 32, aes_key=b"a" * 32)
HEADER = ",".join(ACME.header)


def row(merchant="M00000001", country="DE", email="ops@merchant.example", week="2026-11-16", amount="1234.50",
        name="Kaffee Haus", phone="+49 30 1234567") -> str:
    return f"{week},{merchant},{name},5812,{country},EUR,17,{amount},{email},{phone}"


def acme_file(tmp_path, lines: list[str], trailer: int | None = -1, header: str = HEADER, raw: bytes | None = None):
    body = raw if raw is not None else "".join(f"{line}\n" for line in [header, *lines]).encode()
    if raw is None and trailer is not None:
        body += f"TRAILER,{len(lines) if trailer == -1 else trailer}\n".encode()
    path = tmp_path / "acme_spend_2026W47.csv.gz"
    path.write_bytes(gzip.compress(body))
    return path


def scrub(path) -> tuple[list[dict], ReadStats, Violations]:
    stats, violations = ReadStats(), Violations()
    with decompressed(path, ACME) as stream:
        batches = list(Scrubber(ACME, KEYS).batches(record_batches(stream, ACME, stats), violations))
    rows = [r for b in batches for r in b.to_pylist()]
    return rows, stats, violations


def rejection(path) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        rows, stats, violations = scrub(path)
        if violations:
            raise violations.reject()
    return caught.value


def test_a_valid_file_is_typed_tokenized_and_the_dropped_column_is_gone(tmp_path):
    rows, stats, violations = scrub(acme_file(tmp_path, [row(), row(merchant="M00000002", email="")]))

    assert not violations and stats.records == 2 and stats.trailer_rows == 2
    first = rows[0]
    assert "contact_phone" not in first and "contact_email" not in first
    assert first["week_start"] == date(2026, 11, 16) and first["txn_count"] == 17
    assert first["spend_amount"] == Decimal("1234.50")
    assert first["contact_email_token"] == crypto.tokenize_values(KEYS.hmac_key, ["ops@merchant.example"])[0]
    assert rows[1]["contact_email_token"] is None, "an empty optional value stays empty, not a token of ''"
    assert [r["source_row"] for r in rows] == [1, 2]


def test_a_quoted_newline_is_legal_and_loads(tmp_path):
    rows, stats, violations = scrub(acme_file(tmp_path, [row(name='"Kaffee\nHaus"'), row(merchant="M00000002")]))
    assert not violations and stats.records == 2
    assert rows[0]["merchant_name"] == "Kaffee\nHaus"


@pytest.mark.parametrize("header, reason", [
    (HEADER + ",ssn", "unexpected_column"),
    (HEADER.replace("merchant_id", "merchant"), "unexpected_column"),
    (HEADER.replace("mcc,country", "country,mcc"), "reordered_columns"),
    (HEADER.replace("mcc", "country"), "duplicate_column"),
    (HEADER.replace(",", ";"), "wrong_delimiter"),
    (HEADER.rsplit(",", 1)[0], "missing_column"),
])
def test_a_header_that_is_not_the_contract_quarantines_the_file(tmp_path, header, reason):
    assert rejection(acme_file(tmp_path, [row()], header=header)).reason == reason


def test_a_bom_cp1252_bytes_and_a_truncated_gzip_are_refused(tmp_path):
    bom = acme_file(tmp_path, [], raw=b"\xef\xbb\xbf" + f"{HEADER}\n{row()}\nTRAILER,1\n".encode())
    assert rejection(bom).reason == "utf8_bom"
    cp1252 = acme_file(tmp_path, [], raw=f"{HEADER}\n{row(name='Caf_')}\nTRAILER,1\n".encode().replace(b"_", b"\xe9"))
    assert rejection(cp1252).reason == "encoding"
    good = gzip.compress(f"{HEADER}\n".encode() + "".join(f"{row(merchant=f'M{n:08d}')}\n" for n in range(5000)).encode())
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(good[: len(good) // 2])
    assert rejection(truncated).reason == "corrupt_compression"


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv.gz"
    empty.write_bytes(b"")
    assert rejection(empty).reason == "empty_file"
    rows, stats, _ = scrub(acme_file(tmp_path, [], trailer=0))
    assert rows == [] and stats.records == 0


def test_the_trailer_must_match_the_records(tmp_path):
    assert rejection(acme_file(tmp_path, [row(), row(merchant="M00000002")], trailer=3)).reason == "trailer_mismatch"
    assert rejection(acme_file(tmp_path, [row()], trailer=None)).reason == "missing_trailer"


def test_a_record_with_an_extra_field_is_refused_not_repaired(tmp_path):
    rejected = rejection(acme_file(tmp_path, [row(), row() + ",123-45-6789"]))
    assert rejected.reason == "malformed_row" and "123-45-6789" not in str(rejected)


def test_value_checks_report_rows_and_counts_never_values(tmp_path):
    lines = [row(), row(merchant="X1", email="not-an-email-planted"), row(country="ZZ"),
             row(week="2026-02-30"), row(amount="12.5"), row(name="N" * 200_000)]
    rejected = rejection(acme_file(tmp_path, lines))

    found = {(c["column"], c["check"]): c for c in rejected.checks}
    assert found[("merchant_id", "pattern")]["rows"] == [2]
    assert found[("contact_email", "pattern")]["count"] == 1
    assert found[("country", "enum")]["rows"] == [3]
    assert found[("week_start", "type")]["rows"] == [4], "Feb 30th is not a date, even if strptime rolls it over"
    assert found[("spend_amount", "type")]["rows"] == [5], "money has exactly its scale's digits"
    assert found[("merchant_name", "too_long")]["rows"] == [6]
    text = json.dumps(rejected.checks) + str(rejected)
    for value in ("X1", "not-an-email-planted", "ZZ", "2026-02-30", "12.5", "NNNN"):
        assert value not in text


def test_trailer_holdback_passes_everything_but_the_trailer():
    data = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(100_000)) + b"TRAILER,100000\n"
    holdback = TrailerHoldback(io.BytesIO(data), "TRAILER", ",")
    out = io.BufferedReader(holdback, 1 << 12).read()
    assert out == data[: -len(b"TRAILER,100000\n")] and holdback.trailer == b"TRAILER,100000"


def test_ciphertexts_decrypt_only_in_their_own_column_and_tokens_are_keyed():
    (sealed,) = crypto.encrypt_values(KEYS.aes_key, "globex", "date_of_birth", ["1980-01-31"])
    assert crypto.decrypt_value(KEYS.aes_key, "globex", "date_of_birth", sealed) == "1980-01-31"
    with pytest.raises(Exception):
        crypto.decrypt_value(KEYS.aes_key, "globex", "start_date", sealed)
    other = crypto.tokenize_values(b"k" * 32, ["ops@merchant.example"])
    assert other != crypto.tokenize_values(KEYS.hmac_key, ["ops@merchant.example"])


def test_a_quarantined_file_round_trips_through_its_sealed_form_and_detects_truncation():
    data = bytes(range(256)) * 40_000  # 10 MB: more than one chunk
    sealed = b"".join(crypto.encrypt_file(KEYS.aes_key, io.BytesIO(data), "label"))
    assert b"".join(crypto.decrypt_file(KEYS.aes_key, io.BytesIO(sealed), "label")) == data
    with pytest.raises(Exception):
        b"".join(crypto.decrypt_file(KEYS.aes_key, io.BytesIO(sealed[:-30]), "label"))


@pytest.mark.parametrize("key", [b"k" * 32, b"\x00\xff" * 40, bytes(range(64)), b"x" * 200])
def test_tokens_are_exactly_the_standard_library_hmac_sha256(key):
    import hashlib
    import hmac

    values = ["ops@merchant.example", "", "Zoë Müller", "C123456789" * 30]
    assert crypto.tokenize_values(key, values) == [hmac.new(key, v.encode(), hashlib.sha256).hexdigest()
                                                   for v in values]
