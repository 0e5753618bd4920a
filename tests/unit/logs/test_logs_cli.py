"""``flowgate logs``: every command documents itself; generate writes valid lines with
the incidents asked for, and refuses what it cannot do."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from flowgate.cli import app
from flowgate.logs.record import parse_line

runner = CliRunner()


@pytest.mark.parametrize("args", [["logs"], ["logs", "generate"], ["logs", "forward"]])
def test_help(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_generate_to_stdout_writes_valid_lines_with_the_incident():
    result = runner.invoke(app, ["logs", "generate", "--stdout", "--rate", "0", "--count", "3000", "--seed", "4",
                                 "--incident", "new_exception:ledger:0:100", "--malformed", "not_json"])
    assert result.exit_code == 0, result.output
    lines = result.stdout_bytes.splitlines()
    assert len(lines) == 3001
    records = [parse_line(line) for line in lines[:-1]]
    assert any(r.attributes.get("incident.id") == "new_exception-ledger-0" for r in records)
    with pytest.raises(ValueError):
        json.loads(lines[-1])


@pytest.mark.parametrize("args", [
    ["--incident", "meltdown:ledger:0:1"],
    ["--incident", "error_burst:no-such-service:0:1"],
    ["--rate", "0"],  # as fast as possible needs a count
])
def test_generate_refuses_what_it_cannot_do(args):
    result = runner.invoke(app, ["logs", "generate", "--stdout", *args])
    assert result.exit_code == 2, result.output
