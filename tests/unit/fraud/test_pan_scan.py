"""The PAN scanner finds card numbers wherever they hide and stays quiet on lookalikes."""

from __future__ import annotations

import hashlib
import os
import random
import uuid

import pytest
from typer.testing import CliRunner

from flowgate.cli import app
from flowgate.common.pan_scan import find_pans, mask, redact_pans, scan_file, scan_paths
from flowgate.fraud.pan import luhn_valid, synthetic_pan


def _noise(rng: random.Random, size: int) -> bytearray:
    """Random bytes; planted PANs get a NUL on each side (a PAN glued to more digits is
    another, longer number, which the scanner rightly ignores)."""
    return bytearray(rng.randbytes(size))


def _plant(blob: bytearray, offset: int, text: bytes) -> None:
    blob[offset - 1:offset + len(text) + 1] = b"\x00" + text + b"\x00"


def _grouped(pan: str, sep: str) -> str:
    if len(pan) == 15:  # Amex is written 4-6-5
        return sep.join((pan[:4], pan[4:10], pan[10:]))
    return sep.join(pan[i:i + 4] for i in range(0, len(pan), 4))


@pytest.fixture
def rng():
    return random.Random(2024)


def test_finds_pans_of_every_network_planted_in_binary_data(rng):
    blob = _noise(rng, 64_000)
    planted = {}
    for i, network in enumerate(["visa", "mastercard", "amex", "discover"] * 3):
        pan = synthetic_pan(rng, network)
        offset = 1_000 + i * 5_000
        _plant(blob, offset, pan.encode())
        planted[offset] = mask(pan)
    hits = find_pans(bytes(blob))
    assert {h.offset: h.masked for h in hits} == planted


@pytest.mark.parametrize("sep", [" ", "-"])
def test_finds_pans_written_in_groups(rng, sep):
    for network in ("visa", "amex"):
        pan = synthetic_pan(rng, network)
        text = f'{{"note": "card {_grouped(pan, sep)} exp 12/29"}}'.encode()
        [hit] = find_pans(text)
        assert hit.masked == mask(pan)
        assert text[hit.offset:hit.offset + hit.length].decode() == _grouped(pan, sep)


def test_the_report_never_holds_the_clear_pan(rng):
    pan = synthetic_pan(rng, "visa")
    [hit] = find_pans(b"pan=" + pan.encode())
    assert hit.masked == pan[:6] + "******" + pan[-4:]
    assert pan not in str(hit) and pan not in repr(hit)


def test_no_false_positives_on_epoch_millis_offsets_uuids_digests_and_non_luhn_numbers(rng):
    millis = [str(1_700_000_000_000 + rng.randrange(10**11)) for _ in range(20_000)]
    # Kafka offsets and row ids stay below 13 digits (a random 16-digit number, on the other
    # hand, is indistinguishable from a card number: no scanner can tell them apart).
    offsets = [str(rng.randrange(10**12)) for _ in range(20_000)]
    uuids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(50_000)]
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20_000)]
    non_luhn = []
    while len(non_luhn) < 20_000:  # card-shaped (Visa prefix, 16 digits) but the check digit is wrong
        number = "4" + "".join(rng.choice("0123456789") for _ in range(15))
        if not luhn_valid(number):
            non_luhn.append(number)
    for name, values in [("millis", millis), ("offsets", offsets), ("uuids", uuids),
                         ("digests", digests), ("non-luhn", non_luhn)]:
        data = "\n".join(f'{{"ts": {v}, "id": "{v}"}}' for v in values).encode()
        assert find_pans(data) == [], name


def test_a_longer_digit_run_is_not_a_pan(rng):
    pan = synthetic_pan(rng, "visa")
    assert find_pans(b"x" + pan.encode() + b"7x") == []      # 17 digits: another number
    assert find_pans(("9" * 6 + pan).encode()) == []          # 22 digits


