"""The real local stack for integration tests.

The session brings the stack up with the project's own code (what `make up` runs) and,
at the end, stops exactly the services it started: a developer's stack that was
already running is reused and left running.
"""

from __future__ import annotations

import pytest

from flowgate.devstack import stack
from flowgate.devstack.config import StackConfig


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    return StackConfig.from_env()


@pytest.fixture(scope="session")
def running_stack(stack_config: StackConfig):
    already_running = {s.name for s in stack.status(stack_config) if s.healthy}
    stack.up(stack_config)
    yield stack_config
    for component in reversed(stack.components(stack_config)):
        if component.service.name not in already_running:
            from flowgate.devstack import process

            process.stop(component.service)


@pytest.fixture(scope="session")
def airflow_api(running_stack):
    from flowgate.airflow_api import AirflowApi

    return AirflowApi.login()
