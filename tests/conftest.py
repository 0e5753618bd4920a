"""Test settings shared by every layer.

Airflow reads its configuration when first imported, so the stack's settings (the
same ones `make up` writes to .env) are put into the environment here, before any test
module imports Airflow. Computing them needs no running service.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import stack_env

REPO = Path(__file__).resolve().parents[1]

os.environ.update(stack_env(StackConfig.from_env()))
# Tasks run spark-submit and the flowgate scripts from the virtualenv, as under `make up`.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
