# One command per job: make demo, make test, make check, make lint, make bench.
# Every target installs what it needs first (uv from PyPI, then the locked environment).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: install demo test check lint bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen
	@# Bytecode for the environment and the project, compiled once: where PYTHONDONTWRITEBYTECODE=1
	@# is set, every new process (each `lake` command, each local worker) would otherwise compile its
	@# imports again, about 5 s of CPU for the handler's. A file that does not compile costs only its
	@# cache. The environment's ~10,000 files are compiled again only when uv.lock changes (checking
	@# them all took 4 s of every make command); the project's are checked each time.
	@$(MAKE) --no-print-directory -s .venv/.bytecode
	@.venv/bin/python -m compileall -q -j 0 analytics query handlers lake reports topology bench >/dev/null || true

.venv/.bytecode: uv.lock
	@.venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null || true
	@touch $@

demo: install
	$(UV) run lake demo

# Tests run on parallel workers (pytest-xdist): most of their time is spent waiting on the stand-in,
# the runner's worker processes and console scripts, so 4 workers fill 2 cores. A file's tests stay
# on one worker, in order (tests/conftest.py: the infrastructure tests count as one file, each
# functional test as one). They are dealt out in the order named below: the long end-to-end files
# and the infrastructure first, the unit files next, the functional tests, each a short unit of its
# own, last, so no worker is left finishing a long file while the others are idle.
# TEST_WORKERS=0 runs them in this process. The unit and functional tests of `make check` wait
# less, so 3 workers suit them best (one run each: 3 min 36 s with 3, 3 min 43 s with 4, 4 min 44 s with 2).
TEST_WORKERS ?= 4
CHECK_WORKERS ?= 3
PYTEST := $(UV) run pytest -q --dist loadfile --no-loadscope-reorder

# Everything: unit, functional, end-to-end (stand-in, runner, console scripts, a browser) and
# infrastructure (CDK synth, the Lambda image's wheels).
test: install
	$(PYTEST) -n $(TEST_WORKERS) $(PYTEST_ARGS) tests/e2e tests/infra tests/unit tests/functional

# The inner loop: unit and functional tests (pure code, and the handler against a moto server).
check: install
	$(PYTEST) -n $(CHECK_WORKERS) $(PYTEST_ARGS) tests/unit tests/functional

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run lint-imports --no-logo
	$(UV) run mypy analytics query handlers lake reports topology

bench: install
	$(UV) run python -m bench

# The docs' column tables, rendered from the table specs (docs/development.md).
.PHONY: docs
docs: install
	$(UV) run python -m lake.cli.docs

clean:
	rm -rf .venv .demo .lake-worker.log .import_linter_cache cdk.out infra/cdk.out

# --- deploy to AWS (docs/deploy.md) ---
.PHONY: synth image-test requirements

# The image's runtime dependencies, exported from uv.lock with their hashes (the Dockerfile installs
# them with pip --require-hashes, so a wheel that differs from the locked one fails the build).
REQUIREMENTS_EXPORT := export --frozen --no-default-groups --no-emit-project --format requirements.txt
requirements: install
	$(UV) $(REQUIREMENTS_EXPORT) -o infra/lambda-requirements.txt

synth: requirements
	cd infra && CDK_OUTDIR=cdk.out $(UV) run python app.py && echo "template: infra/cdk.out/LakeProcessor.template.json"

# Builds the Lambda image with buildah on a debootstrap base and runs its handler on one file
# against the local stand-in. Needs root (installs buildah/debootstrap with apt-get if missing).
image-test: install
	$(UV) run python -m tests.infra.image
