# The two commands a new checkout needs: `make run` and `make test`.
# Both create the virtual environment and start PostgreSQL, Redis and Kafka
# with scripts/services.sh when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv services-up services-down services-status browser migrate run test lint format bench bench-reading

help:
	@echo "make run              start the services and every platform process"
	@echo "make test             start the services, run ruff and pytest"
	@echo "make services-up      start PostgreSQL, Redis and Kafka on 127.0.0.1"
	@echo "make services-down    stop them"
	@echo "make services-status  show what runs where"
	@echo "make browser          install Debian's Chromium for the browser tests"
	@echo "make bench            measure the pipeline's throughput (BENCH_ARGS=--help)"
	@echo "make bench-reading    time reads on 10 million entries (BENCH_ARGS=--help)"

venv: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $(STAMP)

services-up:
	scripts/services.sh up

services-down:
	scripts/services.sh down

services-status:
	scripts/services.sh status

# Debian's Chromium, which the browser tests drive through Playwright.
browser:
	scripts/browser.sh

migrate: venv services-up
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

# Every process of `make run` writes its metrics to files in this folder,
# which /metrics adds up. A run starts from an empty folder, so counters
# start at zero and no process of an earlier run is counted.
METRICS_DIR := $(CURDIR)/.services/prometheus

run: migrate
	rm -rf $(METRICS_DIR)
	mkdir -p $(METRICS_DIR)
	PROMETHEUS_MULTIPROC_DIR=$(METRICS_DIR) $(BIN)/honcho start --procfile Procfile

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: venv services-up browser lint
	$(BIN)/pytest

# The throughput benchmark, in its own database (created and migrated by the
# script), Redis database 11 and Kafka topics. Pass flags with BENCH_ARGS,
# e.g. make bench BENCH_ARGS="--seconds 20 --json bench.json".
bench: venv services-up
	$(BIN)/python -m bench.pipeline $(BENCH_ARGS)

# Reading at scale, in the database logplatform_scale, which the script
# creates, migrates and fills with generate_logs to --rows entries (10
# million by default, a few minutes and about 6 GB on the first run).
bench-reading: venv services-up
	$(BIN)/python -m bench.reading $(BENCH_ARGS)
