# One command per job: make demo, make test, make lint, make bench.
# Every target installs what it needs first (uv from PyPI, then the locked environment).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: install demo test lint bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen

demo: install
	$(UV) run lake demo

test: install
	$(UV) run pytest -q

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy analytics handlers lake topology

bench: install
	$(UV) run python -m bench

clean:
	rm -rf .venv .demo .lake-worker.log cdk.out infra/cdk.out
