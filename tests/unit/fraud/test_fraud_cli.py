"""``flowgate fraud``: every command documents itself; train writes and promotes a model;
gateway refuses to run without the tokenizer's key and sends sealed events."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from flowgate.fraud import cli as fraud_cli
from flowgate.fraud import envelope
from flowgate.fraud import model as fm

runner = CliRunner()


@pytest.mark.parametrize("args", [[], ["train"], ["gateway"]])
def test_help(args):
    result = runner.invoke(fraud_cli.fraud_app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_train_saves_promotes_and_reports(tmp_path):
    result = runner.invoke(fraud_cli.fraud_app, ["train", "--transactions", "30000", "--fraud-rate", "0.03",
                                                 "--seed", "5", "--models-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for word in ("precision", "recall", "AUC", "promoted"):
        assert word in result.output
    model = fm.load_current_model(tmp_path)
    assert model.version in result.output
    assert model.training["seed"] == 5


def test_train_without_promote_leaves_no_current(tmp_path):
    result = runner.invoke(fraud_cli.fraud_app, ["train", "--transactions", "20000", "--fraud-rate", "0.03",
                                                 "--models-dir", str(tmp_path), "--no-promote"])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("fraud-*.json"))) == 1
    with pytest.raises(fm.NoModelError):
        fm.load_current_model(tmp_path)


def test_gateway_needs_the_tokenizer_public_key(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWGATE_TOKENIZER_PUBLIC_KEY", raising=False)
    monkeypatch.setenv("FLOWGATE_HOME", str(tmp_path / "home"))
    result = runner.invoke(fraud_cli.fraud_app, ["gateway", "--duration", "1"])
    assert result.exit_code == 2
    assert "public key" in result.output


def test_gateway_seals_sends_and_writes_the_truth(tmp_path, monkeypatch):
    private_path, public_path = envelope.generate_keypair(tmp_path / "keys")
    monkeypatch.setenv("FLOWGATE_TOKENIZER_PUBLIC_KEY", str(public_path))
    sent = {}

    def fake_produce(bootstrap, topic, events, rate_per_s, *, on_progress=None):
        sent.update(bootstrap=bootstrap, topic=topic, events=list(events), rate=rate_per_s)
        from flowgate.fraud.gateway import GatewayReport

        return GatewayReport(len(events), 0, 0.5, 0.5, rate_per_s, rate_per_s, 0.0)

    monkeypatch.setattr("flowgate.fraud.gateway.produce", fake_produce)
    truth = tmp_path / "truth.csv"
    result = runner.invoke(fraud_cli.fraud_app, ["gateway", "--rate", "200", "--duration", "2", "--seed", "1",
                                                 "--bootstrap", "127.0.0.1:1", "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    assert sent["topic"] == "payments.events" and sent["bootstrap"] == "127.0.0.1:1" and sent["rate"] == 200
    assert len(sent["events"]) == 400
    key, value = sent["events"][0]
    event = json.loads(value)
    assert key == event["transaction_id"]
    assert envelope.open_envelope(envelope.load_private_key(private_path), event["pan_envelope"]).isdigit()
    rows = list(csv.DictReader(truth.open()))
    assert [r["transaction_id"] for r in rows] == [k for k, _ in sent["events"]]
