"""What a published business date looks like, for people: totals and where the evidence is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import psycopg

from flowgate.finance.pipeline import DATASET


@dataclass(frozen=True)
class PublishedDay:
    business_date: date
    gl_accounts: int
    postings: int
    debit_total: Decimal
    credit_total: Decimal
    run_id: str
    run_type: str
    output_checksum: str
    data_docs: str
    reconciliation: str

    def lines(self) -> list[str]:
        return [
            f"{self.business_date}: {self.postings:,} postings over {self.gl_accounts} GL account/currency pairs, "
            f"debits {self.debit_total:,} = credits {self.credit_total:,}",
            f"  run {self.run_id} ({self.run_type}), checksum {self.output_checksum}",
            f"  reconciliation: {self.reconciliation}",
            f"  Data Docs: {self.data_docs}",
        ]


def published_day(mart_dsn: str, business_date: date) -> PublishedDay | None:
    """The latest publish of the date, or None if it was never published."""
    with psycopg.connect(mart_dsn) as conn:
        audit = conn.execute(
            "select run_id, run_type, output_checksum, gate_results -> 'expectations' ->> 'data_docs', "
            "gate_results -> 'reconciliation' ->> 'summary' from audit.publish_log "
            "where dataset = %s and business_date = %s order by id desc limit 1", (DATASET, business_date)).fetchone()
        if audit is None:
            return None
        totals = conn.execute(
            "select count(*), sum(posting_count), sum(debit_total), sum(credit_total) "
            "from reporting.daily_trial_balance where business_date = %s", (business_date,)).fetchone()
    return PublishedDay(business_date, totals[0], int(totals[1]), totals[2], totals[3], audit[0], audit[1],
                        audit[2], audit[3], audit[4])
