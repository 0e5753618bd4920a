"""The Great Expectations gate: validate a pandas DataFrame, keep Data Docs, say yes or no.

The finance flow reads its staged rows from PostgreSQL into pandas, the partner flow reads
its CSV files; both hand the frame to :func:`run_gate` with a list of GX 1.x expectation
objects (build them with the helpers below, or with ``gx.expectations`` directly).

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
- **Cheap to import.** Great Expectations takes seconds to import (it pulls in scipy and
  altair), so it is imported inside the functions only: DAG files that import this
  module parse fast. And when it is imported, the optional integrations it probes for
  (:data:`UNUSED_INTEGRATIONS`: Spark, Snowflake, AWS, SQLAlchemy, ...) are hidden from
  it: a gate needs none of them, and they were a quarter of its import time.
- **Quiet.** Analytics and progress bars off in the context config, and GX's own INFO
  chatter (dozens of lines on import) held back unless someone set its logger's level,
  so task logs hold the verdict.

Unexpected values end up in the Data Docs and in ``failed``. Gate on tokenized or
non-sensitive columns, or pass ``unexpected_sample=0`` to keep values out of the evidence
(counts are still reported).
"""

from __future__ import annotations

import copy
import datetime as _dt
import decimal
import json
import logging
import math
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
        if self.docs_index is not None:
            lines.append(f"  Data Docs: {self.docs_index}")
        return "\n".join(lines)

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


# --------------------------------------------------------------------------- running


def run_gate(
    name: str,
    frame: pd.DataFrame,
    expectations: Sequence[Expectation],
    docs_dir: Path,
    run_label: str,
    *,
    unexpected_sample: int = UNEXPECTED_SAMPLE,
) -> GateResult:
    """Validate ``frame`` against ``expectations`` and write this run's Data Docs.

    ``name`` names the suite, checkpoint and datasource (it is what auditors see in the
    docs). Data Docs go to ``docs_dir/<run_label>/`` so earlier runs keep theirs. The
    caller decides what a failure means: usually ``run_gate(...).raise_if_failed()``.
    ``unexpected_sample`` caps how many offending values are shown (0 shows none).
    """
    if not expectations:
        raise ValueError(f"GX gate {name!r} has no expectations: it would pass anything")
    site_dir = run_docs_dir(docs_dir, run_label)
    started = time.perf_counter()

    context = _ephemeral_context(site_dir)
    checkpoint = _build_checkpoint(context, name, expectations, unexpected_sample)
    checkpoint_result = checkpoint.run(
        batch_parameters={"dataframe": frame}, run_id=_run_id(run_label)
    )
    (validation,) = checkpoint_result.run_results.values()

    result = GateResult(
        name=name,
        success=bool(checkpoint_result.success),
        evaluated=int(validation.statistics["evaluated_expectations"]),
        failed=failed_expectations(validation, unexpected_sample),
        docs_index=_docs_index(site_dir),
        statistics=_json_safe({
            **validation.statistics,
            "rows": len(frame),
            "run_label": run_label,
            "seconds": round(time.perf_counter() - started, 3),
        }),
    )
    _write_result_file(site_dir, result)
    return result


def run_docs_dir(docs_dir: Path, run_label: str) -> Path:
    """The folder that holds one run's Data Docs: one per label, so runs never collide."""
    slug = run_slug(run_label)
    if not slug:
        raise ValueError(f"run_label {run_label!r} gives no usable folder name")
    return Path(docs_dir) / slug


# Optional integrations Great Expectations probes for when it is imported (its
# ``great_expectations.compatibility`` modules: ``try: import pyspark ...``). A gate
# validates pandas frames and writes Data Docs to local files: it uses none of them, yet
# importing those that are installed here (Spark, Snowflake, AWS, SQLAlchemy, ...) is a
# quarter of GX's import time. (Namespace packages, which a .pth file may create at
# start-up, are named by their subpackages.)
UNUSED_INTEGRATIONS = (
    "sqlalchemy", "snowflake.connector", "snowflake.sqlalchemy", "snowflake.snowpark", "pyspark", "py4j",
    "boto3", "botocore", "azure", "google.cloud", "trino", "pyodbc", "databricks", "sqlalchemy_bigquery",
)


def _gx():
    """Import Great Expectations on first use: quiet, and without the integrations it
    would load for nothing.

    Its INFO logging is held back only when nobody configured the ``great_expectations``
    logger: set its level to see everything again.
    """
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    if "great_expectations" not in sys.modules:
        with _hidden_while_importing(UNUSED_INTEGRATIONS):
            import great_expectations  # noqa: F401
    import great_expectations

    return great_expectations


@contextmanager
def _hidden_while_importing(modules: Sequence[str]):
    """Make ``import m`` fail (ImportError, as if not installed) for each module of
    ``modules`` not imported yet, until the block ends; then they import normally again.

    GX then records them as missing (SQL, Spark and cloud datasources are unavailable to
    a process whose GX was imported here: the gates need none of them). A module already
    imported is left alone: it costs nothing more and GX may use it. The hiding is
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


def _build_checkpoint(context, name: str, expectations: Sequence[Expectation], unexpected_sample: int):
    """Datasource → whole-frame batch → suite → validation definition → checkpoint + docs."""
    gx = _gx()

    batch = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(ASSET_NAME)
        .add_batch_definition_whole_dataframe("whole_frame")
    )
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
