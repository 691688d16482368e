# Two commands do all the set-up: `make run` and `make test` (see README).
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast test-worker test-faults test-browser lint format chromium \
	redis-server wrk stop-db bench soak clean

# The suite runs in TEST_WORKERS processes side by side (pytest-xdist), each on a test
# database of its own; the slowest tests are listed at the end of every run.
# Its processes (the pytest workers, some thirty Celery workers and beats, the commands the
# tests start) import the same modules, and pytest rewrites every test module's asserts:
# both are compiled once into __pycache__/ (git-ignored), even where the environment says
# not to write bytecode (PYTHONDONTWRITEBYTECODE), instead of in every process of every run.
TEST_WORKERS ?= 3
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal \
	--durations=15

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(INSTALLED)
	$(BIN)/python manage.py runconsole

# The browser tests run axe-core, the accessibility checker, in the pages: npm installs the
# version package-lock.json pins into node_modules/ (git-ignored); Debian's npm is installed
# with apt when it is missing.
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		echo "Installing Debian's npm for the accessibility checks"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: $(INSTALLED) $(AXE) chromium redis-server
	$(PYTEST) $(PYTEST_ARGS)

# One lane of the suite at a time: fast (no worker, browser or fault process: the inner
# loop), worker (real Celery worker or beat), faults (processes killed and restarted),
# browser (headless Chromium).
test-fast: $(INSTALLED)
	$(PYTEST) -m "not worker and not faults and not browser" $(PYTEST_ARGS)

test-worker: $(INSTALLED)
	$(PYTEST) -m "worker and not faults and not browser" $(PYTEST_ARGS)

test-faults: $(INSTALLED) redis-server
	$(PYTEST) -m faults $(PYTEST_ARGS)

test-browser: $(INSTALLED) $(AXE) chromium
	$(PYTEST) -m browser $(PYTEST_ARGS)

# Browser tests drive Debian's chromium; install it when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# The fault tests start and stop private redis-server processes; install it when it is missing.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "Installing Debian's redis-server for the fault tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }

# The load benchmark drives gunicorn with Debian's wrk; install it when it is missing.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "Installing Debian's wrk for the load benchmark"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }

# mypy's Django plugin imports the settings: with a DATABASE_URL and a broker given, that
# starts no embedded PostgreSQL and makes no .data/ (mypy connects to neither).
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=postgresql://lint@127.0.0.1/lint CELERY_BROKER_URL=memory:// $(BIN)/mypy
	$(BIN)/lint-imports

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stop-db: $(INSTALLED)
	$(BIN)/python -c 'from pathlib import Path; from syncconsole.embedded_db import stop; stop(Path(".data"))'

bench: $(INSTALLED) wrk
	$(BIN)/python -m bench $(BENCH) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules staticfiles .pytest_cache .ruff_cache .mypy_cache .import_linter_cache

# The soak run: `make run`'s stack under steady work for SOAK_MINUTES (30) minutes, on a
# database of its own and the Redis of CELERY_BROKER_URL (bench/soak.py).
soak: $(INSTALLED)
	$(BIN)/python -m bench.soak
