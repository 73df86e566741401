# The two commands of the README. Everything runs inside .venv, built from
# pyproject.toml with the versions pinned in constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install bench monitor-demo clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@echo "==> creating $(VENV) and installing the project (pinned by constraints.txt)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## set up, pull the raw data, reproduce the whole pipeline
	@echo "==> dvc pull (raw data from the in-repo remote dvc-store/)"
	$(BIN)/dvc pull $(wildcard data/raw/*.dvc)
	@echo "==> dvc repro"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	@echo "==> done: metrics.json, plots/, dist/phishing-url-detector.onnx, dist/manifest.json"
	$(BIN)/dvc metrics show

test: $(STAMP)  ## the test suite (includes the slow end-to-end and act runs)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

monitor-demo: $(STAMP)  ## a year of simulated traffic through dist/, then the monitor (after `make run`)
	$(BIN)/python -m pipeline simulate-traffic --version-b 1.1.0 --threshold-b 0.6 --switch 2021-06-01
	$(BIN)/python -m pipeline monitor --log build/simulated-traffic/predictions.csv.gz; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]

clean:
	rm -rf $(VENV) .pytest_cache
