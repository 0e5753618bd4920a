# FlowGate — the local platform without Docker. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STATE := .flowgate
JARS := $(STATE)/jars
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup up status down demo test test-unit clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The virtualenv is rebuilt only when the pins change (the stamp carries their hash).
$(VENV)/.installed: requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (FlowGate needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $@

# Kafka broker, Spark connector and OpenSearch jars, resolved from Maven Central by the poms.
$(JARS)/%/.resolved: include/flowgate/devstack/jars/%.pom.xml
	@command -v mvn >/dev/null || { echo "error: mvn not found (install maven, or run .ci/run)"; exit 1; }
	rm -rf $(JARS)/$*
	mvn --batch-mode --quiet -f $< dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JARS)/$*
	touch $@

setup: $(VENV)/.installed $(JARS)/kafka-broker/.resolved $(JARS)/spark-kafka/.resolved $(JARS)/spark-s3/.resolved $(JARS)/opensearch/.resolved  ## install Python deps and jars (idempotent)

up: setup  ## start the local stack and write .env
	$(BIN)/flowgate up

status:  ## show each service of the local stack
	@$(BIN)/flowgate status

down:  ## stop what the stack started
	@$(BIN)/flowgate down

demo: setup  ## stack up, run the platform's DAGs through Airflow, print results, stack down (KEEP_RUNNING=1 keeps it)
	$(BIN)/flowgate demo $(if $(KEEP_RUNNING),--keep-running,)

test: setup  ## the whole test suite (starts and stops the stack itself)
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup  ## only the tests that need no services
	$(BIN)/pytest tests/dags tests/unit $(PYTEST_ARGS)

clean: down  ## stop the stack and delete its state (data, logs, generated secrets)
	rm -rf $(STATE) .env
