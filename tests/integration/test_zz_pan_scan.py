"""Runs last (zz): no clear PAN anywhere the stack persisted bytes — Kafka segments,
Spark checkpoints and state, PostgreSQL's data files, logs, Airflow's logs and XCom
(in its database), secrets. The positive control proves the same scan finds a PAN."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from flowgate.fraud.pan import synthetic_pan

pytestmark = pytest.mark.integration


def scan(*paths: Path) -> subprocess.CompletedProcess:
    flowgate = Path(sys.executable).parent / "flowgate"
    return subprocess.run([str(flowgate), "scan-pan", *map(str, paths)], capture_output=True, text=True, timeout=900)


def test_positive_control_a_planted_pan_is_found(tmp_path):
    pan = synthetic_pan(random.Random())  # made now, never stored in the repo
    planted = tmp_path / "planted.bin"
    planted.write_bytes(bytes(range(256)) * 40 + f'{{"card": "{pan}"}}'.encode() + bytes(range(256)))
    result = scan(tmp_path)
    assert result.returncode == 1, result.stdout
    assert f"{pan[:6]}" in result.stdout and pan[-4:] in result.stdout and pan not in result.stdout
    assert "planted.bin" in result.stdout


def test_no_clear_pan_is_at_rest_anywhere_in_the_stack_state(running_stack):
    # The kafka and postgres data, checkpoints, logs and secrets all live in the state dir.
    result = scan(running_stack.state_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.startswith("clean")
