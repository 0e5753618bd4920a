"""partner.files: generated rows obey the contract, valid files round-trip through the
standard tools (gzip, csv, gpg), and each bad file of the corpus is broken as it says."""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from flowgate.common.files import sha256_of_file
from flowgate.partner import files, pgp
from flowgate.partner.contract import Contract, IsoWeek, load_contract

ACME, GLOBEX = load_contract("acme"), load_contract("globex")
WEEK = IsoWeek(2026, 47)
ROWS = 300


@pytest.fixture(scope="module")
def keys():
    return {"flowgate": pgp.generate_key_pair("FlowGate test", "flowgate@test.invalid"),
            "partner": pgp.generate_key_pair("Partner test", "partner@test.invalid")}


@pytest.fixture(scope="module")
def signing(keys) -> files.Signing:
    return files.Signing(recipient_public_key=keys["flowgate"][1], signer_private_key=keys["partner"][0])


def write(tmp_path, contract: Contract, signing, corruption=None, rows=ROWS, seed=0) -> files.PartnerFile:
    name = f"{corruption or 'good'}-{seed}-{contract.file_name(WEEK)}"
    return files.write_partner_file(contract, WEEK, tmp_path / name, rows=rows, seed=seed, corruption=corruption,
                                    signing=signing if contract.format.pgp else None)


def gunzipped(contract: Contract, made: files.PartnerFile, keys, tmp_path) -> bytes:
    """The file's text bytes: decrypted and verified (PGP), then gunzipped."""
    path = made.path
    if contract.format.pgp:
        path = tmp_path / f"{made.path.name}.decrypted"
        pgp.decrypt_and_verify(made.path, path, keys["flowgate"][0], keys["partner"][1], keys["partner"][2])
    return gzip.decompress(path.read_bytes())


def records(text: str, delimiter: str) -> list[list[str]]:
    limit = csv.field_size_limit(1 << 24)  # the default 128 KiB would refuse huge_field's value
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    finally:
        csv.field_size_limit(limit)


def split(contract: Contract, text: str, delimiter: str | None = None):
    """(header, data rows, trailer count or None) as a loader would see them."""
    parsed = records(text, delimiter or contract.format.delimiter)
    header, body = parsed[0], parsed[1:]
    trailer = None
    if contract.format.trailer_prefix and body and body[-1][0] == contract.format.trailer_prefix:
        trailer = int(body.pop()[1])
    return header, body, trailer


def _valid(column, value: str) -> bool:
    if value == "":
        return not column.required
    if len(value) > column.max_length or (column.enum and value not in column.enum):
        return False
    if column.pattern and not re.search(column.pattern, value):
        return False
    if column.type == "date":
        return date.fromisoformat(value).isoformat() == value
    if column.type == "integer":
        return str(int(value)) == value
    if column.type == "decimal":
        whole, _, fraction = value.partition(".")
        return Decimal(value) >= 0 and whole.isdigit() and len(fraction) == column.scale and fraction.isdigit()
    return True


# --- generated rows ----------------------------------------------------------------------

@pytest.mark.parametrize("contract", [ACME, GLOBEX], ids=lambda c: c.partner)
def test_generated_rows_obey_every_column_of_the_contract_and_the_key_is_unique(contract):
    rows = list(files.generate_rows(contract, WEEK, files.CHUNK + 500))  # across a chunk boundary
    assert all(len(row) == len(contract.columns) for row in rows)
    for position, column in enumerate(contract.columns):
        bad = [row[position] for row in rows if not _valid(column, row[position])]
        assert not bad, f"{column.name}: {bad[:3]}"
        if not column.required:
            blanks = sum(1 for row in rows if row[position] == "")
            assert 0 < blanks < len(rows) // 4, f"{column.name}: {blanks} blanks"
    key = [contract.header.index(k) for k in contract.key]
    assert len({tuple(row[i] for i in key) for row in rows}) == len(rows)


