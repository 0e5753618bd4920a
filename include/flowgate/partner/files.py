"""Partner files as a partner would send them: valid ones, and a named corpus of bad ones.

``write_partner_file`` writes exactly what a contract describes (header, delimiter, CSV
quoting, ``\\n`` line ends, trailer, gzip, then OpenPGP encrypt + sign), streaming: a
million rows never sit in memory. ``generate_rows`` is deterministic (same contract, week,
rows and seed: same rows, and a shorter file is a prefix of a longer one), so a test knows
every value a file holds; ``planted_pii`` lists the personal values among them, which must
never turn up readable in the warehouse, logs, XCom or evidence.

``CORRUPTIONS`` are the bad files we must quarantine (or, for ``quoted_newlines``, load):
each is a small function that changes the plan the writer follows.
"""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import os
import queue
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from flowgate.common.files import sha256_of_file
from flowgate.partner.contract import Column, Contract, IsoWeek

CHUNK = 16384  # rows generated column-wise at a time (each chunk has its own random streams)
HUGE_FIELD_BYTES = 200 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
GZIP_LEVEL = 1  # what a fast exporter sends (gzip -1): level 6 is ~15 % smaller, twice as slow

# --- value pools ---------------------------------------------------------------------
# Synthetic people must be findable later: surnames are built from syllables no real
# data here uses, emails live under ``pii.<partner>.example`` (a reserved domain), phones
# use the 555 exchange, dates of birth fall before 2005 (no other date we generate does).

_FIRST_NAMES = (
    ("Ada", "ada"), ("Björn", "bjorn"), ("Chiara", "chiara"), ("Dmitri", "dmitri"), ("Elif", "elif"),
    ("François", "francois"), ("Greta", "greta"), ("Hamid", "hamid"), ("Inès", "ines"), ("Jonas", "jonas"),
    ("Kalinda", "kalinda"), ("Lars", "lars"), ("Maëlle", "maelle"), ("Nuno", "nuno"), ("Oona", "oona"),
    ("Paweł", "pawel"), ("Quentin", "quentin"), ("Rosalía", "rosalia"), ("Søren", "soren"), ("Tomás", "tomas"),
    ("Ulrike", "ulrike"), ("Vivek", "vivek"), ("Wiebke", "wiebke"), ("Xavier", "xavier"), ("Yara", "yara"),
    ("Zoë", "zoe"),
)
_SYLLABLES = ("vas", "nor", "ek", "qui", "dra", "mol", "zet", "ari", "bun", "tov", "lex", "oru", "pim", "sa",
              "ket", "wyn", "ilo", "fra", "gud", "hax")
_SURNAMES = tuple(f"{a}{b}{c}".capitalize() for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES[:8])
_LOWER_SURNAMES = tuple(s.lower() for s in _SURNAMES)
_DISPLAY_FIRST_NAMES = tuple(name for name, _ in _FIRST_NAMES)
_ASCII_FIRST_NAMES = tuple(ascii_name for _, ascii_name in _FIRST_NAMES)

_MERCHANT_WORDS = ("Northwind", "Café Lumière", "Müller", "Bella Vista", "Aurora", "Crown", "Blue Harbour",
                   "Øresund", "Golden Spoon", "Ferreira", "Van Dijk", "Kowalski", "Alpenglühen", "Riverside",
                   "Saint-Éloi", "Tamarind")
_MERCHANT_KINDS = ("Grocers", "Bakery", "Pharmacy", "Hotels", "Books", "Electronics", "Fuel", "Bistro",
                   "Outfitters", "& Sons", "Markets, Ltd", 'Diner "24/7"')
_MCCS = ("5411", "5812", "5912", "5999", "4111", "5311", "5732", "7011", "5541", "5651", "5814", "4121")
_COUNTRY_CURRENCY = {"AT": "EUR", "BE": "EUR", "CH": "CHF", "DE": "EUR", "ES": "EUR", "FR": "EUR", "GB": "GBP",
                     "IE": "EUR", "IT": "EUR", "NL": "EUR", "PL": "PLN", "PT": "EUR", "SE": "SEK", "US": "USD"}
