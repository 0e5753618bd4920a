"""Partner contracts: one reviewed YAML file per partner in ``expectations/partners/``.

A contract says where and how a partner delivers (folder, file name carrying the ISO
week, encoding, delimiter, compression, PGP), and every column it may send: its type,
whether it is required, its pattern or enum, its classification and what happens to it
before the warehouse (keep, tokenize, encrypt, drop). Anything the contract does not
allow quarantines the whole file, so the contract *is* the NDA's allow-list.

They live beside the GX suites in ``expectations/`` because both are controls an auditor
reviews: the SHA-256 of the contract and of the suite is recorded with every run.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Action = Literal["keep", "tokenize", "encrypt", "drop"]
Classification = Literal["public", "internal", "pii", "restricted"]
ColumnType = Literal["string", "integer", "decimal", "date"]

# Longest value a column without its own max_length may hold: a 200 KB field is a broken
# export (or an exfiltration attempt), never data.
DEFAULT_MAX_LENGTH = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: ColumnType
    required: bool
    classification: Classification
    action: Action
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    scale: int | None = None  # decimals: digits after the point (money is exact)
    in_delivery_week: bool = False  # dates: must fall in the ISO week the file is for

    @model_validator(mode="after")
    def _sensitive_columns_never_kept(self) -> Column:
        if self.classification in ("pii", "restricted") and self.action == "keep":
            raise ValueError(f"column {self.name!r} is {self.classification}: tokenize, encrypt or drop it")
        if self.type == "decimal" and self.scale is None:
            raise ValueError(f"decimal column {self.name!r} needs a scale")
        if self.pattern is not None:
            re.compile(self.pattern)
        return self

    @property
    def output_name(self) -> str:
        """The column's name in the warehouse: a token or a ciphertext says so."""
        return {"tokenize": f"{self.name}_token", "encrypt": f"{self.name}_encrypted"}.get(self.action, self.name)


class Delivery(_Strict):
    folder: str
    file_name: str  # with {week}: "acme_spend_{week}.csv.gz"
    deadline_hours: int = 36
    poke_minutes: int = 15

    @model_validator(mode="after")
    def _names_the_week(self) -> Delivery:
        if "{week}" not in self.file_name:
            raise ValueError("delivery.file_name must carry {week}: a file is one ISO week")
        return self


class FileFormat(_Strict):
    encoding: Literal["utf-8"]
    delimiter: str = Field(min_length=1, max_length=1)
    header: Literal[True]
    compression: Literal["gzip", "none"]
    pgp: bool
    trailer_prefix: str | None = None  # last line "<prefix><delimiter><row count>"


class Contract(_Strict):
    partner: str = Field(pattern=r"^[a-z][a-z0-9]*$")
    description: str
    dataset: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    suite: str
    keys_conn_id: str
    delivery: Delivery
    format: FileFormat
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    # Where the contract came from and its exact bytes' digest (set by load_contract).
    path: Path | None = None
    sha256: str | None = None

    @model_validator(mode="after")
    def _key_and_names(self) -> Contract:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"contract {self.partner}: a column is listed twice")
        for key in self.key:
            column = self.column(key)
            if column.action not in ("keep", "tokenize") or not column.required:
                raise ValueError(f"key column {key!r} must be required and kept or tokenized")
        return self

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def header(self) -> tuple[str, ...]:
        """The header the partner must send: exactly these names, in this order."""
        return tuple(c.name for c in self.columns)

    @property
    def loaded_columns(self) -> tuple[Column, ...]:
        """What reaches the warehouse: every column the contract does not drop."""
        return tuple(c for c in self.columns if c.action != "drop")

    @property
    def schema(self) -> str:
        return f"partner_{self.partner}"

    @property
    def table(self) -> str:
        return f"{self.schema}.{self.dataset}"

    def file_name(self, week: IsoWeek) -> str:
        return self.delivery.file_name.format(week=week.compact)

    def remote_path(self, week: IsoWeek) -> str:
        return f"{self.delivery.folder.rstrip('/')}/{self.file_name(week)}"


class IsoWeek(tuple):
    """An ISO week (year, week): ``2026-W47`` in params, ``2026W47`` in file names."""

    _FORM = re.compile(r"^(\d{4})-?W(\d{2})$")

    def __new__(cls, year: int, week: int):
        date.fromisocalendar(year, week, 1)  # raises for week 53 of a 52-week year
        return super().__new__(cls, (year, week))

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        match = cls._FORM.match(text.strip())
        if not match:
            raise ValueError(f"not an ISO week: {text!r} (expected e.g. 2026-W47)")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date | datetime) -> IsoWeek:
        year, week, _ = day.isocalendar()
        return cls(year, week)

    @property
    def year(self) -> int:
        return self[0]

    @property
    def week(self) -> int:
        return self[1]

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def compact(self) -> str:
        return f"{self.year}W{self.week:02d}"

    def previous(self, weeks: int = 1) -> IsoWeek:
        return IsoWeek.of(self.monday - timedelta(weeks=weeks))

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


def contracts_dir() -> Path:
    """``expectations/partners`` of the repo (``FLOWGATE_EXPECTATIONS_DIR`` moves it)."""
    base = os.environ.get("FLOWGATE_EXPECTATIONS_DIR")
    root = Path(base) if base else Path(__file__).resolve().parents[3] / "expectations"
    return root / "partners"


def parse_contract(text: bytes, path: Path | None = None) -> Contract:
    data = yaml.safe_load(text)
    return Contract(**data, path=path, sha256=hashlib.sha256(text).hexdigest())


@cache
def load_contract(partner: str) -> Contract:
    path = contracts_dir() / f"{partner}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no contract for partner {partner!r}: {path} is missing")
    contract = parse_contract(path.read_bytes(), path)
    if contract.partner != partner:
        raise ValueError(f"{path} is the contract of {contract.partner!r}, not {partner!r}")
    return contract


def partners() -> list[str]:
    """Every partner with a contract, in name order (one DAG each)."""
    return sorted(p.stem for p in contracts_dir().glob("*.yaml"))
