# The README's two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test tools docs lint typecheck check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP) ## the main job: the whole pipeline on the embedded local stack
	$(BIN)/ingest up --demo-partner

demo: $(STAMP) ## a scripted end-to-end run that exits when done
	$(BIN)/ingest demo

# --- tools in venvs of their own ------------------------------------------------------------
# The SAM CLI and checkov each pin their own boto3 (checkov: 1.35), so neither may go into
# .venv: each gets a venv under .tools/ from its pinned requirements file in tools/ (the
# project's record of them as dev tooling; pyproject.toml points here). The stamp is newer
# than the file once the venv holds exactly it.
TOOLS   := .tools
SAM     := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov

$(TOOLS)/%/.installed: tools/%.txt
	$(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/pip install --quiet --upgrade pip
	$(TOOLS)/$*/bin/pip install --quiet -r $<
	touch $@

tools: $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed ## the SAM CLI and checkov, each in its own venv under .tools/

docs: ## render the architecture diagram
	@command -v dot >/dev/null 2>&1 || { echo "make docs needs Graphviz's dot: apt-get install graphviz" >&2; exit 1; }
	dot -Tsvg docs/architecture.dot -o docs/architecture.svg

TEST_WORKERS ?= 2

test: $(STAMP) tools ## the package boundaries, then every test on TEST_WORKERS processes (whole files per process)
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) $(TOOLS) build .aws-sam .pytest_cache .mypy_cache .ruff_cache

# --- sam build (BuildMethod: makefile) -----------------------------------------------------
# `sam build` calls build-<LogicalId> with ARTIFACTS_DIR set. Only runtime code is packaged:
# ingest/, connectors/ and lambdas/ (never the emulator ingest_local/, tests, fixtures or bench)
# plus the function's runtime deps, as wheels for the functions' Python (LAMBDA_PYTHON):
# lambdas/requirements-core.txt for every function, lambdas/requirements-sftp.txt (the core's
# and asyncssh, which brings cryptography: ~17 MB) only for RetrieveFunction.
# What the Lambda runtime brings itself (boto3 and what it needs, LAMBDA_RUNTIME_DISTS) is taken
# out again when a requirement pulled it in (aws-xray-sdk needs botocore). Shared objects lose
# their debug info (strip --strip-debug: PyYAML's libyaml binding is 2.8 MB with it, 0.4 without).
# The package ships bytecode made by the functions' own Python when this machine has it:
# /var/task is read-only, so without .pyc every cold start compiles all it imports (about half
# the processor's cold start: docs/benchmarks.md). unchecked-hash: valid whatever the files'
# mtimes become in the zip.
LAMBDA_PACKAGES := ingest connectors lambdas
LAMBDA_PYTHON ?= 3.13
LAMBDA_PYC ?= $(shell python$(LAMBDA_PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null)
LAMBDA_RUNTIME_DISTS := boto3 botocore s3transfer jmespath python_dateutil:dateutil urllib3 six:six.py
STRIP ?= strip

# $(1): the requirements file of the function
define lambda-package
	mkdir -p "$(ARTIFACTS_DIR)"
	cp -R $(LAMBDA_PACKAGES) "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name '__pycache__' -type d -prune -exec rm -rf {} +
	$(PYTHON) -m pip install --quiet --no-compile --target "$(ARTIFACTS_DIR)" \
		--platform manylinux2014_x86_64 --implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: -r $(1)
	cd "$(ARTIFACTS_DIR)" && rm -rf bin && for dist in $(LAMBDA_RUNTIME_DISTS); do \
		name=$${dist%%:*}; top=$${dist#*:}; rm -rf "$$top" "$$name"-*.dist-info; done
	@if command -v $(STRIP) >/dev/null 2>&1; then \
		find "$(ARTIFACTS_DIR)" -name '*.so' -exec $(STRIP) --strip-debug {} +; \
	else \
		echo "note: no $(STRIP) on this machine: shared objects keep their debug info (bigger package)" >&2; \
	fi
	@if [ -n "$(LAMBDA_PYC)" ]; then \
		"$(LAMBDA_PYC)" -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)" >/dev/null; \
	else \
		echo "note: no python$(LAMBDA_PYTHON) on this machine: the package ships without .pyc (slower cold starts)" >&2; \
	fi
endef

# TransferStatusFunction is a core one: it never runs SFTP (with the builtin engine it leaves
# after-success actions to RetrieveFunction's next run: connectors/claims.py).
build-FanoutFunction build-ProcessorFunction build-UploadEventsFunction build-TransferStatusFunction:
	$(call lambda-package,lambdas/requirements-core.txt)

build-RetrieveFunction:
	$(call lambda-package,lambdas/requirements-sftp.txt)
