"""What the stream decides when it cannot score: the tokenizer is down or slow.

Without a token there are no card features and no score. Holding every payment would
stop the business; approving every payment would invite fraud exactly when defences are
down. The risk appetite sets the line: small payments pass unscored (fail-open) and are
flagged as such, larger ones are held for review or declined (fail-closed). Every such
decision says why, so they can be found and re-examined later.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Decision = Literal["approve", "review", "decline"]

FAIL_OPEN_REASON = "tokenizer_unavailable:fail_open_unscored"
FAIL_CLOSED_REASON = "tokenizer_unavailable:fail_closed"


@dataclass(frozen=True)
class DegradedModePolicy:
    # At or below this amount (in the payment's currency) a payment is approved unscored.
    fail_open_max_amount: Decimal = Decimal("100.00")
    # Above it: "review" holds the payment for an analyst, "decline" refuses it.
    fail_closed_decision: Decision = "review"

    def __post_init__(self):
        if self.fail_closed_decision not in ("review", "decline"):
            raise ValueError("fail_closed_decision must be 'review' or 'decline'")
        if self.fail_open_max_amount < 0:
            raise ValueError("fail_open_max_amount must not be negative")

    def decide_unscored(self, amount: Decimal) -> tuple[Decision, str]:
        """(decision, reason) for a payment that could not be tokenized and scored."""
        if amount <= self.fail_open_max_amount:
            return "approve", FAIL_OPEN_REASON
        return self.fail_closed_decision, FAIL_CLOSED_REASON
