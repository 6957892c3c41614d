# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test lint typecheck check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) ## the main job: the whole pipeline on the embedded local stack
	$(BIN)/ingest up --demo-partner

demo: $(STAMP) ## a scripted end-to-end run that exits when done
	$(BIN)/ingest demo

TEST_WORKERS ?= 2

test: $(STAMP) ## the package boundaries, then every test on TEST_WORKERS processes (whole files per process)
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) build .aws-sam .pytest_cache .mypy_cache .ruff_cache

# --- sam build (BuildMethod: makefile) -----------------------------------------------------
# `sam build` calls build-<LogicalId> with ARTIFACTS_DIR set. Only runtime code is packaged:
# ingest/, connectors/ and lambdas/ (never the emulator ingest_local/, tests, fixtures or bench)
# plus the runtime deps, as wheels for the functions' Python (LAMBDA_PYTHON).
# The package ships bytecode made by the functions' own Python when this machine has it:
# /var/task is read-only, so without .pyc every cold start compiles all it imports (about half
# the processor's cold start: docs/benchmarks.md). unchecked-hash: valid whatever the files'
# mtimes become in the zip.
LAMBDA_PACKAGES := ingest connectors lambdas
LAMBDA_PYTHON ?= 3.13
LAMBDA_PYC ?= $(shell python$(LAMBDA_PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null)

build-lambda-package:
	mkdir -p "$(ARTIFACTS_DIR)"
	cp -R $(LAMBDA_PACKAGES) "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name '__pycache__' -type d -prune -exec rm -rf {} +
	$(PYTHON) -m pip install --quiet --no-compile --target "$(ARTIFACTS_DIR)" \
		--platform manylinux2014_x86_64 --implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: -r lambdas/requirements.txt
	@if [ -n "$(LAMBDA_PYC)" ]; then \
		"$(LAMBDA_PYC)" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)" >/dev/null; \
	else \
		echo "note: no python$(LAMBDA_PYTHON) on this machine: the package ships without .pyc (slower cold starts)" >&2; \
	fi

build-FanoutFunction build-ProcessorFunction build-RetrieveFunction build-TransferStatusFunction build-UploadEventsFunction: build-lambda-package
