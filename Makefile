# Two commands: `make run` (demo city on SQLite at http://127.0.0.1:8000) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_ENV := KODOMO_DEMO=1

.PHONY: run test install lint typecheck imports suite bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(INSTALLED)

run: install
	$(DEMO_ENV) $(BIN)/kodomo db upgrade
	$(DEMO_ENV) $(BIN)/kodomo demo load
	$(DEMO_ENV) $(BIN)/kodomo serve --face all --host 127.0.0.1 --port 8000

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy .

imports: install
	$(BIN)/lint-imports

# The whole suite runs on SQLite; database tests also run on PostgreSQL when
# KODOMO_TEST_POSTGRES_URL is set or 127.0.0.1:5432 answers (skipped with the reason otherwise).
suite: install
	$(BIN)/pytest

test: lint typecheck imports suite

bench: install
	$(BIN)/python bench/audit.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
