# The two commands: `make run` serves Sluice, `make test` runs every test.
# Both work on a fresh machine: they create .venv and install what is missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PORT

.PHONY: run test migrate bench clean services check-run

# A target whose recipe fails is deleted, so a failed step never looks done.
.DELETE_ON_ERROR:

# A stamp per requirements file: reinstall only when a file changes. The stamp is
# written last, after the server and the app import cleanly from the new venv: an
# install that "succeeded" without everything the server needs leaves no stamp, so
# the next `make run` installs again instead of failing the same way.
$(VENV)/.runtime: requirements.txt
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -c "import services.server.worker, app"
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime
	$(BIN)/flask --app wsgi db-upgrade

run: migrate
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

# What CI checks first: `make run` from a runtime-only venv serves a streamed answer.
check-run:
	scripts/check-make-run

# The suite runs real Redis, PostgreSQL, nginx and Chromium (installed if missing).
services:
	scripts/install-test-services

# Two pytest workers (one per core here), each taking whole test files, so a file's
# live servers start once; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: $(VENV)/.dev services
	node --test tests/js/
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# Sluice beside a direct connection and nginx, memory and Redis modes (about 5 minutes;
# BENCH_ARGS=--quick for about one). Uses the redis-server and nginx of `make services`.
bench: $(VENV)/.dev
	$(BIN)/python -m bench.compare $(BENCH_ARGS)
