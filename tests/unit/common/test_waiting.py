"""wait_until returns the first truthy result, or says what it waited for."""

from __future__ import annotations

import pytest

from flowgate.common.waiting import wait_until


def test_the_first_truthy_result_comes_back():
    answers = iter([None, 0, {"ready": True}])
    assert wait_until("readiness", lambda: next(answers), timeout_s=5, every_s=0) == {"ready": True}


def test_a_timeout_names_what_was_awaited():
    with pytest.raises(TimeoutError, match="waiting for the sink"):
        wait_until("the sink", lambda: None, timeout_s=0.05, every_s=0.01)
