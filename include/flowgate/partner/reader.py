"""Open a delivered partner file exactly as its contract says, or reject it with a reason.

The layers come off in turn (PGP, then gzip), the header is checked byte for byte
against the contract (BOM, delimiter, names, order, duplicates), the trailer line (when
the contract has one) is held back and read, and the records stream out in Arrow
batches of strings: a million-row file never sits whole in memory. A record with the
wrong number of fields is counted and the file rejected, never repaired.

Nothing here ever puts a value of the file into an error: a rejection says which check
failed, on which column, how often and where.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from flowgate.partner.contract import Contract

BLOCK_SIZE = 4 << 20  # bytes of decompressed CSV per Arrow batch (~40,000 records)
MAX_HEADER_BYTES = 64 << 10
MAX_REPORTED_NAME = 64
OTHER_DELIMITERS = (",", ";", "|", "\t")
UTF8_BOM = b"\xef\xbb\xbf"


class FileRejected(Exception):
    """The file breaks its contract: quarantine it whole. ``reason`` is a ledger reason."""

    def __init__(self, reason: str, detail: str, checks: list[dict] | None = None):
        self.reason, self.detail, self.checks = reason, detail, checks or []
        super().__init__(f"{reason}: {detail}")


@dataclass
class ReadStats:
    """What the reader saw, for the counts that must reconcile."""

    records: int = 0
    malformed_records: int = 0
    trailer_rows: int | None = None
    header: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- layers


def decrypted(path: Path, contract: Contract, workdir: Path, keys=None) -> Path:
    """The file with its PGP layer removed and the partner's signature verified (a PGP
    contract), else the file itself. The clear copy lives in ``workdir``: the caller's
    private temporary folder, removed when the run is done with it."""
    if path.stat().st_size == 0:
        raise FileRejected("empty_file", "the file has no bytes")
    if not contract.format.pgp:
        return path
    from flowgate.partner import pgp

    if keys is None or not keys.pgp_private_key:
        raise ValueError(f"partner {contract.partner}: PGP contract but no PGP keys in {contract.keys_conn_id}")
    target = workdir / (path.name + ".decrypted")
    try:
        pgp.decrypt_and_verify(path, target, keys.pgp_private_key, keys.pgp_signer_public_key,
                               keys.pgp_signer_fingerprint)
    except pgp.PgpRejected as rejected:
        target.unlink(missing_ok=True)
        raise FileRejected(rejected.reason, str(rejected)) from None
    return target


@contextmanager
def decompressed(path: Path, contract: Contract) -> Iterator[BinaryIO]:
    """The CSV bytes as a stream, gunzipped when the contract says gzip."""
    if path.stat().st_size == 0:
        raise FileRejected("empty_file", "the file has no bytes")
    if contract.format.compression == "gzip":
        with gzip.open(path, "rb") as stream:
            yield io.BufferedReader(stream, BLOCK_SIZE)
    else:
        with path.open("rb") as stream:
            yield stream


# --------------------------------------------------------------------------- header


def check_header(line: bytes, contract: Contract) -> tuple[str, ...]:
    """The header must be the contract's names, in its order, UTF-8, no BOM, its delimiter."""
    expected = contract.header
    delimiter = contract.format.delimiter
    if line.startswith(UTF8_BOM):
        raise FileRejected("utf8_bom", "the file starts with a UTF-8 byte order mark; the contract says plain UTF-8")
    try:
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise FileRejected("encoding", "the header is not valid UTF-8") from None
    if not text:
        raise FileRejected("no_header", "the first line is empty; the contract requires a header")
    names = tuple(next(csv.reader([text], delimiter=delimiter)))
    if names == expected:
        return names
    for other in OTHER_DELIMITERS:
        if other != delimiter and tuple(next(csv.reader([text], delimiter=other))) == expected:
            raise FileRejected("wrong_delimiter", f"fields are separated by {other!r}; the contract says {delimiter!r}")
    shown = [n[:MAX_REPORTED_NAME] for n in names]
    duplicated = sorted({n for n in shown if shown.count(n) > 1})
    unexpected = [n for n in shown if n not in expected]
    missing = [n for n in expected if n not in names]
    checks = [{"check": "header", "expected": list(expected), "received": shown}]
    if duplicated:
        raise FileRejected("duplicate_column", f"header repeats {duplicated}", checks)
    if unexpected:
        raise FileRejected("unexpected_column", f"header has columns the contract does not allow: {unexpected}"
                           + (f"; missing {missing}" if missing else ""), checks)
    if missing:
        raise FileRejected("missing_column", f"header lacks {missing}", checks)
    raise FileRejected("reordered_columns", "header has the contract's columns in another order", checks)


