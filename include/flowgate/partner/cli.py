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


@partner_app.command()
def suite(
    write: bool = typer.Option(False, "--write", help="Rewrite the suite files from the contracts (then review the diff)."),
) -> None:
    """Check (or --write) that each partner's GX suite in expectations/ is the one its contract gives."""
    from flowgate.partner.contract import load_contract, partners
    from flowgate.partner.suite import suite_file, suite_text

    stale = []
    for partner in partners():
        contract = load_contract(partner)
        path, text = suite_file(contract), suite_text(contract)
        if path.is_file() and path.read_text() == text:
            typer.echo(f"  {path.name}: in step with {partner}.yaml")
        elif write:
            path.write_text(text)
            typer.echo(f"  {path.name}: written from {partner}.yaml")
        else:
            stale.append(path.name)
            typer.secho(f"  {path.name}: out of step with {partner}.yaml", fg="red")
    if stale:
        typer.echo("Run `flowgate partner suite --write` and review the change with the contract's.")
        raise typer.Exit(1)


@partner_app.command()
def ledger(
    partner: str = typer.Option(..., "--partner", help="The partner, as named by its contract."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many of the latest entries to show."),
) -> None:
    """Show the latest file-ledger entries of a partner: what each run did with which file."""
    import psycopg

    from flowgate.common.connections import postgres_dsn

    _load_env_file(_stack_config())
    with psycopg.connect(postgres_dsn("partner_staging")) as conn:
        rows = conn.execute(
            "select id, file_name, status, coalesce(reason, ''), left(sha256, 12), rows_received, rows_loaded, "
            "coalesce(requested_by, ''), run_id from partner.file_ledger where partner = %s order by id desc limit %s",
            (partner, limit)).fetchall()
    for row in reversed(rows):
        typer.echo("  " + "  ".join("-" if v is None else str(v) for v in row))
    if not rows:
        typer.echo(f"no ledger entries for {partner}")


@partner_app.command()
def unquarantine(
    partner: str = typer.Option(..., "--partner", help="The partner, as named by its contract."),
    ledger_id: int = typer.Option(..., "--ledger-id", help="The quarantined file's ledger entry (`flowgate partner ledger`)."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write the file as received (it holds PII)."),
) -> None:
    """Decrypt a quarantined file for an approved look. The file holds PII: delete it after."""
    import psycopg

    from flowgate.common.connections import postgres_dsn
    from flowgate.partner.contract import load_contract
    from flowgate.partner.crypto import load_keys
    from flowgate.partner.quarantine import restore_file

    cfg = _stack_config()
    _load_env_file(cfg)
    contract = load_contract(partner)
    with psycopg.connect(postgres_dsn("partner_staging")) as conn:
        row = conn.execute("select file_name, status, report_uri from partner.file_ledger where id = %s and partner = %s",
                           (ledger_id, partner)).fetchone()
    if row is None or row[1] != "quarantined" or not row[2]:
        typer.secho(f"error: ledger entry {ledger_id} of {partner} is not a quarantined file", fg="red", err=True)
        raise typer.Exit(1)
    from flowgate.common.connections import s3_client

    restore_file(s3_client("lake_s3"), row[2], row[0], load_keys(partner, contract.keys_conn_id), out)
    out.chmod(0o600)
    typer.echo(f"restored {row[0]} to {out} (mode 0600; it holds the partner's PII: delete it when done)")
