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
# their symbol tables and debug info (strip --strip-unneeded: pysequoia's binding is 9.3 MB
# without its debug info, 7.0 MB without its symbol table too; only the dynamic symbols are used).
# The package ships bytecode made by the functions' own Python (LAMBDA_PYC: python3.13 on the
# PATH, else pyenv's, found by `pyenv prefix` or under $PYENV_ROOT/versions), for the modules a
# cold start loads (tools/lambda_bytecode.py traces the handlers' imports and builds, with the
# runtime's boto3 still in the package for it): /var/task is read-only, so without .pyc every
# cold start compiles all it imports (docs/benchmarks.md). Bytecode for everything would not fit
# the core packages' 15 MB; what no cold start loads ships as source. unchecked-hash: valid
# whatever the files' mtimes become in the zip. LAMBDA_PYC= (empty) builds without bytecode.
# Powertools utilities that nothing in the package imports are left out (LAMBDA_PRUNE: the REST/
# GraphQL event handler alone is 2.1 MB); the trace above would fail the build if one were used.
# So are typing stubs (*.pyi, *-stubs) and C sources (wrapt's), which nothing reads at run time.
LAMBDA_PACKAGES := ingest connectors lambdas
LAMBDA_PYTHON ?= 3.13
ifeq ($(origin LAMBDA_PYC),undefined)
LAMBDA_PYC := $(shell for p in python$(LAMBDA_PYTHON) \
	"$$(pyenv prefix $(LAMBDA_PYTHON) 2>/dev/null)/bin/python$(LAMBDA_PYTHON)" \
	"$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/$(LAMBDA_PYTHON)*/bin/python$(LAMBDA_PYTHON); do \
	"$$p" -c 'import sys; assert "%d.%d" % sys.version_info[:2] == "$(LAMBDA_PYTHON)"; print(sys.executable)' \
	2>/dev/null && break; done)
endif
LAMBDA_RUNTIME_DISTS := boto3 botocore s3transfer jmespath python_dateutil:dateutil urllib3 six:six.py
POWERTOOLS_UNUSED := event_handler utilities/idempotency utilities/parameters \
	utilities/feature_flags utilities/auth_alpha utilities/circuit_breaker utilities/kafka \
	utilities/data_masking utilities/streaming utilities/validation
LAMBDA_PRUNE := $(addprefix aws_lambda_powertools/,$(POWERTOOLS_UNUSED))
STRIP ?= strip

# The interpreter whose pip fills a package (--target: nothing is installed into it): PYTHON if
# given on the command line, else .venv's when there is one. Not a pyenv shim by default:
# `sam build --parallel` runs several of these at once, and pyenv's pip hook then rehashes its
# shims concurrently and fails the build ("cannot rehash: shims isn't writable").
PACKAGER ?= $(if $(filter command line,$(origin PYTHON)),$(PYTHON),\
	$(if $(wildcard $(CURDIR)/$(BIN)/python),$(CURDIR)/$(BIN)/python,$(PYTHON)))

# $(1): the requirements file of the function
define lambda-package
	mkdir -p "$(ARTIFACTS_DIR)"
	cp -R $(LAMBDA_PACKAGES) "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name '__pycache__' -type d -prune -exec rm -rf {} +
	$(PACKAGER) -m pip install --quiet --no-compile --target "$(ARTIFACTS_DIR)" \
		--platform manylinux2014_x86_64 --implementation cp --python-version $(LAMBDA_PYTHON) \
		--only-binary=:all: -r $(1) boto3
	cd "$(ARTIFACTS_DIR)" && rm -rf bin $(LAMBDA_PRUNE) *-stubs \
		&& find . \( -name '*.pyi' -o -name '*.c' \) -type f -delete
	@if command -v $(STRIP) >/dev/null 2>&1; then \
		find "$(ARTIFACTS_DIR)" -name '*.so' -exec $(STRIP) --strip-unneeded {} +; \
	else \
		echo "note: no $(STRIP) on this machine: shared objects keep their debug info (bigger package)" >&2; \
	fi
	@if [ -n "$(LAMBDA_PYC)" ]; then \
		list=$$(mktemp) && "$(LAMBDA_PYC)" -I -S -B tools/lambda_bytecode.py "$(ARTIFACTS_DIR)" >"$$list" \
		&& "$(LAMBDA_PYC)" -m compileall -q --invalidation-mode unchecked-hash -i "$$list" >/dev/null \
		&& rm -f "$$list" || { rm -f "$$list"; exit 1; }; \
	else \
		echo "note: no python$(LAMBDA_PYTHON) on this machine: the package ships without .pyc (slower cold starts)" >&2; \
	fi
	cd "$(ARTIFACTS_DIR)" && for dist in $(LAMBDA_RUNTIME_DISTS); do \
		name=$${dist%%:*}; top=$${dist#*:}; rm -rf "$$top" "$$name"-*.dist-info; done
endef

build-FanoutFunction build-ProcessorFunction build-UploadEventsFunction build-TransferStatusFunction build-OutcomesFunction build-WaitSweepFunction:
	$(call lambda-package,lambdas/requirements-core.txt)

build-ExpectedFilesFunction:
	$(call lambda-package,lambdas/requirements-expected.txt)

build-RetrieveFunction:
	$(call lambda-package,lambdas/requirements-sftp.txt)