def test_generated_rows_are_deterministic_and_a_shorter_file_is_a_prefix():
    long = list(files.generate_rows(ACME, WEEK, files.CHUNK + 10, seed=3))
    assert list(files.generate_rows(ACME, WEEK, files.CHUNK + 10, seed=3)) == long
    assert list(files.generate_rows(ACME, WEEK, 25, seed=3)) == long[:25]
    assert list(files.generate_rows(ACME, WEEK, 25, seed=4)) != long[:25]


def test_acme_rows_are_the_weeks_and_currency_follows_country():
    header = ACME.header
    for row in files.generate_rows(ACME, WEEK, 500):
        assert row[header.index("week_start")] == WEEK.monday.isoformat() == "2026-11-16"
        country, currency = row[header.index("country")], row[header.index("currency")]
        assert currency == {"CH": "CHF", "GB": "GBP", "PL": "PLN", "SE": "SEK", "US": "USD"}.get(country, "EUR")


def test_globex_people_were_born_before_2005_and_policies_started_by_the_week():
    header = GLOBEX.header
    for row in files.generate_rows(GLOBEX, WEEK, 500):
        assert date.fromisoformat(row[header.index("date_of_birth")]).year < 2005
        assert date.fromisoformat(row[header.index("start_date")]) <= WEEK.monday.replace(day=22)


@pytest.mark.parametrize("contract, columns", [
    (ACME, ("contact_email", "contact_phone")),
    (GLOBEX, ("customer_ref", "holder_name", "date_of_birth")),
], ids=["acme", "globex"])
def test_planted_pii_is_every_sensitive_value_and_only_those(contract, columns):
    rows = list(files.generate_rows(contract, WEEK, ROWS, seed=5))
    expected = {row[contract.header.index(c)] for row in rows for c in columns} - {""}
    assert files.planted_pii(contract, WEEK, ROWS, seed=5) == expected
    others = {row[i] for row in rows for i, c in enumerate(contract.columns) if c.name not in columns}
    assert not expected & others, "a planted value also appears in a non-sensitive column"
    if contract is ACME:
        emails = [v for v in expected if "@" in v]
        assert emails and all(v.endswith("@pii.acme.example") for v in emails), "findable: a reserved domain"
        assert all(re.fullmatch(r"\+\d{1,3} 555 \d{7}", v) for v in expected - set(emails))


def test_planted_pii_follows_the_corruption():
    ssns = files.planted_pii(ACME, WEEK, 50, corruption="extra_ssn_column") - files.planted_pii(ACME, WEEK, 50)
    assert len(ssns) == 50 and all(re.fullmatch(r"\d{3}-\d{2}-\d{4}", s) for s in ssns)
    assert files.planted_pii(GLOBEX, WEEK, 50, seed=1, corruption="changed_content") == files.planted_pii(
        GLOBEX, WEEK, 50, seed=2)
    assert files.planted_pii(ACME, WEEK, 50, corruption="empty_file") == set()


# --- valid files -------------------------------------------------------------------------

@pytest.mark.parametrize("contract", [ACME, GLOBEX], ids=lambda c: c.partner)
def test_a_valid_file_round_trips_exactly_as_the_contract_says(contract, tmp_path, keys, signing):
    made = write(tmp_path, contract, signing, seed=2)

    raw = made.path.read_bytes()
    if contract.format.pgp:
        assert not raw.startswith(b"\x1f\x8b") and not raw.startswith(b"-----BEGIN"), "binary OpenPGP"
    else:
        assert raw.startswith(b"\x1f\x8b")
    text_bytes = gunzipped(contract, made, keys, tmp_path)
    text = text_bytes.decode("utf-8")
    assert "\r" not in text and text.endswith("\n"), "\\n line ends"
    header, rows, trailer = split(contract, text)
    assert tuple(header) == contract.header
    assert rows == list(files.generate_rows(contract, WEEK, ROWS, seed=2))
    assert made.rows == ROWS
    if contract.format.trailer_prefix:
        assert trailer == ROWS and text.endswith(f"\n{contract.format.trailer_prefix},{ROWS}\n")
    else:
        assert trailer is None
    for value in files.planted_pii(contract, WEEK, ROWS, seed=2):
        assert value in text
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".decrypted")) == [made.path.name], \
        "temporary files left behind"


