# One command per job: make demo, make test, make lint, make bench.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: install demo test lint bench clean

$(UV):
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv

install: $(UV)
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
	rm -rf .venv .bench .demo cdk.out infra/cdk.out

# --- deploy to AWS (docs/deploy.md) ---
.PHONY: synth image-test

synth: install
	cd infra && CDK_OUTDIR=cdk.out $(UV) run python app.py && echo "template: infra/cdk.out/LakeProcessor.template.json"

# Builds the Lambda image with buildah on a debootstrap base and runs its handler on one file
# against the local stand-in. Needs root (installs buildah/debootstrap with apt-get if missing).
image-test: install
	$(UV) run python -m infra.image_test
