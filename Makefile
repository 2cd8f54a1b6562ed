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

BUNDLE := models/nba.bundle

## run: set up, find (or generate) the data, train through the pipeline if there is no bundle
## yet, then serve the app on http://127.0.0.1:$(PORT) (Ctrl-C stops)
run: setup
	$(BIN)/nba data discover
	@test -f $(BUNDLE) || $(BIN)/nba pipeline
	$(BIN)/nba app --port $(PORT) --bundle $(BUNDLE)

## app: serve the app for user-acceptance testing (needs a bundle: `make run` builds one)
app: setup
	$(BIN)/nba app --port $(PORT) --bundle $(BUNDLE)

## pipeline: re-run the numbered notebooks (papermill) into reports/
pipeline: setup
	$(BIN)/nba pipeline

CI_REPORTS := reports/ci

## test: set up, lint, and run the whole test suite; the notebooks run once, under nbval,
## with params/ci.yaml, and tests/notebooks asserts the metrics that run recorded
test: setup
	$(BIN)/ruff check nba tests bench notebooks app.ipynb
	$(BIN)/ruff format --check nba tests bench notebooks app.ipynb
	$(BIN)/python tests/notebooks/prepare_for_nbval.py $(CI_REPORTS)
	NBA_NOTEBOOK_REPORTS=$(CI_REPORTS) $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		$(CI_REPORTS)/prepared app.ipynb tests

## bench: print measured speed figures (see bench/)
bench: setup
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

## lint: ruff over the package, tests and notebooks
lint: setup
	$(BIN)/ruff check nba tests bench notebooks app.ipynb
	$(BIN)/ruff format --check nba tests bench notebooks app.ipynb

format: setup
	$(BIN)/ruff check --fix nba tests bench notebooks app.ipynb
	$(BIN)/ruff format nba tests bench notebooks app.ipynb

## clean: remove generated files (keeps .venv and data/raw)
clean:
	rm -rf reports/* models/* data/synthetic/* .pytest_cache .ruff_cache
	@touch reports/.gitkeep models/.gitkeep data/synthetic/.gitkeep
