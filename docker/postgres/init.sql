-- FlowGate's roles and databases for docker compose: the same ones the no-Docker stack
-- creates (include/flowgate/devstack/postgres.py DATABASES; tests/dags/test_compose.py
-- keeps the two in step).
--
-- The postgres image runs this file once, when its data volume is first initialised; a
-- later password change in docker/compose.env does not reach an existing volume
-- (`docker compose down -v` starts over). Passwords come from the container's
-- environment through psql's \getenv, so none is written here.
\set ON_ERROR_STOP on
\getenv airflow_password FLOWGATE_PG_AIRFLOW_PASSWORD
\getenv flowgate_password FLOWGATE_PG_FLOWGATE_PASSWORD
\getenv tokenizer_password FLOWGATE_PG_TOKENIZER_PASSWORD

-- Airflow's metadata has a role of its own; the platform's data belongs to one app role.
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE ROLE flowgate LOGIN PASSWORD :'flowgate_password';
-- The token vault's role: only the tokenization service logs in with it.
CREATE ROLE tokenizer LOGIN PASSWORD :'tokenizer_password';

-- database -> owner. The owner may create tables in `public` (PostgreSQL 15+ grants that
-- to the database owner only).
CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE core_banking OWNER flowgate;
CREATE DATABASE finance_mart OWNER flowgate;
CREATE DATABASE warehouse OWNER flowgate;
CREATE DATABASE fraud OWNER flowgate;
CREATE DATABASE tokenizer OWNER tokenizer;

-- The vault is in PCI-DSS scope: no other role may even connect to it.
REVOKE CONNECT ON DATABASE tokenizer FROM PUBLIC;
