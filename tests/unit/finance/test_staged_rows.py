"""The GX gate's staged rows, loaded by a child process and handed over as Arrow."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from flowgate.finance import staged_rows

CSV = (b"posting_id,transaction_id,account_id,gl_code,currency,side,amount,value_date,status,"
       b"transaction_imbalance_cents\n1,10,100,2000-DEPOSITS,EUR,debit,12.50,2026-06-30,booked,0\n")


def test_the_arrow_file_round_trips_the_typed_rows(tmp_path):
    table = staged_rows.parse_staged_postings(io.BytesIO(CSV))
    target = tmp_path / "postings.arrow"
    staged_rows.write_arrow_file(table, target)
    with pa.memory_map(str(target)) as source:
        assert pa.ipc.open_stream(source).read_all().equals(table)
    assert not target.with_suffix(".partial").exists()


def test_a_child_that_cannot_reach_the_database_fails_with_its_reason():
    unreachable = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2"
    with pytest.raises(staged_rows.StagedRowsLoadFailed, match=r"stage_x.*exit 1.*(refused|connect)"), \
            staged_rows.loading_in_child(unreachable, "stage_x") as rows:
        rows()


def test_the_child_refuses_a_call_without_a_target(capsys):
    assert staged_rows.main([]) == 2
    assert staged_rows.DSN_ENV in capsys.readouterr().err