def test_finds_a_pan_across_every_chunk_boundary(tmp_path, rng):
    pan = synthetic_pan(rng, "mastercard").encode()
    path = tmp_path / "blob.bin"
    chunk = 1_000
    for offset in range(chunk - len(pan) - 1, chunk + 2):  # ends before, straddles, starts after
        blob = _noise(rng, 5_000)
        _plant(blob, offset, pan)
        _plant(blob, 3 * chunk - 5, _grouped(synthetic_pan(rng, "visa"), " ").encode())
        path.write_bytes(bytes(blob))
        size, hits = scan_file(path, chunk_size=chunk, overlap=64)
        assert size == 5_000
        assert [(h.offset, h.length) for h in hits] == [(offset, len(pan)), (3 * chunk - 5, 19)], offset


def test_chunked_scanning_finds_exactly_what_a_whole_file_scan_finds(tmp_path, rng):
    blob = _noise(rng, 50_000)
    for offset in range(997, 50_000, 3_001):
        _plant(blob, offset, synthetic_pan(rng).encode())
    path = tmp_path / "many.bin"
    path.write_bytes(bytes(blob))
    whole = [(h.offset, h.masked) for h in find_pans(bytes(blob))]
    assert len(whole) == 17
    for chunk, overlap in ((1_000, 64), (4_096, 256), (7, 48), (1 << 20, 8192)):
        assert [(h.offset, h.masked) for h in scan_file(path, chunk, overlap)[1]] == whole


def test_scan_paths_walks_folders_and_counts_what_it_read(tmp_path, rng):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "clean.txt").write_text("nothing here 1764395000123\n")
    blob = _noise(rng, 10_000)
    _plant(blob, 4_321, synthetic_pan(rng, "discover").encode())
    (tmp_path / "a" / "b" / "segment.log").write_bytes(bytes(blob))
    (tmp_path / "link").symlink_to(tmp_path / "a")  # not followed: no loops, no double count
    report = scan_paths([tmp_path])
    assert (report.files, report.bytes) == (2, 10_000 + len("nothing here 1764395000123\n"))
    [hit] = report.hits
    assert (hit.path, hit.offset) == (str(tmp_path / "a" / "b" / "segment.log"), 4_321)
    assert not report.clean


def test_redaction_masks_every_pan_and_keeps_the_rest(rng):
    visa, amex = synthetic_pan(rng, "visa"), synthetic_pan(rng, "amex")
    text = f"bad event: pan={visa} backup {_grouped(amex, '-')} at 1764395000123, id-{visa}."
    redacted = redact_pans(text)
    assert redacted == (f"bad event: pan={mask(visa)} backup {mask(amex)} at 1764395000123, id-{mask(visa)}.")
    assert find_pans(redacted.encode()) == []
    assert redact_pans("no card here: 2024-11-29 order 12345") == "no card here: 2024-11-29 order 12345"


def test_cli_exits_1_with_masked_hits_and_0_when_clean(tmp_path, rng):
    pan = synthetic_pan(rng, "visa")
    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    clean.mkdir(), dirty.mkdir()
    (clean / "x.json").write_text('{"token": "tok_abc", "bin": "411111", "last4": "1111"}')
    (dirty / "y.bin").write_bytes(os.urandom(0) + b"\x00" + pan.encode() + b"\x00")
    runner = CliRunner()
    ok = runner.invoke(app, ["scan-pan", str(clean)])
    assert ok.exit_code == 0 and "1 file(s)" in ok.output
    bad = runner.invoke(app, ["scan-pan", str(clean), str(dirty)])
    assert bad.exit_code == 1
    assert f"{dirty / 'y.bin'}:1: {mask(pan)}" in bad.output and pan not in bad.output


def test_identifiers_and_decimal_fractions_that_pass_luhn_are_not_pans(rng):
    """What platform logs are full of: Java temp files (fetchFileTemp<random long>.tmp)
    and float durations; the same digits delimited as data are still found."""
    pan = synthetic_pan(rng)
    noise = f"userFiles/fetchFileTemp{pan}.tmp duration=2.{pan} thread_{pan}".encode()
    assert find_pans(noise) == []
    assert len(find_pans(f'card={pan} "{pan}" :{pan}'.encode())) == 3
