# nba — the two commands a newcomer needs are `make run` and `make test`; both set up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8866

.PHONY: setup run test pipeline app bench lint format clean

## setup: create .venv and install the package with its dev tools (quick when nothing changed)
setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## run: set up, find (or generate) the data, validate it and summarise it
run: setup
	$(BIN)/nba data discover

## test: set up, lint, and run the whole test suite
test: setup
	$(BIN)/ruff check nba tests bench
	$(BIN)/ruff format --check nba tests bench
	$(BIN)/python -m pytest

## bench: print measured speed figures (see bench/)
bench: setup
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

## lint: ruff over the package, tests and notebooks
lint: setup
	$(BIN)/ruff check nba tests bench
	$(BIN)/ruff format --check nba tests bench

format: setup
	$(BIN)/ruff check --fix nba tests bench
	$(BIN)/ruff format nba tests bench

## clean: remove generated files (keeps .venv and data/raw)
clean:
	rm -rf reports/* models/* data/synthetic/* .pytest_cache .ruff_cache
	@touch reports/.gitkeep models/.gitkeep data/synthetic/.gitkeep