def test_values_that_need_quotes_are_quoted_and_the_fast_path_equals_the_csv_module(tmp_path, signing):
    made = write(tmp_path, ACME, signing, rows=2000)
    text = gzip.decompress(made.path.read_bytes()).decode()
    assert '"Crown Markets, Ltd"' in text or '"Bella Vista Markets, Ltd"' in text
    assert '""24/7""' in text
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(ACME.header)
    writer.writerows(files.generate_rows(ACME, WEEK, 2000))
    assert text == expected.getvalue() + "TRAILER,2000\n"


def test_the_same_arguments_write_the_same_bytes(tmp_path, signing):
    first = files.write_partner_file(ACME, WEEK, tmp_path / "a" / ACME.file_name(WEEK), rows=ROWS)
    second = files.write_partner_file(ACME, WEEK, tmp_path / "b" / ACME.file_name(WEEK), rows=ROWS)
    assert first.sha256 == second.sha256 == sha256_of_file(first.path)
    assert first.size == first.path.stat().st_size


def test_a_pgp_partners_file_needs_signing_material(tmp_path):
    with pytest.raises(ValueError, match="signing"):
        files.write_partner_file(GLOBEX, WEEK, tmp_path / GLOBEX.file_name(WEEK), rows=5)


# --- the bad-file corpus -----------------------------------------------------------------

EXPECTED_CORRUPTIONS = {
    "extra_ssn_column", "renamed_header", "reordered_columns", "duplicate_header", "utf8_bom", "cp1252_bytes",
    "semicolon_delimiter", "quoted_newlines", "truncated_gzip", "empty_file", "header_only", "huge_field",
    "bad_signature", "trailer_mismatch", "changed_content",
}
CASES = [(c, name) for name in sorted(files.CORRUPTIONS) for c in (ACME, GLOBEX) if files.applies(name, c)]


def test_the_corpus_is_complete_and_each_corruption_says_what_it_does():
    assert set(files.CORRUPTIONS) == EXPECTED_CORRUPTIONS
    assert all(f.__doc__ for f in files.CORRUPTIONS.values())
    assert files.LEGAL_CORRUPTIONS <= set(files.CORRUPTIONS)
    from flowgate.partner import cli  # `flowgate partner deliver --help` lists them without importing numpy

    assert cli.CORRUPTION_NAMES == tuple(files.CORRUPTIONS) and set(cli.LEGAL) == files.LEGAL_CORRUPTIONS
    assert not files.applies("bad_signature", ACME) and files.applies("bad_signature", GLOBEX)
    assert files.applies("trailer_mismatch", ACME) and not files.applies("trailer_mismatch", GLOBEX)


@pytest.mark.parametrize("contract, name", [(ACME, "bad_signature"), (GLOBEX, "trailer_mismatch")],
                         ids=["acme-bad_signature", "globex-trailer_mismatch"])
def test_a_corruption_that_does_not_apply_is_refused(tmp_path, signing, contract, name):
    with pytest.raises(ValueError, match=name):
        write(tmp_path, contract, signing, corruption=name)


