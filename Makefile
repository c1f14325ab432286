# The two commands: `make run` serves Sluice, `make test` runs every test.
# Both work on a fresh machine: they create .venv and install what is missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PORT

.PHONY: run test migrate bench clean services

# A stamp per requirements file: reinstall only when a file changes.
$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime
	$(BIN)/flask --app wsgi db-upgrade

run: migrate
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

# The suite runs real Redis, PostgreSQL, nginx and Chromium (installed if missing).
services:
	scripts/install-test-services

test: $(VENV)/.dev services
	node --test tests/js/
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

bench: $(VENV)/.dev
	$(BIN)/python -m bench.streams $(BENCH_ARGS)
