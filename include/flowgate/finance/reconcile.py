"""Reconciliation to the cent: the staged postings against the core's control totals.

The core publishes, per GL account and currency, how many postings it booked that day
and their debit and credit sums. We recompute the same figures from what we extracted;
any difference, in either direction (a GL missing on one side counts too), stops the
publish and becomes the mismatch report an auditor reads.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from flowgate.finance.transform import TRIAL_BALANCE

# "actual" is the trial balance exactly as publish computes it (transform.TRIAL_BALANCE).
_RECONCILE_SQL = """
with actual as ({trial_balance})
select coalesce(e.gl_code, a.gl_code), coalesce(e.currency, a.currency),
       coalesce(e.posting_count, 0), coalesce(a.posting_count, 0),
       coalesce(e.debit_total, 0), coalesce(a.debit_total, 0),
       coalesce(e.credit_total, 0), coalesce(a.credit_total, 0)
from {stage}.control_totals e full outer join actual a
  on a.gl_code = e.gl_code and a.currency = e.currency
order by 1, 2
"""


@dataclass(frozen=True)
class ReconciliationLine:
    gl_code: str
    currency: str
    expected_count: int
    actual_count: int
    expected_debit: Decimal
    actual_debit: Decimal
    expected_credit: Decimal
    actual_credit: Decimal

    @property
    def matches(self) -> bool:
        return (self.expected_count, self.expected_debit, self.expected_credit) == (
            self.actual_count, self.actual_debit, self.actual_credit)

    def differences(self) -> dict[str, str]:
        return {
            "count_diff": str(self.actual_count - self.expected_count),
            "debit_diff": str(self.actual_debit - self.expected_debit),
            "credit_diff": str(self.actual_credit - self.expected_credit),
        }


@dataclass(frozen=True)
class Reconciliation:
    lines: tuple[ReconciliationLine, ...]

    @property
    def mismatches(self) -> list[ReconciliationLine]:
        return [line for line in self.lines if not line.matches]

    @property
    def success(self) -> bool:
        return bool(self.lines) and not self.mismatches

    def control_totals(self) -> dict:
        """What the core announced: kept in the audit log beside what we published."""
        return {
            "gl_accounts": len(self.lines),
            "posting_count": sum(line.expected_count for line in self.lines),
            "debit_total": str(sum((line.expected_debit for line in self.lines), Decimal("0.00"))),
            "credit_total": str(sum((line.expected_credit for line in self.lines), Decimal("0.00"))),
        }

    def summary(self) -> str:
        if self.success:
            return f"reconciled {len(self.lines)} GL account/currency pairs to the cent"
        if not self.lines:
            return "no control totals and no postings: nothing to reconcile against"
        worst = ", ".join(
            f"{m.gl_code}/{m.currency} (count {m.differences()['count_diff']}, "
            f"debit {m.differences()['debit_diff']}, credit {m.differences()['credit_diff']})"
            for m in self.mismatches[:5]
        )
        return f"{len(self.mismatches)} of {len(self.lines)} GL account/currency pairs differ: {worst}"


def reconcile(mart_dsn: str, stage_schema: str, business_date: date) -> Reconciliation:
    stage = sql.Identifier(stage_schema)
    trial_balance = sql.SQL(TRIAL_BALANCE.select).format(d=sql.Literal(business_date), stage=stage)
    query = sql.SQL(_RECONCILE_SQL).format(trial_balance=trial_balance, stage=stage)
    with psycopg.connect(mart_dsn) as conn:
        rows = conn.execute(query).fetchall()
    return Reconciliation(tuple(ReconciliationLine(*row) for row in rows))


def write_mismatch_report(result: Reconciliation, path: Path) -> Path:
    """CSV of every differing GL account/currency, expected beside actual, for the auditors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        fields = list(ReconciliationLine.__dataclass_fields__)
        writer.writerow(fields + ["count_diff", "debit_diff", "credit_diff"])
        for line in result.mismatches:
            row = asdict(line)
            writer.writerow([row[k] for k in fields] + list(line.differences().values()))
    path.with_suffix(".json").write_text(json.dumps(
        {"summary": result.summary(), "control_totals": result.control_totals(),
         "mismatches": [{**{k: str(v) for k, v in asdict(m).items()}, **m.differences()} for m in result.mismatches]},
        indent=2))
    return path
