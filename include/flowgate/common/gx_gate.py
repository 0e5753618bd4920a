"""The Great Expectations gate: validate a pandas DataFrame or a PostgreSQL table, keep Data
Docs, say yes or no.

A gate's suite is a reviewed, versioned file: ``expectations/<name>.json`` at the top of
the repo (:func:`suites_dir`), in GX's own JSON suite format, read by :func:`load_suite`.
Every result records which file ran and the SHA-256 of its bytes (``suite_file``,
``suite_sha256``), so an audit row says which version of the control passed the data.
Values that change per run (the business date, an expected row count) are GX suite
parameters, ``{"$PARAMETER": "name"}`` in the file, passed as ``suite_parameters``.

Two entry points: :func:`run_gate` validates a frame in memory (the finance flow's staged
rows), :func:`run_table_gate` validates a table where it lies, through GX's SQL
datasource, for data that does not fit in memory. :func:`run_gate` also still takes a
plain list of GX 1.x expectation objects (the helpers below, or ``gx.expectations``).

Why it is built this way:

- **An ephemeral GX context per run**, in memory, with one Data Docs site of our own. No
  ``gx/`` project folder to keep in step, nothing left behind but the evidence, and no
  shared state between runs or between flows.
- **Per-run evidence is never overwritten.** Each run's Data Docs land in
  ``docs_dir/<run_label>/`` (the label made path-safe by
  :func:`flowgate.common.evidence.run_slug`): ``index.html``, the suite page, the
  validation page, and ``gate_result.json`` (the :class:`GateResult` as JSON). Re-running
  the *same* label rebuilds that folder's index (the earlier validation page stays beside
  it, under its own timestamp); a different label never touches another run's folder.
- **The result fails the task explicitly** (DESIGN.md §6): GX 1.x only *returns* a
  result. :meth:`GateResult.raise_if_failed` raises :class:`GateFailed`, a
  :class:`~flowgate.common.gates.GateRejected`, so ``gate_failures_are_final()`` turns it
  into a failure without retries, and the publish task downstream never runs.
- **Fails closed.** An expectation that errors (missing column, incomparable types) counts
  as failed, with GX's error message in ``failed``; a gate with no expectations is refused.
- **Fails closed on its inputs too.** A suite file that is missing, names an unknown
  expectation type or has no expectations is an error, and so is a suite parameter the
  suite uses but the caller did not give: nothing is validated against a half-built suite.
- **Cheap to import.** Great Expectations takes seconds to import (it pulls in scipy and
  altair), so it is imported inside the functions only: DAG files that import this
  module parse fast. And when it is imported, the optional integrations it probes for
  (:data:`UNUSED_INTEGRATIONS`: Spark, Snowflake, AWS, SQLAlchemy, ...) are hidden from
  it: a pandas gate needs none of them, and they were a quarter of its import time. The
  table gate needs SQLAlchemy, which GX cannot pick up once imported without it; see
  :func:`_gx` for how suite files and table gates keep it.
- **Quiet.** Analytics and progress bars off in the context config, and GX's own INFO
  chatter (dozens of lines on import) held back unless someone set its logger's level,
  so task logs hold the verdict.

Unexpected values end up in the Data Docs and in ``failed``. Gate on tokenized or
non-sensitive columns, or pass ``unexpected_sample=0`` (the table gate's default) to keep
values out of the evidence (counts are still reported). That covers the offending values
of row-by-row expectations (in-set, regex, not-null, unique, between, ...); an aggregate
expectation's observed value (a column's max, its distinct values) is its result, and is
shown.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import decimal
import hashlib
import json
import logging
import math
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowgate.common.evidence import run_slug
from flowgate.common.gates import GateRejected

if TYPE_CHECKING:  # annotations only: importing GX or pandas here would slow DAG parsing
    import pandas as pd
    from great_expectations.expectations import Expectation

SITE_NAME = "flowgate"
ASSET_NAME = "rows"
RESULT_FILE = "gate_result.json"
UNEXPECTED_SAMPLE = 5

# include/flowgate/common/gx_gate.py -> the repository root is three levels up (in the
# image: /opt/airflow, where the Dockerfile copies expectations/ beside include/).
SUITES_DIR = Path(__file__).resolve().parents[3] / "expectations"
SUITES_DIR_ENV = "FLOWGATE_EXPECTATIONS_DIR"
SUITE_SUFFIX = ".json"
# psycopg2's connections, as the server lists them (pg_stat_activity): a DBA sees who it is.
APPLICATION_NAME = "flowgate-gx-gate"


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class GateResult:
    """What a GX gate decided, in plain JSON-friendly values (see :meth:`to_dict`)."""

    name: str
    success: bool
    evaluated: int
    failed: list[dict]
    docs_index: Path | None
    statistics: dict
    # Which reviewed suite file ran, and the SHA-256 of its bytes: None for a plain list.
    suite_file: str | None = None
    suite_sha256: str | None = None

    def raise_if_failed(self) -> GateResult:
        """Stop the flow on a failed gate; returns the result itself when it passed."""
        if not self.success:
            raise GateFailed(self)
        return self

    def summary(self) -> str:
        """One line for logs and alerts: the verdict, the counts and each failure."""
        verdict = "passed" if self.success else "FAILED"
        head = f"GX gate {self.name!r} {verdict}: {len(self.failed)} of {self.evaluated} expectations failed"
        lines = [head] + [f"  - {describe_failure(f)}" for f in self.failed]
        if self.suite_file is not None:
            lines.append(f"  Suite: {self.suite_file} (sha256 {(self.suite_sha256 or '')[:12]})")
        if self.docs_index is not None:
            lines.append(f"  Data Docs: {self.docs_index}")
        return "\n".join(lines)

    def verdict(self) -> dict:
        """What a flow's gate task returns and its audit row keeps: the verdict, where the
        Data Docs are, and which suite file (and version) ran."""
        return {"gate": "expectations", "success": self.success, "summary": self.summary(),
                "data_docs": str(self.docs_index), "evaluated": self.evaluated, "failed": self.failed,
                "suite_file": self.suite_file, "suite_sha256": self.suite_sha256}

    def to_dict(self) -> dict:
        """JSON-serialisable form, fit for XCom, an alert payload or the evidence folder."""
        return {
            "gate": "great_expectations",
            "name": self.name,
            "success": self.success,
            "evaluated": self.evaluated,
            "failed": self.failed,
            "docs_index": str(self.docs_index) if self.docs_index else None,
            "statistics": self.statistics,
            "suite_file": self.suite_file,
            "suite_sha256": self.suite_sha256,
        }


class GateFailed(GateRejected):
    """A GX gate said no. Carries the :class:`GateResult` for callers that want details."""

    def __init__(self, result: GateResult):
        self.result = result
        super().__init__(result.summary())

    def __reduce__(self):
        # Exceptions pickle by their args (here the message); rebuild from the result instead.
        return (type(self), (self.result,))


def describe_failure(failure: dict) -> str:
    """A failed expectation in one readable phrase: what, where, and what was found."""
    where = f" on {failure['column']!r}" if failure.get("column") else ""
    found = []
    if "error" in failure:
        found.append(f"error: {failure['error']}")
    if "unexpected_count" in failure:
        found.append(f"{failure['unexpected_count']} unexpected")
    if failure.get("unexpected_values"):
        found.append(f"e.g. {failure['unexpected_values']}")
    if "observed_value" in failure:
        found.append(f"observed {failure['observed_value']!r}")
    return f"{failure['expectation']}{where}" + (f" ({'; '.join(found)})" if found else "")


# --------------------------------------------------------------------------- suite files


class SuiteFileError(ValueError):
    """A suite file that cannot be trusted as written: not a suite, or not one GX knows."""


class MissingSuiteParameter(ValueError):
    """The suite uses a ``$PARAMETER`` the caller did not give: nothing is validated."""


@dataclass(frozen=True)
class Suite:
    """A reviewed suite file, loaded: its GX expectations and the SHA-256 of its bytes.

    ``expectations`` are unbound GX expectation objects; each run copies them into a suite
    of its own, so one ``Suite`` serves any number of runs.
    """

    name: str
    path: Path
    sha256: str
    expectations: list
    meta: dict = field(default_factory=dict)

    @property
    def file(self) -> str:
        """The file as results record it: relative to :func:`suites_dir` when inside it."""
        try:
            return self.path.relative_to(suites_dir()).as_posix()
        except ValueError:
            return str(self.path)

    @property
    def parameters(self) -> list[str]:
        """The ``$PARAMETER`` expressions the suite uses, as written (usually plain names)."""
        return _parameter_expressions(self.expectations)


def suites_dir() -> Path:
    """The reviewed suites: the repo's ``expectations/`` (``$FLOWGATE_EXPECTATIONS_DIR`` moves it)."""
    override = os.environ.get(SUITES_DIR_ENV)
    return Path(override).resolve() if override else SUITES_DIR


