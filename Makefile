# The two commands of the README: `make run` and `make test`. `make bench` prints benchmark figures.
PYTHON ?= python3
# Where `make run` serves the web process (the Procfile reads it too).
WEB_BIND ?= 127.0.0.1:8000
export WEB_BIND
VENV   ?= .venv
BIN    := $(VENV)/bin
MANAGE := $(BIN)/python manage.py

.PHONY: run test bench install install-dev migrate setup lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

setup: install
	$(MANAGE) migrate --noinput
	$(MANAGE) load_demo_data
	$(MANAGE) load_demo_strategies
	$(MANAGE) sync_schedules
	$(MANAGE) bootstrap_admin
	$(BIN)/python -m apps.market.domain.compiled  # numba kernels compiled now, not on first requests

run: setup
	@echo "Starting web (http://$(WEB_BIND)), worker and beat. Ctrl-C stops all three."
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy  # strict over the pure packages: [tool.mypy] in pyproject.toml

test: lint
	$(BIN)/pytest

bench: install-dev
	$(BIN)/python -m tests.bench

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
