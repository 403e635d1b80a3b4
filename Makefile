# Two commands: `make run` (the whole stack with demo data) and `make test` (lint, types, tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck browser clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m dev.stack

lint: $(STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The browser test drives Debian's chromium through Playwright (executable_path; never `playwright install`).
# As root (CI containers) it is installed when missing; otherwise: sudo apt-get install -y chromium.
CHROMIUM := /usr/bin/chromium

browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium for the browser test (apt-get)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "note: $(CHROMIUM) is missing and this is not root: install it with sudo apt-get install -y chromium"; \
	  fi; \
	fi

test: lint typecheck browser
	$(PY) -m pytest -q

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (about 20 minutes; not part of `make test`): dev/bench/results.json and docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m dev.bench.run
