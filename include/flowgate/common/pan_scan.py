"""Find card numbers (PANs) in bytes, files and text — the check behind "no raw PAN at rest".

A hit needs all three of: 13-19 ASCII digits (plain, or in the usual 4-4-4-4 / 4-6-5
groups with single spaces or dashes), a valid Luhn digit, and a prefix and length some
card network issues. The last two keep the scanner quiet on what a data platform is full
of: 13-digit epoch millis (prefix 1, no network), Kafka offsets, uuids (hex groups of
8-4-4-4-12), random ids. Hits are reported masked (first six, last four); the clear PAN
never leaves this module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# (prefix range low, high, number of prefix digits) -> allowed lengths. The networks' IIN
# ranges; broader than what the gateway simulator issues, on purpose: a scanner should
# know every card the platform might ever see.
_NETWORK_RULES: tuple[tuple[int, int, int, frozenset[int]], ...] = (
    (4, 4, 1, frozenset({13, 16, 19})),                       # Visa
    (51, 55, 2, frozenset({16})),                             # Mastercard
    (2221, 2720, 4, frozenset({16})),                         # Mastercard 2-series
    (34, 34, 2, frozenset({15})), (37, 37, 2, frozenset({15})),  # American Express
    (6011, 6011, 4, frozenset(range(16, 20))),                # Discover
    (644, 649, 3, frozenset(range(16, 20))),                  # Discover
    (65, 65, 2, frozenset(range(16, 20))),                    # Discover
    (62, 62, 2, frozenset(range(16, 20))),                    # UnionPay
    (3528, 3589, 4, frozenset(range(16, 20))),                # JCB
    (300, 305, 3, frozenset(range(14, 20))),                  # Diners Club
    (36, 36, 2, frozenset(range(14, 20))),                    # Diners Club
    (38, 39, 2, frozenset(range(16, 20))),                    # Diners Club
    (50, 50, 2, frozenset(range(13, 20))),                    # Maestro
    (56, 58, 2, frozenset(range(13, 20))),                    # Maestro
)

MIN_DIGITS, MAX_DIGITS = 13, 19
# A maximal run of at least 13 digits with single space/dash separators between them
# (shorter runs hold no PAN, and skipping them in the regex engine is what makes it fast).
_RUN_BYTES = re.compile(rb"[0-9](?:[ -]?[0-9]){12,}")
_RUN_TEXT = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")
_SEPARATORS = re.compile(r"[ -]")
# Longest grouped PAN layout in characters (4-4-4-4-3 with separators): a longer grouped
# run is never one PAN, only its digit-only groups can be.
_MAX_GROUPED_CHARS = 23
CHUNK_SIZE = 1 << 20
OVERLAP = 8192  # bytes shared by consecutive read windows


def _layout_ok(groups: list[str]) -> bool:
    """The ways PANs are written in groups: 4-4-4-4(-3), 4-4-4-1, 4-6-5 (Amex), 4-6-4 (Diners)."""
    sizes = [len(g) for g in groups]
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4 and len(sizes) >= 4


def network_match(digits: str) -> bool:
    """True if some card network issues numbers of this prefix and length."""
    for low, high, width, lengths in _NETWORK_RULES:
        if len(digits) in lengths and low <= int(digits[:width]) <= high:
            return True
    return False


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_pan(digits: str) -> bool:
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and network_match(digits) and _luhn_ok(digits)


def mask(digits: str) -> str:
    """First six and last four, the rest as ``*`` (what PCI-DSS allows to be displayed)."""
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


@dataclass(frozen=True)
class PanHit:
    offset: int          # of the first digit, in bytes from the start of the data/file
    length: int          # characters the PAN spans, separators included
    masked: str          # e.g. 411111******1111 — never the clear PAN
    path: str | None = None

    def __str__(self) -> str:
        return f"{self.path or '<data>'}:{self.offset}: {self.masked}"


_HEXISH = frozenset(b"0123456789abcdefABCDEF-")
_HEX_LETTERS = frozenset(b"abcdefABCDEF")
# A hex string at least this long (a digest, a uuid) holds digit runs, not card numbers.
HEX_STRING_MIN = 32
_CONTEXT = 64  # characters looked at on each side of a candidate


def _in_hex_string(data: bytes | str, start: int, end: int) -> bool:
    """True if ``data[start:end]`` is part of a longer hex string (a digest or a uuid, whose
    all-digit stretches can pass Luhn and a network rule): the run of hex characters and
    dashes around it is at least ``HEX_STRING_MIN`` long and holds a letter a-f.

    A PAN merely next to a stray letter (binary data, "id-4111...") is still reported."""

    def code(i: int) -> int:
        ch = data[i]
        return ch if isinstance(ch, int) else ord(ch)

    lo, hi, letters = start, end, 0
    while lo > max(start - _CONTEXT, 0) and code(lo - 1) in _HEXISH:
        lo -= 1
        letters += code(lo) in _HEX_LETTERS
    while hi < min(end + _CONTEXT, len(data)) and code(hi) in _HEXISH:
        letters += code(hi) in _HEX_LETTERS
        hi += 1
    return letters > 0 and hi - lo >= HEX_STRING_MIN


def _pans_in(data: bytes | str, run_pattern: re.Pattern, begin: int = 0,
             stop: int | None = None) -> Iterator[tuple[int, int, str]]:
    """(offset, length, digits) of each PAN in ``data`` whose run starts in [begin, stop)."""
    stop = len(data) if stop is None else stop
    for match in run_pattern.finditer(data):
        if match.start() >= stop:
            break
        if match.start() < begin:
            continue
        run = match.group()
        run = run.decode("ascii") if isinstance(run, bytes) else run
        if _part_of_another_token(data, match.start()):
            continue
        for offset, length, digits in _candidates(run, match.start()):
            if looks_like_pan(digits) and not _in_hex_string(data, offset, offset + length):
                yield offset, length, digits


_WORD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_DIGITS = frozenset(b"0123456789")


def _part_of_another_token(data: bytes | str, start: int) -> bool:
    """True if the run at ``start`` continues something that is not a card number: an
    identifier (``fetchFileTemp4667…``, Java's temp files) or the fraction of a decimal
    (``duration=2.2658035150016076``). Both are all over platform logs; a PAN written
    into data is delimited (quotes, ``=``, ``:``, spaces, dashes)."""

    def code(i: int) -> int:
        ch = data[i]
        return ch if isinstance(ch, int) else ord(ch)

    if start == 0:
        return False
    before = code(start - 1)
    if before in _WORD_CHARS:
        return True
    return before == ord(".") and start >= 2 and code(start - 2) in _DIGITS


def _candidates(run: str, start: int) -> Iterator[tuple[int, int, str]]:
    """(offset, length, digits) of each PAN-shaped candidate in one maximal run."""
    groups = _SEPARATORS.split(run)
    if len(groups) > 1 and len(run) <= _MAX_GROUPED_CHARS and _layout_ok(groups):
        yield start, len(run), "".join(groups)
    offset = start
    for group in groups:  # a digit-only group is a candidate of its own (e.g. "id-4111...")
        if MIN_DIGITS <= len(group) <= MAX_DIGITS:
            yield offset, len(group), group
        offset += len(group) + 1


def find_pans(data: bytes, *, base_offset: int = 0, path: str | None = None) -> list[PanHit]:
    """Every PAN in ``data`` (any bytes: text, binary, compressed-looking noise)."""
    return [PanHit(base_offset + offset, length, mask(digits), path)
            for offset, length, digits in _pans_in(data, _RUN_BYTES)]


def redact_pans(text: str) -> str:
    """``text`` with each PAN replaced by its masked form (for dead-letter payloads, logs)."""
    pieces, last = [], 0
    for offset, length, digits in _pans_in(text, _RUN_TEXT):
        if offset >= last:
            pieces += [text[last:offset], mask(digits)]
            last = offset + length
    return "".join(pieces) + text[last:]


# --- files -------------------------------------------------------------------------------

@dataclass
class ScanReport:
    files: int = 0
    bytes: int = 0
    hits: list[PanHit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # files that could not be read

    @property
    def clean(self) -> bool:
        return not self.hits


def scan_file(path: Path, chunk_size: int = CHUNK_SIZE, overlap: int = OVERLAP) -> tuple[int, list[PanHit]]:
    """(bytes read, hits) of one file, read in chunks; a PAN across a chunk boundary is found.

    Consecutive windows overlap by ``overlap`` bytes and each reports only the runs that
    start in its middle part, so every run is seen once, whole, with ``overlap / 2`` bytes
    of context on each side (runs longer than that are no PAN anyway).
    """
    half = overlap // 2
    hits: list[PanHit] = []
    buf, base, done, total = b"", 0, 0, 0  # base: file offset of buf[0]; done: reported up to
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            total += len(chunk)
            buf += chunk
            until = base + len(buf) - (0 if not chunk else half)
            if until > done:
                hits += [PanHit(base + o, n, mask(d), str(path))
                         for o, n, d in _pans_in(buf, _RUN_BYTES, done - base, until - base)]
                done = until
            if not chunk:
                return total, hits
            drop = max(0, done - half - base)
            buf, base = buf[drop:], base + drop


def _files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Regular files under ``paths`` (symlinks and sockets skipped: no loops, no hangs)."""
    for root in map(Path, paths):
        if root.is_file() and not root.is_symlink():
            yield root
        elif root.is_dir():
            for dirpath, _dirnames, filenames in os.walk(root):
                for name in sorted(filenames):
                    path = Path(dirpath) / name
                    if path.is_file() and not path.is_symlink():
                        yield path


def scan_paths(paths: Iterable[Path | str], chunk_size: int = CHUNK_SIZE) -> ScanReport:
    """Scan every file under ``paths`` (recursively, binary files too)."""
    report = ScanReport()
    for path in _files(paths):
        try:
            size, hits = scan_file(path, chunk_size)
        except OSError as err:
            report.errors.append(f"{path}: {err.strerror or type(err).__name__}")
            continue
        report.files += 1
        report.bytes += size
        report.hits += hits
    return report
