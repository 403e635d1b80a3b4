# Two commands: `make run` (the whole stack with demo data) and `make test` (lint, types, tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) stack.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint typecheck
	$(PY) -m pytest -q

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (issue #7, about 6 minutes; not part of `make test`): bench/results.json and docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m bench.run
