"""The CRM simulator's admin endpoints, for tests, drills, benches and ``flowgate crm``.

Only the simulator has these (HubSpot has no ``/_chaos``); nothing in the flow itself
calls them. The admin token is the local stack's (``devstack.crm.crm_admin_token``).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass
class CrmAdmin:
    base_url: str
    admin_token: str
    timeout_s: float = 60.0  # a reset with many customers takes a few seconds

    @classmethod
    def from_stack(cls, cfg) -> CrmAdmin:
        from flowgate.devstack.crm import crm_admin_token, crm_url

        return cls(crm_url(cfg), crm_admin_token(cfg))

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = httpx.request(method, f"{self.base_url}{path}", json=body, timeout=self.timeout_s,
                                 headers={"Authorization": f"Bearer {self.admin_token}"})
        response.raise_for_status()
        return response.json()

    def chaos(self, **settings) -> dict:
        """Replace the chaos settings (none given: no chaos); returns what is in force."""
        return self._call("POST", "/_chaos", settings)

    def show_chaos(self) -> dict:
        return self._call("GET", "/_chaos")

    def advance(self, **changes) -> dict:
        return self._call("POST", "/_simulate/advance", changes)

    def reset(self, seed: int | None = None, customers: int | None = None) -> dict:
        return self._call("POST", "/_reset", {"seed": seed, "customers": customers})

    def mint_token(self, name: str, rate_limit_max: int | None = None, rate_limit_interval_ms: int | None = None) -> str:
        """A bearer token with a rate-limit bucket of its own (and, if given, a limit of its own)."""
        return self._call("POST", "/_tokens", {"name": name, "rate_limit_max": rate_limit_max,
                                               "rate_limit_interval_ms": rate_limit_interval_ms})["token"]

    def stats(self) -> dict:
        return self._call("GET", "/_stats")
