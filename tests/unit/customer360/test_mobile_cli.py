"""``flowgate mobile``: each command answers --help, and its release list is the app's."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flowgate.cli import app
from flowgate.customer360.mobile_app import APP_VERSIONS
from flowgate.customer360.mobile_cli import RELEASES


@pytest.mark.parametrize("command", [[], ["produce"], ["ingest"], ["drift"]])
def test_every_mobile_command_has_help(command):
    result = CliRunner().invoke(app, ["mobile", *command, "--help"])
    assert result.exit_code == 0, result.output


def test_the_cli_offers_the_apps_releases():
    assert RELEASES == APP_VERSIONS


def test_an_unknown_release_is_refused_before_anything_is_sent():
    result = CliRunner().invoke(app, ["mobile", "produce", "--release", "4.0.0", "--start", "2026-11-30T09:00",
                                      "--bootstrap", "127.0.0.1:1"])
    assert result.exit_code != 0 and "--release" in result.output