def suite_path(path_or_name: str | Path) -> Path:
    """A bare name (``"finance_staged_postings"``, or ``"partners/acme"``) is a file of
    :func:`suites_dir`; a :class:`~pathlib.Path` or a string ending in ``.json`` is a path."""
    if isinstance(path_or_name, Path) or str(path_or_name).endswith(SUITE_SUFFIX):
        return Path(path_or_name).resolve()
    if not str(path_or_name).strip():
        raise SuiteFileError("a suite name must not be empty")
    return (suites_dir() / f"{path_or_name}{SUITE_SUFFIX}").resolve()


# What ExpectationSuite.to_json_dict() writes. Anything else is refused: a typo in a
# reviewed control ("expectation", "kwarg") must not silently drop a check.
_SUITE_KEYS = frozenset({"name", "expectations", "meta", "id", "notes"})
_EXPECTATION_KEYS = frozenset({"type", "kwargs", "meta", "notes", "description", "severity", "id"})


def load_suite(path_or_name: str | Path, *, for_table_gate: bool = False) -> Suite:
    """Read a suite file (GX's JSON suite format) into GX expectations, and fingerprint it.

    The SHA-256 is of the exact bytes that were parsed (read once), so the digest a result
    records is the version that ran. ``id`` fields are ignored: GX gives ids to the
    expectations of the suite each run builds. Imports GX (seconds) if it is not yet:
    ``for_table_gate=True`` imports it with its SQL support (see :func:`_gx`), which
    :func:`run_table_gate` needs and a frame gate does not (it costs ~1.5 s more in a
    process without SQLAlchemy, such as a bench's).
    """
    path = suite_path(path_or_name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no GX suite file {path} (suites live in {suites_dir()})") from None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SuiteFileError(f"{path}: not a JSON file: {error}") from None
    if not isinstance(data, dict):
        raise SuiteFileError(f"{path}: a suite file holds one JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - _SUITE_KEYS)
    if unknown:
        raise SuiteFileError(f"{path}: unknown suite keys {unknown} (allowed: {sorted(_SUITE_KEYS)})")
    name, entries, meta = data.get("name"), data.get("expectations"), data.get("meta") or {}
    if not isinstance(name, str) or not name.strip():
        raise SuiteFileError(f"{path}: the suite has no name")
    if not isinstance(entries, list) or not entries:
        raise SuiteFileError(f"{path}: suite {name!r} has no expectations: it would pass anything")
    if not isinstance(meta, dict):
        raise SuiteFileError(f"{path}: the suite's meta must be an object")
    _gx(sql=for_table_gate)
    expectations = [_expectation(entry, f"{path.name}: expectation #{i}") for i, entry in enumerate(entries, 1)]
    return Suite(name=name, path=path, sha256=hashlib.sha256(raw).hexdigest(),
                 expectations=expectations, meta=meta)


def _expectation(entry: Any, where: str) -> Expectation:
    """One ``{"type", "kwargs", "meta"?}`` entry as the GX expectation object it names."""
    _gx()
    from great_expectations.exceptions import ExpectationNotFoundError, GreatExpectationsError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str) or "kwargs" not in entry:
        raise SuiteFileError(f"{where}: an expectation is an object with a \"type\" and \"kwargs\"")
    unknown = sorted(set(entry) - _EXPECTATION_KEYS)
    if unknown:
        raise SuiteFileError(f"{where} ({entry['type']}): unknown keys {unknown} (allowed: {sorted(_EXPECTATION_KEYS)})")
    try:
        config = ExpectationConfiguration(**{k: v for k, v in entry.items() if k != "id"})
        return config.to_domain_obj()
    except ExpectationNotFoundError:
        raise SuiteFileError(f"{where}: unknown expectation type {entry['type']!r}") from None
    except (GreatExpectationsError, ValueError, TypeError) as error:  # pydantic's errors are ValueErrors
        raise SuiteFileError(f"{where} ({entry['type']}): {error}") from error


def _parameter_expressions(expectations: Iterable[Expectation]) -> list[str]:
    """Each distinct ``{"$PARAMETER": ...}`` of the expectations' arguments, in order.

    GX substitutes them in top-level arguments only, so that is where they are looked for.
    """
    found: dict[str, None] = {}
    for expectation in expectations:
        for value in expectation.configuration.kwargs.values():
            if isinstance(value, dict) and "$PARAMETER" in value:
                found[str(value["$PARAMETER"])] = None
    return list(found)


def _check_parameters(name: str, expectations: Sequence[Expectation], given: Mapping[str, Any] | None) -> None:
    """Fail closed before validating: every parameter the suite uses must have a value.

    GX would raise in the middle of the run; here the error names the gate and what is
    missing. Expressions (``"rows * 2"``) are checked by GX's own parser.
    """
    from great_expectations.core.suite_parameters import parse_suite_parameter
    from great_expectations.exceptions import SuiteParameterError

    given = dict(given or {})
    missing = []
    for expression in _parameter_expressions(expectations):
        try:
            parse_suite_parameter(expression, suite_parameters=given)
        except SuiteParameterError:
            missing.append(expression)
    if missing:
        raise MissingSuiteParameter(
            f"GX gate {name!r}: no value for suite parameter(s) {missing} "
            f"(given: {sorted(given) or 'none'})"
        )


# --------------------------------------------------------------------------- running


def run_gate(
    name: str,
    frame: pd.DataFrame,
    expectations: Sequence[Expectation] | Suite,
    docs_dir: Path,
    run_label: str,
    *,
    unexpected_sample: int = UNEXPECTED_SAMPLE,
    suite_parameters: Mapping[str, Any] | None = None,
) -> GateResult:
    """Validate ``frame`` against a suite (or a list of expectations); write this run's Data Docs.

    ``name`` names the suite, checkpoint and datasource (it is what auditors see in the
    docs). A :class:`Suite` from :func:`load_suite` is recorded in the result (file and
    SHA-256); ``suite_parameters`` are the values of its ``$PARAMETER`` s. Data Docs go to
    ``docs_dir/<run_label>/`` so earlier runs keep theirs. The caller decides what a
    failure means: usually ``run_gate(...).raise_if_failed()``. ``unexpected_sample``
    caps how many offending values are shown (0 shows none).
    """
    suite = expectations if isinstance(expectations, Suite) else None
    expectations = list(suite.expectations if suite else expectations)
    if not expectations:
        raise ValueError(f"GX gate {name!r} has no expectations: it would pass anything")
    started = time.perf_counter()
    _gx()
    _check_parameters(name, expectations, suite_parameters)
    site_dir = run_docs_dir(docs_dir, run_label)

    context = _ephemeral_context(site_dir)
    batch = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(ASSET_NAME)
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    return _validate(
        context, name, batch, expectations, site_dir, run_label,
        batch_parameters={"dataframe": frame}, suite=suite, suite_parameters=suite_parameters,
        unexpected_sample=unexpected_sample, started=started, statistics={"rows": len(frame)},
    )


def run_table_gate(
    suite: Suite,
    conninfo: str,
    schema: str,
    table: str,
    docs_dir: Path,
    run_label: str,
    *,
    suite_parameters: Mapping[str, Any] | None = None,
    unexpected_sample: int = 0,
) -> GateResult:
    """Validate a PostgreSQL table where it lies, for data that does not fit in memory.

    GX's postgres datasource turns each expectation into SQL over the whole table (counts,
    aggregates), so the table is never loaded into this process; at most
    ``unexpected_sample`` offending values per failed expectation come back: none by
    default. ``conninfo`` is a libpq conninfo string (what
    :func:`flowgate.common.connections.postgres_dsn` returns), handed to libpq as is. The
    suite is named after ``suite.name`` in the docs; results record its file and SHA-256.
    """
    if not isinstance(suite, Suite):
        raise TypeError(f"run_table_gate takes a Suite (load_suite), not {type(suite).__name__}")
    if not suite.expectations:
        raise ValueError(f"GX gate {suite.name!r} has no expectations: it would pass anything")
    started = time.perf_counter()
    _gx(sql=True)
    _check_parameters(suite.name, suite.expectations, suite_parameters)
    site_dir = run_docs_dir(docs_dir, run_label)
    if not _has_sql():
        return _table_gate_in_child(suite, conninfo, schema, table, docs_dir, run_label,
                                    suite_parameters=suite_parameters, unexpected_sample=unexpected_sample)

    context = _ephemeral_context(site_dir)
    datasource = context.data_sources.add_postgres(
        suite.name, connection_string=_postgres_url(conninfo),
        # No temp-table copy of the batch: a whole-table batch is read where it lies.
        create_temp_table=False, kwargs={"creator": _connect_with(conninfo)},
    )
    try:
        batch = (
            datasource.add_table_asset(ASSET_NAME, table_name=table, schema_name=schema)
            .add_batch_definition_whole_table("whole_table")
        )
        return _validate(
            context, suite.name, batch, suite.expectations, site_dir, run_label,
            batch_parameters=None, suite=suite, suite_parameters=suite_parameters,
            unexpected_sample=unexpected_sample, started=started, statistics={"table": f"{schema}.{table}"},
        )
    finally:
        _close(datasource)


def _close(datasource) -> None:
    """Close the connections now, not at garbage collection: GX itself never does.

    The datasource's engine (connection tests) and its execution engine's (the
    validation's queries) are two SQLAlchemy engines, each with its own pool.
    """
    execution_engine = datasource.get_execution_engine()  # the cached one
    execution_engine.close()
    datasource.get_engine().dispose()


class TableGateError(RuntimeError):
    """The table gate failed in its child process (the message says how)."""


# Set in the child process of _table_gate_in_child: a child never starts another.
_IN_TABLE_GATE_CHILD = False


def _table_gate_in_child(suite: Suite, conninfo: str, schema: str, table: str, docs_dir: Path, run_label: str, *,
                         suite_parameters: Mapping[str, Any] | None, unexpected_sample: int) -> GateResult:
    """The table gate in a fresh interpreter, for a process whose GX came up without SQLAlchemy.

    A pandas gate (or the helpers) imported GX first, outside Airflow, with SQLAlchemy
    hidden, and GX cannot take it in afterwards. The child imports GX with it, reloads the
    suite file (refused if its SHA-256 is no longer the one loaded here) and sends the
    result back. It costs a second GX import (seconds); load the suite, or import
    sqlalchemy, before the first gate of the process to keep the gate in process.
    """
    if _IN_TABLE_GATE_CHILD:
        raise GxWithoutSql("the table gate needs SQLAlchemy, which Great Expectations cannot import here")
    logging.getLogger(__name__).warning(
        "GX gate %r: GX was imported in this process without SQLAlchemy; running the table gate "
        "in a child process (import sqlalchemy, or load_suite(..., for_table_gate=True), before the first gate to avoid it)",
        suite.name)
    request = {"suite_path": str(suite.path), "suite_sha256": suite.sha256, "conninfo": conninfo, "schema": schema,
               "table": table, "docs_dir": str(docs_dir), "run_label": run_label,
               "suite_parameters": dict(suite_parameters or {}), "unexpected_sample": unexpected_sample}
    # The request (conninfo and all) goes through a pipe: nothing secret on a command line.
    done = subprocess.run([sys.executable, "-m", "flowgate.common.gx_gate"], input=pickle.dumps(request),
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise TableGateError(f"GX gate {suite.name!r}: its child process exited {done.returncode}: "
                             f"{done.stderr.decode(errors='replace').strip()[-2000:]}")
    reply = json.loads(done.stdout)
    if "error" in reply:
        error_type = {"SuiteFileError": SuiteFileError, "FileNotFoundError": FileNotFoundError,
                      "GxWithoutSql": GxWithoutSql}.get(reply["error"], TableGateError)
        raise error_type(f"{reply['message']}" if error_type is not TableGateError
                         else f"GX gate {suite.name!r} (in a child process): {reply['error']}: {reply['message']}")
    found = reply["result"]
    return GateResult(
        name=found["name"], success=found["success"], evaluated=found["evaluated"], failed=found["failed"],
        docs_index=Path(found["docs_index"]) if found["docs_index"] else None, statistics=found["statistics"],
        suite_file=found["suite_file"], suite_sha256=found["suite_sha256"],
    )


def _serve_table_gate_request() -> int:
    """The child's side: one pickled request on stdin, one JSON reply on stdout."""
    from flowgate.common import gx_gate  # the importable module, not this __main__ copy of it

    gx_gate._IN_TABLE_GATE_CHILD = True
    request = pickle.loads(sys.stdin.buffer.read())  # from our own parent process, through a pipe
    reply_to, sys.stdout = sys.stdout, sys.stderr  # whatever else prints, the reply is all stdout holds
    try:
        suite = gx_gate.load_suite(Path(request.pop("suite_path")), for_table_gate=True)
        if suite.sha256 != request.pop("suite_sha256"):
            raise SuiteFileError(f"{suite.path} changed after it was loaded: not running another version")
        result = gx_gate.run_table_gate(suite, **request)
        reply: dict = {"result": result.to_dict()}
    except Exception as error:  # noqa: BLE001 - every error goes back to the parent, which raises it
        reply = {"error": type(error).__name__, "message": str(error)}
    reply_to.write(json.dumps(reply))
    return 0


def _validate(context, name: str, batch, expectations: Sequence[Expectation], site_dir: Path, run_label: str, *,
              batch_parameters: dict | None, suite: Suite | None, suite_parameters: Mapping[str, Any] | None,
              unexpected_sample: int, started: float, statistics: dict) -> GateResult:
    """Run one checkpoint over ``batch`` and keep its verdict beside its Data Docs."""
    checkpoint = _build_checkpoint(context, name, batch, expectations, unexpected_sample)
    checkpoint_result = checkpoint.run(
        batch_parameters=batch_parameters,
        expectation_parameters=dict(suite_parameters) if suite_parameters else None,
        run_id=_run_id(run_label),
    )
    (validation,) = checkpoint_result.run_results.values()
    statistics.setdefault("rows", _observed_rows(validation))
    if suite_parameters:
        statistics["suite_parameters"] = dict(suite_parameters)

    result = GateResult(
        name=name,
        success=bool(checkpoint_result.success),
        evaluated=int(validation.statistics["evaluated_expectations"]),
        failed=failed_expectations(validation, unexpected_sample),
        docs_index=_docs_index(site_dir),
        statistics=_json_safe({
            **validation.statistics,
            **statistics,
            "run_label": run_label,
            "seconds": round(time.perf_counter() - started, 3),
        }),
        suite_file=suite.file if suite else None,
        suite_sha256=suite.sha256 if suite else None,
    )
    _write_result_file(site_dir, result)
    return result


def _observed_rows(validation) -> int | None:
    """The table's row count, as GX saw it (no query of our own over a big table)."""
    for expectation_result in validation.results:
        found = expectation_result.result or {}
        if expectation_result.expectation_config.type.startswith("expect_table_row_count"):
            if isinstance(found.get("observed_value"), int):
                return found["observed_value"]
        if isinstance(found.get("element_count"), int):
            return found["element_count"]
    return None


def _postgres_url(conninfo: str) -> str:
    """A SQLAlchemy URL naming the server, for GX's datasource config and its SQL dialect.

    Only a label: the connections come from :func:`_connect_with`, which hands libpq the
    conninfo itself (sslmode, passfile, several hosts: all as written). So the password
    is in no URL GX keeps, logs or template-substitutes (GX reads ``$VAR`` in a URL as a
    config variable). GX insists on a user and host; libpq's defaults stand in for them.
    """
    from psycopg2.extensions import parse_dsn
    from sqlalchemy.engine import URL

    params = parse_dsn(conninfo)
    host = params.get("host", "").split(",")[0]
    port = params.get("port", "").split(",")[0]
    return URL.create(
        "postgresql+psycopg2",
        username=params.get("user") or "postgres",
        host=host if host and not host.startswith("/") else "localhost",  # a socket folder is no URL host
        port=int(port) if port.isdigit() else None,
        database=params.get("dbname"),
    ).render_as_string(hide_password=False)


def _connect_with(conninfo: str):
    """SQLAlchemy's ``creator``: a psycopg2 connection from the conninfo, named for the server."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    extra = {} if "application_name" in parse_dsn(conninfo) else {"application_name": APPLICATION_NAME}

    def connect():
        return psycopg2.connect(conninfo, **extra)

    return connect


def run_docs_dir(docs_dir: Path, run_label: str) -> Path:
    """The folder that holds one run's Data Docs: one per label, so runs never collide."""
    slug = run_slug(run_label)
    if not slug:
        raise ValueError(f"run_label {run_label!r} gives no usable folder name")
    return Path(docs_dir) / slug


# Optional integrations Great Expectations probes for when it is imported (its
# ``great_expectations.compatibility`` modules: ``try: import pyspark ...``). A pandas
# gate validates frames and writes Data Docs to local files: it uses none of them, yet
# importing those that are installed here (Spark, Snowflake, AWS, SQLAlchemy, ...) is a
# quarter of GX's import time. The table gate needs SQLAlchemy alone: ``_gx(sql=True)``
# imports it first, and an imported module is never hidden. (Namespace packages, which a
# .pth file may create at start-up, are named by their subpackages.)
UNUSED_INTEGRATIONS = (
    "sqlalchemy", "snowflake.connector", "snowflake.sqlalchemy", "snowflake.snowpark", "pyspark", "py4j",
    "boto3", "botocore", "azure", "google.cloud", "trino", "pyodbc", "databricks", "sqlalchemy_bigquery",
)


def _gx(sql: bool = False):
    """Import Great Expectations on first use: quiet, and without the integrations it
    would load for nothing.

    ``sql=True`` (the table gate, and suites loaded for it) imports SQLAlchemy first, so that GX, if
    this call is the one that imports it, keeps its SQL datasources: GX binds SQLAlchemy
    (or its absence) into dozens of modules as they load, so a process whose GX was
    imported without it cannot get it back (a table gate then runs in a child process,
    see :func:`_table_gate_in_child`). Airflow's task
    processes have SQLAlchemy loaded already (``airflow.sdk`` imports it), so there GX
    always has it; this matters for scripts, benches and tests.

    Its INFO logging is held back only when nobody configured the ``great_expectations``
    logger: set its level to see everything again.
    """
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    if "great_expectations" not in sys.modules:
        if sql:
            with contextlib.suppress(ImportError):  # not installed: GX then has no SQL datasources
                import sqlalchemy  # noqa: F401 - imported modules are not hidden
        with _hidden_while_importing(UNUSED_INTEGRATIONS):
            import great_expectations  # noqa: F401
    import great_expectations

    return great_expectations


class GxWithoutSql(RuntimeError):
    """Great Expectations has no SQL support here (SQLAlchemy is not installed)."""


def _has_sql() -> bool:
    """Whether this process's GX came up with SQLAlchemy, i.e. has its SQL datasources."""
    from great_expectations.compatibility import sqlalchemy as compat
    from great_expectations.compatibility.not_imported import NotImported

    return not isinstance(compat.sqlalchemy, NotImported)


@contextmanager
def _hidden_while_importing(modules: Sequence[str]):
    """Make ``import m`` fail (ImportError, as if not installed) for each module of
    ``modules`` not imported yet, until the block ends; then they import normally again.

    GX then records them as missing (Spark and cloud datasources, and SQL ones unless
    SQLAlchemy was imported first, are unavailable to a process whose GX was imported
    here). A module already imported is left alone: it costs nothing more and GX may use it. The hiding is
    process-wide while it lasts: a thread importing one of these meanwhile fails too.
    """
    hidden = [m for m in modules if m not in sys.modules]
    for module in hidden:
        sys.modules[module] = None  # the import system's own "not importable" marker
    try:
        yield
    finally:
        for module in hidden:
            if sys.modules.get(module, False) is None:
                del sys.modules[module]


def _site_config(site_dir: Path) -> dict:
    """A local Data Docs site rooted at ``site_dir``; no tutorial buttons, auditors read it."""
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(site_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }


def _ephemeral_context(site_dir: Path):
    """An in-memory GX context whose only Data Docs site is ``site_dir``.

    The stock ephemeral context would also build a default site in a random temp folder;
    configuring the stores and sites explicitly avoids that, and turns analytics and
    progress bars off.
    """
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites={SITE_NAME: _site_config(site_dir)},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _build_checkpoint(context, name: str, batch, expectations: Sequence[Expectation], unexpected_sample: int):
    """Batch definition → suite → validation definition → checkpoint + docs."""
    gx = _gx()

    # Copies: GX binds an expectation to the suite it joins, and callers reuse their lists.
    suite = context.suites.add(
        gx.ExpectationSuite(name=name, expectations=[copy.copy(e) for e in expectations])
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )
    return context.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=[validation],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[SITE_NAME])],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": unexpected_sample},
        )
    )


