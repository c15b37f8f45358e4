# The two commands a new checkout needs: `make run` and `make test`.
# Both create the virtual environment and start PostgreSQL, Redis and Kafka
# with scripts/services.sh when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv services-up services-down services-status browser migrate run test lint format

help:
	@echo "make run              start the services and every platform process"
	@echo "make test             start the services, run ruff and pytest"
	@echo "make services-up      start PostgreSQL, Redis and Kafka on 127.0.0.1"
	@echo "make services-down    stop them"
	@echo "make services-status  show what runs where"
	@echo "make browser          install Debian's Chromium for the browser tests"

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

run: migrate
	$(BIN)/honcho start --procfile Procfile

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: venv services-up browser lint
	$(BIN)/pytest
