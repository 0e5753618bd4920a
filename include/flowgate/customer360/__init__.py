"""Flow 3, Customer 360: mobile events and the CRM API -> raw warehouse -> dbt -> customer_360.

Hourly hybrid ELT: the raw data lands as received (``raw_mobile``, ``raw_crm``) and only
the dbt models change when marketing changes its Customer 360 logic. So far:

- :mod:`customers` — customer *i* of a seed (name, email, phone, company): the one
  definition the CRM simulator and the mobile app simulator are to share;
- :mod:`rate_limits` — the CRM's rate-limit headers and the floor they put under a run;
- :mod:`crm_client` — the HTTP client (httpx + tenacity): Retry-After, backoff, budget;
- :mod:`crm_raw`, :mod:`crm_state` — the raw tables and the per-page checkpoints;
- :mod:`crm_extract` — incremental extract/load of contacts and companies;
- :mod:`mobile_app`, :mod:`mobile_schema`, :mod:`mobile_store`, :mod:`mobile_ingest`,
  :mod:`drift_alerts` — the simulated app, the expected-schema check and drift, raw_mobile's
  tables, the ingest's driver side (Spark job ``spark_jobs/mobile_events.py``), drift alerts.
"""
