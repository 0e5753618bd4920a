"""Flow 3, Customer 360: the CRM source and its extract/load into ``raw_crm`` (so far).

- :mod:`customers` — customer *i* of a seed (name, email, phone, company): the one
  definition the CRM simulator and, later, the mobile app simulator share;
- :mod:`rate_limits` — the CRM's rate-limit headers and the floor they put under a run;
- :mod:`crm_client` — the HTTP client (httpx + tenacity): Retry-After, backoff, budget;
- :mod:`crm_raw`, :mod:`crm_state` — the raw tables and the per-page checkpoints;
- :mod:`crm_extract` — incremental extract/load of contacts and companies.
"""