_COUNTRY_DIAL = {"AT": 43, "BE": 32, "CH": 41, "DE": 49, "ES": 34, "FR": 33, "GB": 44, "IE": 353, "IT": 39,
                 "NL": 31, "PL": 48, "PT": 351, "SE": 46, "US": 1}


class _Chunk:
    """One chunk of rows being generated: its row numbers and random streams."""

    def __init__(self, contract: Contract, week: IsoWeek, seed: int, start: int, n: int):
        self.contract, self.week, self.seed, self.start, self.n = contract, week, seed, start, n
        self.values: dict[str, list[str]] = {}

    def _generator(self, column: str, stream: str) -> np.random.Generator:
        key = hashlib.sha256(f"{self.seed}:{column}:{stream}:{self.start}".encode()).digest()
        return np.random.Generator(np.random.PCG64(int.from_bytes(key[:16], "big")))

    def ints(self, low: int, high: int, column: str, stream: str = "") -> list[int]:
        """One number in [low, high) per row, from this chunk's stream for (column, stream)."""
        return self.int_array(low, high, column, stream).tolist()

    def int_array(self, low: int, high: int, column: str, stream: str = "") -> np.ndarray:
        return self._generator(column, stream).integers(low, high, size=self.n, dtype=np.int64)

    def pick(self, pool: tuple, column: str, stream: str = "") -> list:
        """One element of ``pool`` per row."""
        return _as_array(pool)[self._generator(column, stream).integers(0, len(pool), size=self.n)].tolist()

    @property
    def indexes(self) -> range:
        return range(self.start, self.start + self.n)

    def permuted(self, column: str, modulus: int) -> list[int]:
        """A distinct number below ``modulus`` per row (a seeded affine permutation)."""
        params = random.Random(f"{self.seed}:{column}:permutation")
        factor = params.randrange(1, modulus)
        while _gcd(factor, modulus) != 1:
            factor += 1
        offset = params.randrange(modulus)
        if (self.start + self.n) * modulus < 2**62:  # no int64 overflow: let numpy do it
            return ((np.arange(self.start, self.start + self.n, dtype=np.int64) * factor + offset) % modulus).tolist()
        return [(i * factor + offset) % modulus for i in self.indexes]


@functools.cache
def _as_array(pool: tuple) -> np.ndarray:
    array = np.empty(len(pool), dtype=object)
    array[:] = pool
    return array


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


Generator = Callable[[Column, _Chunk], list[str]]


@functools.cache
def _iso_dates(first: date, last: date) -> tuple[str, ...]:
    return tuple((first + timedelta(days=d)).isoformat() for d in range((last - first).days + 1))


# --- generators by column name (what the data means), then by type --------------------

def _week_start(col: Column, ch: _Chunk) -> list[str]:
    return [ch.week.monday.isoformat()] * ch.n


def _date_of_birth(col: Column, ch: _Chunk) -> list[str]:
    return ch.pick(_iso_dates(date(1935, 1, 1), date(2004, 12, 31)), col.name)


def _past_date(col: Column, ch: _Chunk) -> list[str]:
    """A date in the ten years up to the week's Sunday (policy start dates and the like)."""
    sunday = ch.week.monday + timedelta(days=6)
    return ch.pick(_iso_dates(sunday - timedelta(days=3652), sunday), col.name)


def _week_date(col: Column, ch: _Chunk) -> list[str]:
    return ch.pick(_iso_dates(ch.week.monday, ch.week.monday + timedelta(days=6)), col.name)


def _person_name(col: Column, ch: _Chunk) -> list[str]:
    firsts = ch.pick(_DISPLAY_FIRST_NAMES, col.name, "first")
    lasts = ch.pick(_SURNAMES, col.name, "last")
    return [f"{first} {last}" for first, last in zip(firsts, lasts)]


def _email(col: Column, ch: _Chunk) -> list[str]:
    firsts = ch.pick(_ASCII_FIRST_NAMES, col.name, "first")
    lasts = ch.pick(_LOWER_SURNAMES, col.name, "last")
    serial = ch.permuted(col.name, 16**6)
    address = f"%s.%s.%06x@pii.{ch.contract.partner}.example"  # partner names are [a-z0-9]: no % in it
    return list(map(address.__mod__, zip(firsts, lasts, serial)))


