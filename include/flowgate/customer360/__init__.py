"""Flow 3, Customer 360: mobile events and the CRM API -> raw warehouse -> dbt -> customer_360.

Hourly hybrid ELT: the raw data lands as received (``raw_mobile``, ``raw_crm``) and only
the dbt models change when marketing changes its Customer 360 logic.
"""
