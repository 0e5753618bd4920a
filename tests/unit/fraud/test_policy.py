from decimal import Decimal

import pytest

from flowgate.fraud.policy import FAIL_CLOSED_REASON, FAIL_OPEN_REASON, DegradedModePolicy


def test_small_payments_pass_unscored_and_say_so():
    assert DegradedModePolicy(Decimal("100.00")).decide_unscored(Decimal("100.00")) == ("approve", FAIL_OPEN_REASON)


@pytest.mark.parametrize("closed", ["review", "decline"])
def test_larger_payments_fail_closed_as_configured(closed):
    policy = DegradedModePolicy(Decimal("100.00"), closed)
    assert policy.decide_unscored(Decimal("100.01")) == (closed, FAIL_CLOSED_REASON)


def test_a_policy_that_would_approve_when_closed_is_refused():
    with pytest.raises(ValueError):
        DegradedModePolicy(Decimal("10"), "approve")
