"""``flowgate partner``: act as a partner (deliver a week's file, good or broken) and make keys."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

partner_app = typer.Typer(help="Partner data (flow 5): simulate a partner's weekly SFTP delivery, make keys.",
                          no_args_is_help=True)


def _stack_config():
    from flowgate.devstack.config import StackConfig

    return StackConfig.from_env()


def _load_env_file(cfg) -> None:
    """The stack's .env into this process (values already set win), as ``flowgate`` does."""
    from dotenv import load_dotenv

    load_dotenv(cfg.env_file, override=False)


# partner.files.CORRUPTIONS, spelled out so that `flowgate --help` need not import numpy
# (tests/unit/partner/test_files.py keeps the two in step).
CORRUPTION_NAMES = (
    "extra_ssn_column", "renamed_header", "reordered_columns", "duplicate_header", "utf8_bom", "cp1252_bytes",
    "semicolon_delimiter", "quoted_newlines", "truncated_gzip", "empty_file", "header_only", "huge_field",
    "bad_signature", "trailer_mismatch", "changed_content",
)
LEGAL = ("quoted_newlines", "changed_content")
CORRUPT_HELP = ("Write a file of the bad-file corpus instead of a good one: "
                + ", ".join(f"{n} (legal: it must load)" if n in LEGAL else n for n in CORRUPTION_NAMES) + ".")


@partner_app.command()
def deliver(
    partner: str = typer.Option(..., "--partner", help="The partner, as named by its contract (acme, globex)."),
    week: str = typer.Option(..., "--week", help="The ISO week the file is for, e.g. 2026-W47."),
    rows: int = typer.Option(1000, "--rows", min=0, help="Data rows to generate."),
    seed: int = typer.Option(0, "--seed", help="Generator seed: the same seed gives the same rows (and, without OpenPGP, the same bytes)."),
    file: Path = typer.Option(None, "--file", exists=True, dir_okay=False, readable=True,
                              help="Deliver this file as it is instead of generating one."),
    corrupt: str = typer.Option(None, "--corrupt", help=CORRUPT_HELP),
    replace: bool = typer.Option(False, "--replace",
                                 help="Overwrite a file of the same name already on the server (a redelivery)."),
    keep: Path = typer.Option(None, "--keep", file_okay=False,
                              help="Write the generated file into this folder and keep it (default: a "
                                   "temporary folder, removed afterwards)."),
) -> None:
    """Put a partner's file for a week on the SFTP server, as the partner would.

    The file is generated from the contract (header, delimiter, trailer, gzip, OpenPGP
    encrypted to us and signed with the partner's key), uploaded as <name>.part and renamed.
    A name already on the server is refused unless --replace.
    """
    from flowgate.devstack.partner_keys import partner_signing_material
    from flowgate.partner.contract import IsoWeek, load_contract
    from flowgate.partner.deliver import DeliveryError, SftpTarget
    from flowgate.partner.deliver import deliver as put_on_sftp
    from flowgate.partner.files import CORRUPTIONS, Signing, applies, write_partner_file

    cfg = _stack_config()
    _load_env_file(cfg)
    try:
        contract = load_contract(partner)
    except (FileNotFoundError, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="--partner") from err
    try:
        iso_week = IsoWeek.parse(week)
    except ValueError as err:
        raise typer.BadParameter(f"{week!r} is not an ISO week ({err})", param_hint="--week") from err
    if file is not None and corrupt is not None:
        raise typer.BadParameter("--file delivers a file as it is: --corrupt cannot apply to it")
    if corrupt is not None and corrupt not in CORRUPTIONS:
        raise typer.BadParameter(f"unknown corruption {corrupt!r}; known: {', '.join(CORRUPTIONS)}")
    if corrupt is not None and not applies(corrupt, contract):
        raise typer.BadParameter(f"{corrupt} does not apply to {partner}'s files")

    with tempfile.TemporaryDirectory(prefix="flowgate-partner-") as tmp:
        if file is None:
            signing = None
            if contract.format.pgp:
                private, public = partner_signing_material(cfg, partner)
                signing = Signing(recipient_public_key=public, signer_private_key=private)
            folder = keep or Path(tmp)
            made = write_partner_file(contract, iso_week, folder / contract.file_name(iso_week), rows=rows, seed=seed,
                                      corruption=corrupt, signing=signing)
            file = made.path
            typer.echo(f"generated {made.path.name}: {made.rows:,} rows{f' ({corrupt})' if corrupt else ''}, "
                       f"{made.size:,} bytes, sha256 {made.sha256[:16]}...")
        try:
            delivered = put_on_sftp(SftpTarget.from_conn_id(), contract, iso_week, file, replace=replace)
        except DeliveryError as err:
            typer.secho(f"error: {err}", fg="red", err=True)
            raise typer.Exit(1) from err
    verb = "replaced" if delivered.replaced else "delivered"
    typer.echo(f"{verb} {delivered.remote_path} ({delivered.size:,} bytes)")


@partner_app.command("compose-env")
def compose_env() -> None:
    """Print fresh partner keys as docker/compose.env lines.

    Append them to docker/compose.env (replacing the dev-only placeholders). Armored
    OpenPGP keys are one line each, their line breaks written as \\n inside single quotes.
    The partner's private signing key is not printed: only the partner holds it.
    """
    from flowgate.devstack.config import StackConfig
    from flowgate.devstack.partner_keys import keys_connection
    from flowgate.partner.contract import partners

    with tempfile.TemporaryDirectory(prefix="flowgate-keys-") as tmp:
        scratch = StackConfig(root=Path(tmp), state_dir=Path(tmp) / "state", ports=_stack_config().ports)
        for partner in partners():
            extra = keys_connection(scratch, partner)["extra"]
            if "pgp_signer_public_key" in extra:
                typer.echo(f"note: PARTNER_{partner.upper()}_PGP_SIGNER_*: a throwaway signing key; put "
                           f"{partner}'s real public key and fingerprint there", err=True)
            for key, value in extra.items():
                name = f"PARTNER_{partner.upper()}_{key.upper()}"
                if key.startswith("pgp_") and "\n" in value:
                    typer.echo(f"{name}='" + value.strip().replace("\n", "\\n") + "'")
                else:
                    typer.echo(f"{name}={value}")
