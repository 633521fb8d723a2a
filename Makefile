# The two commands: `make demo` and `make test`. Everything else is set-up they call.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PY ?= python3.11
# pip notes about unreachable optional indexes are noise here; real errors still fail the step
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location" || true; }
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-unit test-integration lint typecheck bench clean-state venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found; install Python 3.11 or run 'make PY=/path/to/python3.11'"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing streamrec and its dependencies into $(VENV) (first run only)..."
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel $(QUIET_PIP)
	$(BIN)/python -m pip install -q "torch==2.13.0" $(QUIET_PIP)
	$(BIN)/python -m pip install -q -e ".[runtime,dev]" $(QUIET_PIP)
	$(BIN)/python -m pip install -q --no-deps "recbole==1.2.1" $(QUIET_PIP)
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/streamrec demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

typecheck: $(STAMP)
	$(BIN)/python -m mypy schemas streams/writes.py streams/keys.py streams/merge.py streams/embeddings.py streams/store.py streams/overlay.py streams/apply_pack.py streams/read_pack.py streams/open_impression.py streams/training_records.py streams/apply_lua.py streams/batch_context.py offline/durable_files.py streams/retention_gaps.py streams/retention_watch.py offline/ranking_metrics.py offline/group_split.py offline/candidate_groups.py serving/forest.py serving/mmr_kernel.py serving/mmr.py serving/compiled.py bench/machine.py bench/soak_checks.py bench/soak_ledger.py

clean-state:
	rm -rf .streamrec