def _phone(col: Column, ch: _Chunk) -> list[str]:
    countries = ch.values.get("country") or ch.pick(tuple(sorted(_COUNTRY_DIAL)), col.name, "country")
    serial = ch.permuted(col.name, 10**7)
    dial = {c: f"+{_COUNTRY_DIAL.get(c, 44)} 555 " for c in set(countries)}
    return list(map("%s%07d".__mod__, zip(map(dial.__getitem__, countries), serial)))


def _merchant_name(col: Column, ch: _Chunk) -> list[str]:
    return ch.pick(_merchant_names(col.max_length), col.name)


@functools.cache
def _merchant_names(max_length: int) -> tuple[str, ...]:
    return tuple(f"{w} {k}"[:max_length] for w in _MERCHANT_WORDS for k in _MERCHANT_KINDS)


def _mcc(col: Column, ch: _Chunk) -> list[str]:
    return ch.pick(_MCCS, col.name)


def _currency(col: Column, ch: _Chunk) -> list[str]:
    """The country's currency where the contract lists both (else any allowed one)."""
    allowed = col.enum or ()
    countries = ch.values.get("country")
    fallback = ch.pick(allowed, col.name)
    if not countries:
        return fallback
    own = {c: _COUNTRY_CURRENCY[c] for c in set(countries) if _COUNTRY_CURRENCY.get(c) in allowed}
    return [own.get(c, f) for c, f in zip(countries, fallback)]


def _integer(col: Column, ch: _Chunk) -> list[str]:
    high = 5000 if col.name.endswith("count") else 1_000_000
    return list(map(str, ch.ints(1, high, col.name)))


def _decimal(col: Column, ch: _Chunk) -> list[str]:
    scale = col.scale or 0
    unit = 10**scale
    high = 5_000 if col.name == "premium" else 250_000
    values = ch.int_array(unit, high * unit, col.name)
    if not scale:
        return list(map(str, values.tolist()))
    whole, fraction = np.divmod(values, unit)
    return list(map(f"%d.%0{scale}d".__mod__, zip(whole.tolist(), fraction.tolist())))


_PREFIXED_DIGITS = re.compile(r"\^([A-Z]*)\[0-9\]\{(\d+)\}\$")


def _patterned(col: Column, ch: _Chunk, unique: bool) -> list[str]:
    """``^PREFIX[0-9]{n}$`` patterns: ids and references, distinct per row for key columns."""
    match = _PREFIXED_DIGITS.fullmatch(col.pattern or "")
    if not match:
        raise ValueError(f"no generator for column {col.name!r} with pattern {col.pattern!r}")
    prefix, digits = match[1], int(match[2])
    if unique:
        numbers = ch.permuted(col.name, 10**digits)
    else:
        numbers = ch.ints(0, 10**digits, col.name)
    return list(map(f"{prefix}%0{digits}d".__mod__, numbers))


def _text(col: Column, ch: _Chunk) -> list[str]:
    return [f"{col.name} {i}"[: col.max_length] for i in ch.indexes]


_BY_NAME: dict[str, Generator] = {
    "week_start": _week_start,
    "date_of_birth": _date_of_birth,
    "start_date": _past_date,
    "end_date": _past_date,
    "holder_name": _person_name,
    "customer_name": _person_name,
    "contact_name": _person_name,
    "contact_email": _email,
    "email": _email,
    "contact_phone": _phone,
    "phone": _phone,
    "merchant_name": _merchant_name,
    "mcc": _mcc,
    "currency": _currency,
}


def _generator(contract: Contract, col: Column) -> Generator:
    if col.enum:
        if col.name == "currency":
            return _currency
        return lambda c, ch: ch.pick(c.enum, c.name)
    if col.name in _BY_NAME:
        return _BY_NAME[col.name]
    if col.type == "date":
        return _week_date
    if col.type == "integer":
        return _integer
    if col.type == "decimal":
        return _decimal
    if col.pattern:
        unique = col.name in contract.key
        return lambda c, ch: _patterned(c, ch, unique)
    return _text