# --------------------------------------------------------------------------- trailer


class TrailerHoldback(io.RawIOBase):
    """Pass a stream through, holding back its last line when it is the trailer
    (``<prefix><delimiter><count>``), so the CSV parser sees only records."""

    def __init__(self, source: BinaryIO, prefix: str, delimiter: str):
        self._source = source
        self._marker = f"{prefix}{delimiter}".encode()
        self._buffer = bytearray()
        self._eof = False
        self.trailer: bytes | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while True:
            if self._eof:
                ready = len(self._buffer)
            else:
                chunk = self._source.read(max(len(target), 1 << 16))
                if chunk:
                    self._buffer += chunk
                else:
                    self._eof = True
                    self._split_trailer()
                    continue
                # Everything before the start of the last line can go: the last line may be the trailer.
                ready = self._buffer.rfind(b"\n", 0, max(len(self._buffer) - 1, 0)) + 1
            if ready or self._eof:
                n = min(ready, len(target))
                target[:n] = self._buffer[:n]
                del self._buffer[:n]
                return n

    def _split_trailer(self) -> None:
        body = bytes(self._buffer).rstrip(b"\r\n")
        start = body.rfind(b"\n") + 1
        if body[start:].startswith(self._marker):
            self.trailer = body[start:]
            del self._buffer[start:]


def trailer_count(trailer: bytes | None, contract: Contract) -> int:
    if trailer is None:
        raise FileRejected("missing_trailer", f"the last line is not a {contract.format.trailer_prefix} line")
    value = trailer[len(contract.format.trailer_prefix) + 1:].decode("ascii", "replace").strip()
    if not value.isdigit():
        raise FileRejected("bad_trailer", "the trailer's row count is not a number")
    return int(value)


# --------------------------------------------------------------------------- records


def record_batches(stream: BinaryIO, contract: Contract, stats: ReadStats) -> Iterator:
    """Arrow batches of the file's records, every field a string ('' when empty).

    Checks the header first; counts malformed records (wrong field count) in ``stats``;
    reads the trailer at the end. Raises :class:`FileRejected` for what breaks the file.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def malformed(row) -> str:
        stats.malformed_records += 1
        return "skip"  # counted here; the file is rejected after the read, whole

    names = list(contract.header)
    holdback = None
    try:
        header = stream.readline(MAX_HEADER_BYTES)
        if not header:
            raise FileRejected("empty_file", "the file holds no lines")
        stats.header = check_header(header, contract)
        body: BinaryIO = stream
        if contract.format.trailer_prefix:
            holdback = TrailerHoldback(stream, contract.format.trailer_prefix, contract.format.delimiter)
            body = io.BufferedReader(holdback, BLOCK_SIZE)
        reader = pacsv.open_csv(
            body,
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE, encoding="utf8"),
            parse_options=pacsv.ParseOptions(delimiter=contract.format.delimiter, quote_char='"',
                                             double_quote=True, newlines_in_values=True,
                                             invalid_row_handler=malformed),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, check_utf8=True),
        )
        for batch in reader:
            stats.records += batch.num_rows
            yield batch
    except pa.lib.ArrowInvalid as err:
        message = str(err)
        if "UTF8" in message or "utf8" in message.lower():
            raise FileRejected("encoding", "a field is not valid UTF-8") from None
        if "Empty CSV file" in message:
            pass  # header only: no records
        else:
            raise FileRejected("malformed_csv", "the CSV cannot be parsed (unbalanced quotes or a broken record)") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise FileRejected("corrupt_compression", f"the gzip stream is broken ({type(err).__name__})") from None
    if stats.malformed_records:
        raise FileRejected("malformed_row", f"{stats.malformed_records} record(s) have the wrong number of fields",
                           [{"check": "field_count", "count": stats.malformed_records}])
    if stats.records == 0 and (holdback is None or holdback.trailer is None):
        raise FileRejected("no_rows", "the file has a header but no records")
    if holdback is not None:
        stats.trailer_rows = trailer_count(holdback.trailer, contract)
        if stats.trailer_rows != stats.records:
            raise FileRejected("trailer_mismatch", f"the trailer says {stats.trailer_rows} rows, the file holds "
                               f"{stats.records}", [{"check": "trailer", "trailer_rows": stats.trailer_rows,
                                                     "records": stats.records}])
