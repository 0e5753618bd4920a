"""Quarantine: the refused file, kept encrypted, and a report that holds no data.

The file goes to the lake's quarantine area (``s3://flowgate-lake/partner/quarantine/
<partner>/<week>/<run>/``) sealed with the partner's AES key (it holds the very values the
gate refused, PII included), beside ``report.json``. The same report is kept in the run's
evidence folder. The report says which checks failed, with counts and row numbers; it
never holds a value of the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flowgate.common.evidence import run_slug
from flowgate.common.gates import GateRejected
from flowgate.partner import crypto

LAKE_BUCKET = "flowgate-lake"
QUARANTINE_PREFIX = "partner/quarantine"
REPORT_FILE = "quarantine_report.json"


class FileQuarantined(GateRejected):
    """The file broke its contract (or the gate): nothing of it was published."""


@dataclass(frozen=True)
class QuarantineReport:
    partner: str
    file_name: str
    week: str
    sha256: str
    size_bytes: int
    reason: str
    detail: str
    checks: list[dict]
    run_id: str
    rows_received: int | None = None
    contract_sha256: str | None = None

    def to_dict(self) -> dict:
        return {**self.__dict__, "quarantined_at": datetime.now(UTC).isoformat()}


def quarantine_prefix(partner: str, week: str, run_id: str) -> str:
    return f"{QUARANTINE_PREFIX}/{partner}/{week}/{run_slug(run_id)}"


def quarantine_file(s3_client, report: QuarantineReport, raw_file: Path | None, keys: crypto.PartnerKeys,
                    evidence: Path, workdir: Path) -> str:
    """Store the sealed file and the report; returns the report's S3 URI."""
    prefix = quarantine_prefix(report.partner, report.week, report.run_id)
    body = json.dumps(report.to_dict(), indent=2, sort_keys=True)
    evidence.mkdir(parents=True, exist_ok=True)
    (evidence / REPORT_FILE).write_text(body)
    if raw_file is not None:
        sealed = workdir / f"{report.file_name}.sealed"
        label = f"{prefix}/{report.file_name}"
        try:
            with raw_file.open("rb") as source, sealed.open("wb") as out:
                for frame in crypto.encrypt_file(keys.aes_key, source, label):
                    out.write(frame)
            s3_client.upload_file(str(sealed), LAKE_BUCKET, f"{label}.sealed",
                                  ExtraArgs={"Metadata": {"sha256": report.sha256}})
        finally:
            sealed.unlink(missing_ok=True)
    s3_client.put_object(Bucket=LAKE_BUCKET, Key=f"{prefix}/report.json", Body=body.encode(),
                         ContentType="application/json")
    return f"s3://{LAKE_BUCKET}/{prefix}/report.json"


def sealed_file_key(report_uri: str, file_name: str) -> str:
    prefix = report_uri.removeprefix(f"s3://{LAKE_BUCKET}/").rsplit("/", 1)[0]
    return f"{prefix}/{file_name}.sealed"


def restore_file(s3_client, report_uri: str, file_name: str, keys: crypto.PartnerKeys, target: Path) -> Path:
    """Decrypt a quarantined file for an operator's look (``flowgate partner unquarantine``)."""
    key = sealed_file_key(report_uri, file_name)
    body = s3_client.get_object(Bucket=LAKE_BUCKET, Key=key)["Body"]
    with target.open("wb") as out:
        for chunk in crypto.decrypt_file(keys.aes_key, body, key.removesuffix(".sealed")):
            out.write(chunk)
    return target