def _unique_key_column(contract: Contract) -> None:
    """Rows are unique on the key because one key column is generated distinct per row."""
    if not any(contract.column(k).pattern and not contract.column(k).enum for k in contract.key):
        raise ValueError(f"contract {contract.partner}: no key column the generator can keep distinct")


def _column_chunks(contract: Contract, week: IsoWeek, rows: int, seed: int) -> Iterator[list[list[str]]]:
    """The rows in blocks of CHUNK, column-wise: one list of values per column."""
    _unique_key_column(contract)
    generators = [(col, _generator(contract, col)) for col in contract.columns]
    for start in range(0, rows, CHUNK):
        chunk = _Chunk(contract, week, seed, start, min(CHUNK, rows - start))
        for col, make in generators:
            values = make(col, chunk)
            if not col.required:
                blank = chunk.ints(0, 12, col.name, "blank")
                values = [v if b else "" for v, b in zip(values, blank)]
            chunk.values[col.name] = values
        yield list(chunk.values.values())


def generate_rows(contract: Contract, week: IsoWeek, rows: int, seed: int = 0) -> Iterator[list[str]]:
    """``rows`` valid data rows for the contract's columns, in header order, as strings."""
    for columns in _column_chunks(contract, week, rows, seed):
        yield from map(list, zip(*columns))


def is_sensitive(col: Column) -> bool:
    return col.classification in ("pii", "restricted")


# --- the writer's plan, and the corruptions that change it -------------------------------

@dataclass
class Signing:
    """Key material to encrypt and sign a PGP partner's file as the partner would."""

    recipient_public_key: str  # FlowGate's (the partner encrypts to it)
    signer_private_key: str    # the partner's


@dataclass
class Plan:
    """What ``write_partner_file`` writes. Corruptions change it before writing starts."""

    contract: Contract
    week: IsoWeek
    rows: int
    seed: int
    header: list[str]
    sensitive: list[bool]  # per header position: pii or restricted (planted_pii collects these)
    delimiter: str
    trailer: bool
    trailer_offset: int = 0
    bom: bool = False
    row_edits: list[Callable[[int, list[str]], list[str]]] = field(default_factory=list)
    cp1252_rows: set[int] = field(default_factory=set)
    truncate_gzip: bool = False
    empty: bool = False
    foreign_signer: bool = False

    @property
    def middle(self) -> int:
        """The row single-row corruptions hit: halfway, so a loader must read the whole file."""
        return self.rows // 2

    def free_text_column(self, prefer_public: bool = True) -> int:
        """Header position of a string column without pattern or enum (names)."""
        candidates = [i for i, name in enumerate(self.header)
                      if name in self.contract.header and self._free_text(self.contract.column(name))]
        if not candidates:
            raise ValueError(f"contract {self.contract.partner} has no free-text column")
        if prefer_public:
            public = [i for i in candidates if not self.sensitive[i]]
            candidates = public or candidates
        return candidates[0]

    @staticmethod
    def _free_text(col: Column) -> bool:
        return col.type == "string" and not col.pattern and not col.enum

    def edit_row(self, index: int, edit: Callable[[list[str]], list[str]]) -> None:
        self.row_edits.append(lambda i, row: edit(row) if i == index else row)

    def data_rows(self) -> Iterator[list[str]]:
        rows = generate_rows(self.contract, self.week, self.rows, self.seed)
        if not self.row_edits:
            return rows
        return (self._edited(i, row) for i, row in enumerate(rows))

    def _edited(self, i: int, row: list[str]) -> list[str]:
        for edit in self.row_edits:
            row = edit(i, row)
        return row


def _ssn(i: int, seed: int) -> str:
    """A valid-looking US SSN (area 001-665/667-899, group 01-99, serial 0001-9999)."""
    r = random.Random(f"{seed}:ssn:{i}")
    area = r.randrange(1, 899)
    area += area >= 666  # never 666
    return f"{area:03d}-{r.randrange(1, 100):02d}-{r.randrange(1, 10000):04d}"


