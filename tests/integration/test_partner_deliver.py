"""Delivering partner files to the real SFTP server of the stack (asyncssh, key auth,
pinned host key): what arrives is byte-identical, never left as .part, and a second file
under the same name is refused unless it is a deliberate redelivery."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from flowgate.devstack import services
from flowgate.devstack.env import connections
from flowgate.devstack.partner_keys import partner_signing_material
from flowgate.partner import pgp
from flowgate.partner.contract import IsoWeek, load_contract
from flowgate.partner.deliver import AlreadyDelivered, DeliveryError, SftpTarget, deliver, listing, read_back, remove
from flowgate.partner.files import Signing, write_partner_file

pytestmark = pytest.mark.integration

ACME, GLOBEX = load_contract("acme"), load_contract("globex")
# Weeks no ingest test uses: these files are the simulator's, removed again afterwards.
WEEKS = {name: IsoWeek(2031, n) for n, name in enumerate(("read_back", "redeliver", "cli", "host_key"), start=10)}


@pytest.fixture
def delivered(running_stack):
    """Remote paths a test delivered; each is removed afterwards."""
    paths: list[str] = []
    yield paths
    for path in paths:
        remove(running_stack, path)


def _make(cfg, contract, week, folder: Path, seed: int = 0, rows: int = 500):
    signing = None
    if contract.format.pgp:
        private, public = partner_signing_material(cfg, contract.partner)
        signing = Signing(recipient_public_key=public, signer_private_key=private)
    return write_partner_file(contract, week, folder / f"{seed}" / contract.file_name(week), rows=rows, seed=seed,
                              signing=signing)


def _on_server(cfg, remote_path: str) -> Path:
    """The file in the SFTP server's own folder (each account is chrooted to its own)."""
    return services.sftp_root(cfg) / services.PARTNER_ACCOUNT / remote_path.lstrip("/")


@pytest.mark.parametrize("contract", [ACME, GLOBEX], ids=lambda c: c.partner)
def test_a_delivered_file_reads_back_byte_identical_and_no_part_remains(running_stack, tmp_path, delivered,
                                                                       contract):
    week = WEEKS["read_back"]
    made = _make(running_stack, contract, week, tmp_path)

    result = deliver(running_stack, contract, week, made.path)
    delivered.append(result.remote_path)

    assert (result.remote_path, result.size, result.replaced) == (contract.remote_path(week), made.size, False)
    back = read_back(running_stack, result.remote_path, tmp_path / "back")
    assert back.read_bytes() == made.path.read_bytes()
    assert _on_server(running_stack, result.remote_path).read_bytes() == made.path.read_bytes()
    names = listing(running_stack, contract.delivery.folder)
    assert contract.file_name(week) in names
    assert not [n for n in names if n.endswith(".part")], names


def test_a_pgp_delivery_opens_with_the_keys_connection_the_platform_reads(running_stack, tmp_path, delivered):
    week = WEEKS["read_back"]
    made = _make(running_stack, GLOBEX, week, tmp_path, seed=3)
    delivered.append(deliver(running_stack, GLOBEX, week, made.path).remote_path)
    keys = connections(running_stack)[GLOBEX.keys_conn_id]["extra"]

    back = read_back(running_stack, GLOBEX.remote_path(week), tmp_path / "back.pgp")
    fingerprint = pgp.decrypt_and_verify(back, tmp_path / "plain.gz", keys["pgp_private_key"],
                                         keys["pgp_signer_public_key"], keys["pgp_signer_fingerprint"])

    assert fingerprint == keys["pgp_signer_fingerprint"]
    header = gzip.decompress((tmp_path / "plain.gz").read_bytes()).split(b"\n", 1)[0].decode()
    assert tuple(header.split(GLOBEX.format.delimiter)) == GLOBEX.header


def test_a_second_delivery_under_the_same_name_fails_clearly_unless_it_is_a_redelivery(running_stack, tmp_path,
                                                                                       delivered):
    week = WEEKS["redeliver"]
    first = _make(running_stack, ACME, week, tmp_path, seed=1)
    second = _make(running_stack, ACME, week, tmp_path, seed=2)
    delivered.append(deliver(running_stack, ACME, week, first.path).remote_path)

    with pytest.raises(AlreadyDelivered, match=r"already on the server.*--replace"):
        deliver(running_stack, ACME, week, second.path)

    on_server = _on_server(running_stack, ACME.remote_path(week))
    assert on_server.read_bytes() == first.path.read_bytes(), "the refused file changed what was there"
    assert not [n for n in listing(running_stack, ACME.delivery.folder) if n.endswith(".part")]

    redelivered = deliver(running_stack, ACME, week, second.path, replace=True)
    assert redelivered.replaced and on_server.read_bytes() == second.path.read_bytes()


def test_the_cli_generates_and_delivers_and_refuses_the_same_name_again(running_stack, delivered):
    week = WEEKS["cli"]
    delivered.append(GLOBEX.remote_path(week))
    flowgate = [str(Path(sys.executable).parent / "flowgate"), "partner", "deliver", "--partner", "globex",
                "--week", str(week), "--rows", "200", "--seed", "4"]

    first = subprocess.run(flowgate, capture_output=True, text=True, timeout=120)
    again = subprocess.run(flowgate, capture_output=True, text=True, timeout=120)
    replaced = subprocess.run([*flowgate, "--corrupt", "changed_content", "--replace"], capture_output=True,
                              text=True, timeout=120)

    assert first.returncode == 0, first.stderr
    assert f"delivered {GLOBEX.remote_path(week)}" in first.stdout
    assert again.returncode == 1 and "already on the server" in again.stderr
    assert replaced.returncode == 0 and f"replaced {GLOBEX.remote_path(week)}" in replaced.stdout, replaced.stderr


def test_a_server_whose_host_key_is_not_the_pinned_one_gets_nothing(running_stack, tmp_path):
    week = WEEKS["host_key"]
    made = _make(running_stack, ACME, week, tmp_path)
    pinned = SftpTarget.from_stack(running_stack)
    other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    impostor_pin = SftpTarget(pinned.host, pinned.port, pinned.login, pinned.key_file, " ".join(other_key[:2]))

    with pytest.raises(DeliveryError, match="Host key is not trusted"):
        deliver(impostor_pin, ACME, week, made.path)

    assert ACME.file_name(week) not in listing(running_stack, ACME.delivery.folder)
    with pytest.raises(DeliveryError, match="host key checking"):
        SftpTarget.from_connection({"host": "127.0.0.1", "login": "partner",
                                    "extra": {"key_file": pinned.key_file, "no_host_key_check": True}})