def _run_id(run_label: str):
    """GX's run id: the label names the run in the docs, the time tells re-runs apart.

    The path-safe form, because GX makes it a folder of the site (a run id holds ``:`` and
    ``+``); the exact label is kept in ``statistics`` and ``gate_result.json``.
    """
    _gx()
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=run_slug(run_label), run_time=_dt.datetime.now(_dt.timezone.utc))


def _docs_index(site_dir: Path) -> Path | None:
    index = site_dir / "index.html"
    return index if index.is_file() else None


def _write_result_file(site_dir: Path, result: GateResult) -> None:
    """Keep the verdict as JSON beside the HTML: machines (and diffs) read this one."""
    site_dir.mkdir(parents=True, exist_ok=True)
    (site_dir / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True))


# --------------------------------------------------------------------------- failures


def failed_expectations(validation, unexpected_sample: int = UNEXPECTED_SAMPLE) -> list[dict]:
    """One JSON-safe dict per failed expectation of a GX suite validation result."""
    return [_failure(r, unexpected_sample) for r in validation.results if not r.success]


def _failure(expectation_result, unexpected_sample: int) -> dict:
    config = expectation_result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    found = expectation_result.result or {}
    failure: dict[str, Any] = {
        "expectation": config.type,
        "column": kwargs.get("column"),
        "kwargs": kwargs,
    }
    for key in ("observed_value", "element_count", "unexpected_count", "unexpected_percent"):
        if key in found:
            failure[key] = found[key]
    values = _unexpected_values(found)[:unexpected_sample]
    if values:
        failure["unexpected_values"] = values
    error = _error_message(expectation_result.exception_info)
    if error:
        failure["error"] = error
    return _json_safe(failure)


