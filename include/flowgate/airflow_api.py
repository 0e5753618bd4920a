"""A small client for Airflow 3's REST API (what the UI itself calls).

Used by the CLI, the demo and the tests to trigger and watch DAG runs on a running
Airflow, logging in with the stack's admin credentials from ``.env``.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from dataclasses import dataclass

import httpx

TERMINAL_STATES = {"success", "failed"}


class AirflowApiError(RuntimeError):
    pass


@dataclass
class AirflowApi:
    base_url: str
    token: str

    @classmethod
    def login(cls, base_url: str | None = None, user: str | None = None, password: str | None = None) -> AirflowApi:
        base_url = (base_url or os.environ["FLOWGATE_AIRFLOW_URL"]).rstrip("/")
        response = httpx.post(
            f"{base_url}/auth/token",
            json={"username": user or os.environ["FLOWGATE_AIRFLOW_USER"],
                  "password": password or os.environ["FLOWGATE_AIRFLOW_PASSWORD"]},
            timeout=10,
        )
        if response.status_code != 201 and response.status_code != 200:
            raise AirflowApiError(f"login to {base_url} failed: {response.status_code} {response.text}")
        return cls(base_url, response.json()["access_token"])

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = httpx.request(method, f"{self.base_url}/api/v2{path}",
                                 headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise AirflowApiError(f"{method} {path}: {response.status_code} {response.text}")
        return response

    def get(self, path: str, **params) -> dict:
        return self._request("GET", path, params=params).json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        """Wait until the dag-processor has parsed ``dag_id`` (new files take a few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.get(f"/dags/{dag_id}")
            except AirflowApiError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        self._request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self._request("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self._request("POST", f"/dags/{dag_id}/dagRuns", json=body).json()["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in TERMINAL_STATES:
                return run
            time.sleep(2)
        raise AirflowApiError(f"{dag_id} run {run_id} still not finished after {timeout:.0f}s")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in answer["task_instances"]}

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 600) -> tuple[dict, dict[str, str]]:
        """Unpause, trigger and wait: the run's record and each task's state."""
        self.wait_for_dag(dag_id)
        self.unpause(dag_id)
        run_id = self.trigger(dag_id, conf)
        run = self.wait_for_run(dag_id, run_id, timeout)
        return run, self.task_states(dag_id, run_id)

    def backfill(self, dag_id: str, from_date: str, to_date: str, max_active_runs: int = 4,
                 reprocess_behavior: str = "completed") -> dict:
        """Create a backfill as the UI's backfill form does; the scheduler runs it."""
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date,
                "max_active_runs": max_active_runs, "reprocess_behavior": reprocess_behavior}
        return self._request("POST", "/backfills", json=body).json()

    def dag_runs(self, dag_id: str, **filters) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, **filters)["dag_runs"]

    def cancel_backfill(self, backfill_id: int) -> None:
        self._request("PUT", f"/backfills/{backfill_id}/cancel")

    def wait_for_backfill(self, backfill: dict, timeout: float = 900) -> list[dict]:
        """Wait until the backfill has completed; its runs, oldest first.

        A paused DAG's backfill runs stay queued: unpause it first (the UI offers to).
        """
        deadline = time.monotonic() + timeout
        while not self.get(f"/backfills/{backfill['id']}").get("completed_at"):
            if time.monotonic() > deadline:
                raise AirflowApiError(f"backfill {backfill['id']} of {backfill['dag_id']} not complete "
                                      f"after {timeout:.0f}s")
            time.sleep(3)
        def _instant(value: str):
            return datetime.fromisoformat(value.replace("Z", "+00:00"))

        start, end = _instant(backfill["from_date"]), _instant(backfill["to_date"])
        runs = [r for r in self.dag_runs(backfill["dag_id"], run_type=["backfill"])
                if start <= _instant(r["data_interval_start"]) <= end]
        return sorted(runs, key=lambda r: r["data_interval_start"])