def _set(row: list[str], position: int, value: str) -> list[str]:
    row = list(row)
    row[position] = value
    return row


def extra_ssn_column(plan: Plan) -> None:
    """An ``ssn`` column the contract does not list, holding valid-looking SSNs."""
    plan.header.append("ssn")
    plan.sensitive.append(True)
    plan.row_edits.append(lambda i, row: [*row, _ssn(i, plan.seed)])


def renamed_header(plan: Plan) -> None:
    """One column renamed (the second: ``merchant_id`` -> ``merchantid``), data unchanged."""
    position = 1 if len(plan.header) > 1 else 0
    name = plan.header[position]
    plan.header[position] = name.replace("_", "") if "_" in name else f"{name}_value"


def reordered_columns(plan: Plan) -> None:
    """The second and third columns swapped, in the header and every row alike."""
    a, b = 1, 2
    plan.header[a], plan.header[b] = plan.header[b], plan.header[a]
    plan.sensitive[a], plan.sensitive[b] = plan.sensitive[b], plan.sensitive[a]

    def swap(i: int, row: list[str]) -> list[str]:
        row = list(row)
        row[a], row[b] = row[b], row[a]
        return row

    plan.row_edits.append(swap)


def duplicate_header(plan: Plan) -> None:
    """One column twice: the second column's name and values again at the end (an export
    that selected it twice)."""
    position = 1 if len(plan.header) > 1 else 0
    plan.header.append(plan.header[position])
    plan.sensitive.append(plan.sensitive[position])
    plan.row_edits.append(lambda i, row: [*row, row[position]])


def utf8_bom(plan: Plan) -> None:
    """A UTF-8 byte-order mark before the header (``\\ufeffweek_start``...)."""
    plan.bom = True


def cp1252_bytes(plan: Plan) -> None:
    """One row (the middle one) written in cp1252: its name's 'é' is the single byte 0xE9."""
    position = plan.free_text_column(prefer_public=True)
    name = "Crêperie Hélène Genève" if not plan.sensitive[position] else "Renée Vasnorek"
    plan.edit_row(plan.middle, lambda row: _set(row, position, name))
    plan.cp1252_rows.add(plan.middle)


def semicolon_delimiter(plan: Plan) -> None:
    """``;`` between the fields (header, rows and trailer) instead of the contract's delimiter."""
    plan.delimiter = ";"


def quoted_newlines(plan: Plan) -> None:
    """LEGAL: one name (middle row) holds a newline, correctly quoted. The file must load."""
    position = plan.free_text_column(prefer_public=True)
    plan.edit_row(plan.middle, lambda row: _set(row, position, row[position].replace(" ", "\n", 1)))


def truncated_gzip(plan: Plan) -> None:
    """The gzip stream cut short (no end, no CRC): an upload interrupted mid-file."""
    plan.truncate_gzip = True


def empty_file(plan: Plan) -> None:
    """0 bytes: no header, no gzip, no OpenPGP."""
    plan.empty = True
    plan.rows = 0


def header_only(plan: Plan) -> None:
    """The header line and nothing else (no rows, no trailer)."""
    plan.rows = 0
    plan.trailer = False