def _unexpected_values(found: dict) -> list:
    """Distinct offending values (GX repeats duplicates in its partial list)."""
    if found.get("partial_unexpected_counts"):
        return [entry["value"] for entry in found["partial_unexpected_counts"]]
    return list(found.get("partial_unexpected_list") or [])


def _error_message(exception_info) -> str | None:
    """GX reports errors either flat or keyed by metric; either way, keep the messages."""
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    messages = [str(i.get("exception_message")) for i in infos if isinstance(i, dict) and i.get("raised_exception")]
    return "; ".join(dict.fromkeys(messages)) or None


def _json_safe(value: Any) -> Any:
    """Plain JSON values: NaN/NA → None, numpy → Python, Decimal → str, dates → ISO."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return str(value)  # money stays exact
    if isinstance(value, (_dt.date, _dt.time)):
        return None if _is_missing(value) else value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if _is_missing(value):
        return None
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _json_safe(value.tolist())
    return str(value)


def _is_missing(value: Any) -> bool:
    """pandas' NA, NaT and friends, without importing pandas for plain values."""
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- helpers


def not_null(columns: Iterable[str]) -> list[Expectation]:
    """Every value present in each column (keys, amounts, dates)."""
    gxe = _gx().expectations

    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in _columns(columns)]


def unique(columns: Iterable[str]) -> list[Expectation]:
    """Each column on its own holds no duplicates (ids). Nulls are ignored: pair with not_null."""
    gxe = _gx().expectations

    return [gxe.ExpectColumnValuesToBeUnique(column=c) for c in _columns(columns)]