def _check(name: str, contract: Contract, made: files.PartnerFile, keys, tmp_path) -> None:
    """What each corruption must have produced, checked with gzip, csv and gpg."""
    good = list(files.generate_rows(contract, WEEK, ROWS))
    d = contract.format.delimiter
    if name == "empty_file":
        assert made.path.stat().st_size == 0 and made.rows == 0
        return
    if name == "bad_signature":
        with pytest.raises(pgp.PgpRejected) as caught:
            gunzipped(contract, made, keys, tmp_path)
        assert caught.value.reason == "bad_signature"
        return
    if name == "truncated_gzip":
        plain = made.path
        if contract.format.pgp:  # the OpenPGP layer is intact: the gzip inside is cut
            plain = tmp_path / "decrypted"
            pgp.decrypt_and_verify(made.path, plain, keys["flowgate"][0], keys["partner"][1], keys["partner"][2])
        with pytest.raises((EOFError, gzip.BadGzipFile)):
            gzip.decompress(plain.read_bytes())
        return
    raw = gunzipped(contract, made, keys, tmp_path)
    if name == "cp1252_bytes":
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        lines = raw.split(b"\n")
        bad = [line for line in lines if not _decodes(line)]
        assert len(bad) == 1 and "é" in bad[0].decode("cp1252") and b"\xe9" in bad[0]
        assert lines.index(bad[0]) == 1 + ROWS // 2, "the middle row"
        return
    if name == "utf8_bom":
        assert raw.startswith(files.UTF8_BOM + contract.header[0].encode())
        raw = raw[len(files.UTF8_BOM):]
    text = raw.decode("utf-8")
    if name == "semicolon_delimiter":
        assert text.splitlines()[0] == ";".join(contract.header) and d not in text.splitlines()[0]
        header, rows, trailer = split(contract, text, ";")
        assert rows == good
        return
    header, rows, trailer = split(contract, text)
    if name == "extra_ssn_column":
        assert tuple(header) == (*contract.header, "ssn")
        assert [r[:-1] for r in rows] == good
        assert all(re.fullmatch(r"(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}", r[-1]) for r in rows)
    elif name == "renamed_header":
        assert len(header) == len(contract.header) and tuple(header) != contract.header
        assert len(set(header) - set(contract.header)) == 1 and rows == good
    elif name == "reordered_columns":
        assert sorted(header) == sorted(contract.header) and tuple(header) != contract.header
        order = [contract.header.index(h) for h in header]
        assert rows == [[r[i] for i in order] for r in good], "the header still names each value"
    elif name == "duplicate_header":
        assert [n for n, count in Counter(header).items() if count > 1] == [contract.header[1]]
        assert rows == [[*r, r[1]] for r in good]
    elif name == "quoted_newlines":
        assert rows != good and len(rows) == ROWS and all(len(r) == len(header) for r in rows)
        changed = [(g, r) for g, r in zip(good, rows) if g != r]
        assert len(changed) == 1 and "\n" in "".join(changed[0][1])
        assert len(text.splitlines()) == ROWS + 2 + bool(trailer is not None), "the newline is inside quotes"
    elif name == "header_only":
        assert text == d.join(contract.header) + "\n" and made.rows == 0
        return
    elif name == "huge_field":
        longest = max(len(v) for r in rows for v in r)
        assert longest == files.HUGE_FIELD_BYTES and longest > max(c.max_length for c in contract.columns)
        assert sum(1 for g, r in zip(good, rows) if g != r) == 1
    elif name == "trailer_mismatch":
        assert rows == good and trailer == ROWS + 1
        return
    elif name == "changed_content":
        assert tuple(header) == contract.header and len(rows) == ROWS and rows != good
        assert made.path.name.endswith(contract.file_name(WEEK)), "the same name"
    if contract.format.trailer_prefix:
        assert trailer == ROWS


def _decodes(line: bytes) -> bool:
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@pytest.mark.parametrize("contract, name", CASES, ids=[f"{c.partner}-{n}" for c, n in CASES])
def test_each_corruption_produces_what_it_says(contract, name, tmp_path, keys, signing):
    made = write(tmp_path, contract, signing, corruption=name)
    assert made.corruption == name
    _check(name, contract, made, keys, tmp_path)
