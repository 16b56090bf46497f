# Every target bootstraps its own virtual environment, so each works on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Branch coverage (child processes included), 93.4 % on 2026-11-30; the floor sits just under it.
COVERAGE_FLOOR := 92

.PHONY: venv demo test check lint typecheck pytest stress bench bench-peers bench-pg-scale wheel-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[cli,ui,postgres]" --group test --group lint --group bench --group frameworks --group mlflow
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

## The main job: the Quick Start example on the embedded SQLite default.
demo: $(STAMP)
	$(BIN)/python examples/experiment_tracking.py $(ARGS)

## Everything the tests need, then lint, types and the test suite.
test: check pytest

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR) $(PYTEST_ARGS)

## Build the wheel, install it alone into a clean venv, and run the example from it.
wheel-check: $(STAMP)
	rm -rf dist .venv-wheel
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	$(PYTHON) -m venv .venv-wheel
	.venv-wheel/bin/python -m pip install --quiet "$$(ls dist/runjournal-*.whl)[cli,ui]"
	cd /tmp && $(CURDIR)/.venv-wheel/bin/python -c "import runjournal, sys; assert '$(CURDIR)/src' not in runjournal.__file__, runjournal.__file__; print('wheel import ok:', runjournal.__file__)"
	cd /tmp && $(CURDIR)/.venv-wheel/bin/python $(CURDIR)/examples/experiment_tracking.py --db "$$(mktemp -d)/wheel.db"
	cd /tmp && $(CURDIR)/.venv-wheel/bin/python $(CURDIR)/scripts/wheel_page_check.py

## Longer crash and kill tests.
stress: $(STAMP)
	RUNJOURNAL_STRESS=200 $(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

bench-peers: $(STAMP)
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	.venv-peers/bin/python -m pip install --quiet -e . --group bench-peers
	$(BIN)/python -m benchmarks --only peers,mlflow-server --peers-python .venv-peers/bin/python $(ARGS)

## The issue's 50 million points on PostgreSQL beside SQLite (RUNJOURNAL_BENCH_PG_SCALE_POINTS=N for another size).
bench-pg-scale: $(STAMP)
	$(BIN)/python -m benchmarks --only pg-scale $(ARGS)

clean:
	rm -rf $(VENV) .venv-peers .venv-wheel dist .mypy_cache .pytest_cache .ruff_cache .coverage
