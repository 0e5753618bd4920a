"""The staged postings as the GX gate checks them, loaded by a child process.

The gate's task process spends seconds importing Great Expectations (pure Python, one
core, the GIL held throughout). Loading a million staged rows meanwhile on a thread of
the same process fights that import for the GIL; a child process loads them on the
other core instead and hands them over as an Arrow IPC stream in a file, which the parent maps
and reads without parsing.

    python -m flowgate.finance.staged_rows TARGET.arrow   (DSN and schema from the environment)

The DSN travels in the environment, never argv: a command line is visible to every user
of the machine.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DSN_ENV = "FLOWGATE_STAGED_ROWS_DSN"
SCHEMA_ENV = "FLOWGATE_STAGED_ROWS_SCHEMA"
LOAD_TIMEOUT_S = 600


class StagedRowsLoadFailed(RuntimeError):
    """The child could not read the staged postings (its stderr says why)."""


@contextmanager
def loading_in_child(mart_dsn: str, stage_schema: str) -> Iterator:
    """Start loading the staged postings in a child process; the body runs meanwhile.
    Yields a function that waits for the child and returns the rows as an Arrow table."""
    import pyarrow as pa

    with tempfile.TemporaryDirectory(prefix="flowgate-staged-rows-") as tmp:  # 0700, removed after
        target = Path(tmp) / "postings.arrow"
        child = subprocess.Popen(
            [sys.executable, "-m", __name__, str(target)],
            env={**os.environ, DSN_ENV: mart_dsn, SCHEMA_ENV: stage_schema},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def rows() -> pa.Table:
            _, stderr = child.communicate(timeout=LOAD_TIMEOUT_S)
            if child.returncode != 0:
                raise StagedRowsLoadFailed(
                    f"loading the staged postings of {stage_schema} failed (exit {child.returncode}): "
                    f"{stderr.decode(errors='replace').strip()[-2000:]}")
            # read_all() copies out of the map, so the file can go with the folder.
            with pa.memory_map(str(target)) as source:
                return pa.ipc.open_stream(source).read_all()

        try:
            yield rows
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def staged_postings_table(mart_dsn: str, stage_schema: str):
    """The staged postings as an Arrow table, streamed out of PostgreSQL as CSV."""
    import psycopg
    from psycopg import sql

    from flowgate.finance.expectations import STAGED_POSTINGS_QUERY

    query = sql.SQL(STAGED_POSTINGS_QUERY).format(stage=sql.Identifier(stage_schema))
    buffer = io.BytesIO()
    with psycopg.connect(mart_dsn) as conn, \
            conn.cursor().copy(sql.SQL("copy ({}) to stdout with (format csv, header)").format(query)) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    return parse_staged_postings(buffer)


def parse_staged_postings(csv_file):
    """PostgreSQL's CSV of the staged postings query, typed as the gate wants it, by
    pyarrow (multi-threaded, typed as it parses: several times faster than
    ``pandas.read_csv``). An unquoted empty field is NULL; a quoted one an empty string."""
    import pyarrow.csv as pacsv

    options = pacsv.ConvertOptions(column_types=_staged_postings_types(), strings_can_be_null=True,
                                   quoted_strings_can_be_null=False)
    return pacsv.read_csv(csv_file, convert_options=options)


def _staged_postings_types() -> dict:
    """Compact types GX checks with whole-column operations: int64 ids and cents;
    dictionary-encoded (pandas categorical) text, amounts included, as they only need to be
    present and money never becomes a float; the value date as a timestamp (GX compares
    ``datetime64[ns]`` at once, but ``datetime.date`` objects one by one)."""
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    return {
        "posting_id": pa.int64(), "transaction_id": pa.int64(), "account_id": pa.int64(),
        "gl_code": text, "currency": text, "side": text, "amount": text, "status": text,
        "value_date": pa.timestamp("ns"), "transaction_imbalance_cents": pa.int64(),
    }


def write_arrow_file(table, target: Path) -> None:
    """The IPC *stream* format: pyarrow's CSV reader gives each chunk its own dictionary,
    which the file format refuses and the stream format carries as replacements."""
    import pyarrow as pa

    partial = target.with_suffix(".partial")
    with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    partial.replace(target)  # the parent never maps a half-written file


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m {__name__} TARGET.arrow  ({DSN_ENV}, {SCHEMA_ENV} set)", file=sys.stderr)
        return 2
    import psycopg

    try:
        table = staged_postings_table(os.environ[DSN_ENV], os.environ[SCHEMA_ENV])
    except psycopg.Error as err:  # one line for the parent's error, not a traceback
        print(f"{type(err).__name__}: {err}".replace("\n", " "), file=sys.stderr)
        return 1
    write_arrow_file(table, Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