def unique_together(columns: Iterable[str]) -> list[Expectation]:
    """The columns together form a key (e.g. account + business date)."""
    gxe = _gx().expectations

    return [gxe.ExpectCompoundColumnsToBeUnique(column_list=_columns(columns))]


def in_set(column: str, values: Iterable) -> list[Expectation]:
    """A closed domain (currencies, statuses). Nulls are ignored: pair with not_null."""
    gxe = _gx().expectations

    return [gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values))]


def between_dates(column: str, start: _dt.date, end: _dt.date, *, as_timestamps: bool = False) -> list[Expectation]:
    """Every date within [start, end], inclusive: rows belong to the data interval.

    By default the column must hold ``datetime.date`` values, as psycopg returns for a
    DATE column. GX compares those one by one in Python (seconds per million rows), and
    as-is: a datetime64 or string column makes the expectation error (and so fail);
    convert first, e.g. ``pd.to_datetime(frame[c]).dt.date``.

    ``as_timestamps=True`` is for big frames: the column holds the dates as
    ``datetime64[ns]`` at midnight (``pd.to_datetime(frame[c])``), the bounds become
    midnight timestamps, and GX compares the whole column at once, as fast as numbers.
    A time of day other than midnight on ``end`` falls outside the interval.
    """
    gxe = _gx().expectations

    if start > end:
        raise ValueError(f"between_dates({column!r}): start {start} is after end {end}")
    if as_timestamps:
        start, end = (_dt.datetime.combine(d, _dt.time()) for d in (start, end))
    return [gxe.ExpectColumnValuesToBeBetween(column=column, min_value=start, max_value=end)]


def has_rows(minimum: int = 1, maximum: int | None = None) -> list[Expectation]:
    """The frame is not empty (or within bounds): every column check passes on zero rows."""
    gxe = _gx().expectations

    return [gxe.ExpectTableRowCountToBeBetween(min_value=minimum, max_value=maximum)]


def columns_are(columns: Iterable[str]) -> list[Expectation]:
    """Exactly these columns, in any order: the schema check for files we receive."""
    gxe = _gx().expectations

    return [gxe.ExpectTableColumnsToMatchSet(column_set=_columns(columns), exact_match=True)]


def _columns(columns: Iterable[str]) -> list[str]:
    """Accept one name or many; a bare string is one column, not its characters."""
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names:
        raise ValueError("expected at least one column")
    return names


if __name__ == "__main__":  # the table gate's child process (_table_gate_in_child)
    sys.exit(_serve_table_gate_request())
