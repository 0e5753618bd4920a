"""Test settings shared by every layer.

Airflow reads its configuration when first imported, so the stack's settings (the
same ones `make up` writes to .env) are put into the environment here, before any test
module imports Airflow. Computing them needs no running service.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from flowgate.devstack.config import StackConfig
from flowgate.devstack.env import stack_env

REPO = Path(__file__).resolve().parents[1]

os.environ.update(stack_env(StackConfig.from_env()))
# dag.test() writes a DAG through the bundle that holds it: test-only DAGs live in a
# bundle of their own, which only the test process knows (the platform's UI never lists it).
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps([
    {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
    {"name": "test-fixtures", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
     "kwargs": {"path": str(REPO / "tests" / "fixtures" / "dags")}},
])
# Tasks run spark-submit and the flowgate scripts from the virtualenv, as under `make up`.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