def huge_field(plan: Plan) -> None:
    """One field (a name, middle row) of 200 KB: far beyond any max_length."""
    position = plan.free_text_column(prefer_public=True)
    filler = ("huge field " * (HUGE_FIELD_BYTES // 11 + 1))[:HUGE_FIELD_BYTES]
    plan.edit_row(plan.middle, lambda row: _set(row, position, filler))


def bad_signature(plan: Plan) -> None:
    """PGP partners: encrypted to us, but signed by a key that is not the partner's."""
    if not plan.contract.format.pgp:
        raise ValueError(f"bad_signature: {plan.contract.partner}'s files are not OpenPGP")
    plan.foreign_signer = True


def trailer_mismatch(plan: Plan) -> None:
    """The trailer's row count is one more than the rows sent."""
    if not plan.trailer:
        raise ValueError(f"trailer_mismatch: {plan.contract.partner}'s files have no trailer")
    plan.trailer_offset = 1


def changed_content(plan: Plan) -> None:
    """Same name, other rows (another seed): a redelivery that is not the same file."""
    plan.seed = plan.seed + 1


CORRUPTIONS: dict[str, Callable[[Plan], None]] = {
    f.__name__: f
    for f in (extra_ssn_column, renamed_header, reordered_columns, duplicate_header, utf8_bom, cp1252_bytes,
              semicolon_delimiter, quoted_newlines, truncated_gzip, empty_file, header_only, huge_field,
              bad_signature, trailer_mismatch, changed_content)
}
LEGAL_CORRUPTIONS = frozenset({"quoted_newlines", "changed_content"})  # these files must load


def applies(name: str, contract: Contract) -> bool:
    """Whether a corruption makes sense for the contract (PGP, trailer)."""
    if name == "bad_signature":
        return contract.format.pgp
    if name == "trailer_mismatch":
        return contract.format.trailer_prefix is not None
    if name == "truncated_gzip":
        return contract.format.compression == "gzip"
    return name in CORRUPTIONS


def plan_for(contract: Contract, week: IsoWeek, rows: int, seed: int = 0, corruption: str | None = None) -> Plan:
    plan = Plan(
        contract=contract, week=week, rows=rows, seed=seed, header=list(contract.header),
        sensitive=[is_sensitive(c) for c in contract.columns], delimiter=contract.format.delimiter,
        trailer=contract.format.trailer_prefix is not None,
    )
    if corruption is not None:
        if corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {corruption!r}; known: {', '.join(CORRUPTIONS)}")
        if corruption == "truncated_gzip" and contract.format.compression != "gzip":
            raise ValueError(f"truncated_gzip: {contract.partner}'s files are not gzip'd")
        CORRUPTIONS[corruption](plan)
    return plan


def planted_pii(contract: Contract, week: IsoWeek, rows: int, seed: int = 0,
                corruption: str | None = None) -> set[str]:
    """Every non-empty value of a pii or restricted column in the file these arguments
    write (emails, phones, names, customer refs, dates of birth as written; the SSNs of
    ``extra_ssn_column``)."""
    plan = plan_for(contract, week, rows, seed, corruption)
    if plan.empty:
        return set()
    positions = [i for i, sensitive in enumerate(plan.sensitive) if sensitive]
    return {row[i] for row in plan.data_rows() for i in positions if row[i]}


# --- writing ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PartnerFile:
    path: Path
    rows: int          # data rows written
    size: int          # bytes on disk
    sha256: str
    corruption: str | None


class _Lines:
    """CSV lines into a binary stream, in blocks (the csv module quotes as needed)."""

    def __init__(self, out, delimiter: str):
        self.out = out
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, delimiter=delimiter, lineterminator="\n")

    def row(self, values: list[str]) -> None:
        self.writer.writerow(values)
        if self.buffer.tell() > 1 << 20:
            self.flush()

    def raw(self, text: str, encoding: str = "utf-8") -> None:
        self.flush()
        self.out.write(text.encode(encoding))

    def row_encoded(self, values: list[str], encoding: str) -> None:
        self.flush()
        self.writer.writerow(values)
        text = self.buffer.getvalue()
        self._reset()
        self.out.write(text.encode(encoding))

    def flush(self) -> None:
        if self.buffer.tell():
            self.out.write(self.buffer.getvalue().encode("utf-8"))
            self._reset()

    def _reset(self) -> None:
        self.buffer.seek(0)
        self.buffer.truncate(0)


class _Behind:
    """Writes to ``out`` from a thread: zlib releases the GIL, so gzip runs on another core
    while this one generates rows. Bounded, so memory stays a few blocks."""

    def __init__(self, out):
        self.out = out
        self.blocks: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._drain, name="partner-file-writer", daemon=True)

    def _drain(self) -> None:
        while (block := self.blocks.get()) is not None:
            if self.error is None:
                try:
                    self.out.write(block)
                except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                    self.error = err

    def write(self, block: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.blocks.put(block)

    def __enter__(self) -> _Behind:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.blocks.put(None)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error


@functools.cache
def _needs_quotes(delimiter: str) -> Callable[[str], re.Match | None]:
    return re.compile(f'[{re.escape(delimiter)}"\r\n]').search


def _quoted(values: list[str], delimiter: str) -> list[str]:
    """Quote, as csv.QUOTE_MINIMAL does, the values holding the delimiter, a quote or a line
    break; one pass over the joined column first, since most columns hold none."""
    needs = _needs_quotes(delimiter)
    if not needs("\x00".join(values)):
        return values
    distinct = set(values)
    if len(distinct) * 4 < len(values):  # names from a pool: decide once per distinct value
        quoted = {v: '"' + v.replace('"', '""') + '"' if needs(v) else v for v in distinct}
        return list(map(quoted.__getitem__, values))
    return ['"' + v.replace('"', '""') + '"' if needs(v) else v for v in values]


def _write_text(plan: Plan, out) -> int:
    """Header, rows, trailer into ``out`` (binary); returns the data rows written."""
    if plan.bom:
        out.write(UTF8_BOM)
    lines = _Lines(out, plan.delimiter)
    lines.row(plan.header)
    written = 0
    if not plan.cp1252_rows and not plan.row_edits:
        # The fast path (a million rows in seconds): whole blocks joined column-wise, a value
        # quoted only where it holds the delimiter, a quote or a line break, as csv does.
        for columns in _column_chunks(plan.contract, plan.week, plan.rows, plan.seed):
            columns = [_quoted(values, plan.delimiter) for values in columns]
            lines.raw("\n".join(map(plan.delimiter.join, zip(*columns))) + "\n")
            written += len(columns[0])
    else:
        for i, row in enumerate(plan.data_rows()):
            if i in plan.cp1252_rows:
                lines.row_encoded(row, "cp1252")
            else:
                lines.row(row)
            written += 1
    if plan.trailer:
        lines.raw(f"{plan.contract.format.trailer_prefix}{plan.delimiter}{written + plan.trailer_offset}\n")
    lines.flush()
    return written


def _tmp(dst: Path, suffix: str) -> Path:
    return dst.with_name(f".{dst.name}.{suffix}")


def write_partner_file(contract: Contract, week: IsoWeek, dst: Path, rows: int = 1000, seed: int = 0,
                       corruption: str | None = None, signing: Signing | None = None) -> PartnerFile:
    """Write the partner's file for ``week`` to ``dst`` as the contract says (or broken as
    ``corruption`` names). PGP contracts need ``signing``. The file appears whole or not at all."""
    dst = Path(dst)
    plan = plan_for(contract, week, rows, seed, corruption)
    if contract.format.pgp and signing is None and not plan.empty:
        raise ValueError(f"{contract.partner}'s files are OpenPGP encrypted and signed: pass signing=")
    dst.parent.mkdir(parents=True, exist_ok=True)
    plain = _tmp(dst, "plain") if contract.format.pgp else _tmp(dst, "part")
    final = _tmp(dst, "part")
    try:
        written = 0
        if plan.empty:
            plain.write_bytes(b"")
        elif contract.format.compression == "gzip":
            # mtime=0 and no file name in the gzip header: the same rows give the same bytes.
            with open(plain, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL,
                                                         mtime=0, filename="") as gz, _Behind(gz) as out:
                written = _write_text(plan, out)
            if plan.truncate_gzip:
                size = plain.stat().st_size
                with open(plain, "r+b") as f:
                    f.truncate(max(1, size * 2 // 3) if size > 30 else size - 8)
        else:
            with open(plain, "wb") as raw:
                written = _write_text(plan, raw)
        if contract.format.pgp and not plan.empty:
            from flowgate.partner import pgp

            signer = signing.signer_private_key
            if plan.foreign_signer:
                signer, _, _ = pgp.generate_key_pair("Not the partner", "impostor@example.invalid")
            pgp.encrypt_and_sign(plain, final, signing.recipient_public_key, signer)
        elif plain != final:
            os.replace(plain, final)
        os.replace(final, dst)
    finally:
        plain.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
    return PartnerFile(path=dst, rows=written, size=dst.stat().st_size, sha256=sha256_of_file(dst),
                       corruption=corruption)
