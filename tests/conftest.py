"""Shared fixtures: small real-data samples (tests/data), a model trained on them once, and the one
throwaway-repository builder the end-to-end tests use.

The samples are seeded draws from the datasets in the project's datasheet: 1,500 rows each of
ebbu2017 and phishstorm, 700 of esdaung2021 (450 legitimate, 250 phishing), 650 of citizenlab (150
first seen from 2022-10), 1,050 of jpcert (250 from 2022-10), 400 of the PhishTank stream; and
``jpcert_replay_<month>.csv``: 60 other jpcert rows of each of 2022-10/11/12, for the ingest replay.
"""
from __future__ import annotations

import copy
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "data"
VENV_BIN = Path(sys.executable).parent
# params.yaml source name -> its sample in tests/data
SAMPLE_FILES = {"ebbu2017": "ebbu2017_sample.csv", "phishstorm": "phishstorm_sample.csv",
                "esdaung2021": "esdaung2021_sample.csv", "citizenlab": "citizenlab_sample.csv",
                "jpcert": "jpcert_sample.csv", "phishtank": "phishtank_dated_sample.csv"}

SMALL_TRAIN_PARAMS = {
    "seed": 42,
    "char_tfidf": {"ngram_min": 1, "ngram_max": 4, "host_features": 800, "path_features": 600, "min_df": 2,
                   "fit_sample": 4000},
    "logistic_regression": {"C": 4.0, "max_iter": 1000},
    "lexical_trees": {"max_iter": 30, "learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 10},
    "weights": [3.0, 1.0],
}


def small_params() -> dict:
    """This repository's params.yaml with every costly setting made small (same keys, same sources)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for source in params["data"]["sources"]:
        source["files"] = source["files"][:1]  # one sample per source (copy_code drops the shards' deps)
    params["train"] = copy.deepcopy(SMALL_TRAIN_PARAMS)
    params["operating_point"]["min_legitimate_per_source"] = 40
    params["evaluate"]["bootstrap_resamples"] = 50
    params["export"]["parity_batch_sizes"] = [1, 256]
    params["leave_one_source_out"].update(max_train_rows=2000, max_test_rows=400, n_jobs=1)
    params["backtest"].update(cutoffs=["2022-03", "2022-06"], max_train_rows=2000, n_jobs=1)
    params.setdefault("review", {})["bootstrap_resamples"] = 100
    return params


def venv_env(extra: dict | None = None) -> dict:
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
            "ACT_DISABLE_VERSION_CHECK": "1", **(extra or {})}


def sh(*args, cwd: Path, check: bool = True, timeout: int = 1200, extra_env=None) -> subprocess.CompletedProcess:
    """Run a command with this venv's tools first on PATH; fail with its output."""
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=venv_env(extra_env), capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
    return result


SHARD_DEP = re.compile(r"^\s+- data/raw/[^/\s]+/[^/\s]+\s*$")


def copy_code(root: Path, extra: tuple[str, ...] = ()) -> None:
    """pipeline/, dvc.yaml, pyproject.toml and every other file a stage depends on (templates ...)."""
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values()
    outs = {next(iter(o)) if isinstance(o, dict) else o
            for s in stages for section in ("outs", "metrics", "plots") for o in s.get(section) or []}
    files = {"dvc.yaml", "pyproject.toml", "constraints.txt", "requirements/client.lock", *extra}  # the lock: `release`
    files |= {d for s in stages for d in s.get("deps", []) if not d.startswith(("data/", "pipeline/"))
              and d not in outs}
    for rel in files:
        if (REPO / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / rel, root / rel)
    # The monthly shards `ingest` registered (data/raw/<source>/<month>.csv.gz) have no sample: a
    # source's one sample file stands for all its files (small_params keeps the first file only).
    dvc_yaml = root / "dvc.yaml"
    dvc_yaml.write_text("".join(line for line in dvc_yaml.read_text().splitlines(keepends=True)
                                if not SHARD_DEP.match(line)))


def write_params(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def write_raw_samples(root: Path, params: dict) -> list[str]:
    """Each source's sample, gzipped, at the first file params.yaml names for it; returns those paths."""
    from pipeline.training.sources import out_of_source, training_sources

    paths = []
    for source in [*training_sources(params), out_of_source(params)]:
        gzip_copy(SAMPLES / SAMPLE_FILES[source.name], root / source.files[0])
        paths.append(source.files[0])
    return paths


def commit(root: Path, message: str) -> None:
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", message, cwd=root)


def sample_project(root: Path, params: dict | None = None, extra: tuple[str, ...] = (),
                   repro: bool = True) -> Path:
    """A throwaway copy of this repository on the samples: code, small params, raw data under DVC with an
    in-repo remote (pushed), optionally the pipeline run; everything committed on ``main``."""
    root.mkdir(parents=True, exist_ok=True)
    copy_code(root, extra)
    params = params or small_params()
    write_params(root, params)
    raw = write_raw_samples(root, params)
    (root / ".gitignore").write_text("__pycache__/\n/build/\n/dist/release/\n/dist/release-notes.md\n"
                                     "/dist/release.json\n/dist/release-commit.bundle\n")
    sh("git", "init", "-q", "-b", "main", cwd=root)
    sh("git", "config", "user.email", "ci@example.invalid", cwd=root)
    sh("git", "config", "user.name", "CI", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    sh("dvc", "config", "core.analytics", "false", cwd=root)
    # Given from the repository root, DVC stores this as ../dvc-store (relative to .dvc/): inside the repo.
    sh("dvc", "remote", "add", "-d", "local", "dvc-store", cwd=root)
    sh("dvc", "add", "-q", *raw, cwd=root)
    sh("dvc", "push", "-q", *[f"{r}.dvc" for r in raw], cwd=root)
    if repro:
        sh("dvc", "repro", cwd=root)
    commit(root, "sample project" + (", pipeline run" if repro else ""))
    return root


def gzip_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, gzip.GzipFile(dst, "wb", mtime=0) as fout:
        shutil.copyfileobj(fin, fout)


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    """~5,000 real labelled URLs from the five training sources."""
    frames = [pd.read_csv(SAMPLES / SAMPLE_FILES[name], dtype=str, keep_default_na=False)[["url", "label"]]
              for name in ("ebbu2017", "phishstorm", "esdaung2021", "citizenlab", "jpcert")]
    frame = pd.concat(frames, ignore_index=True).drop_duplicates("url")
    frame["label"] = frame["label"].astype(int)
    return frame.reset_index(drop=True)


@pytest.fixture(scope="session")
def small_model(sample_frame):
    """A small ensemble fitted on the sample: fast enough for every parity test."""
    from pipeline.training.model import build_model, fit

    return fit(build_model(SMALL_TRAIN_PARAMS), sample_frame["url"], sample_frame["label"].to_numpy())


@pytest.fixture(scope="session")
def small_onnx(small_model):
    from pipeline.training.onnx_export import to_onnx

    return to_onnx(small_model, 0.5).SerializeToString()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def bench_smoke_section(tmp_path: Path, section: str, timeout: int) -> dict:
    """Run one section of benchmarks/bench.py at smoke sizes as a user would; its results.json entry."""
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(REPO / "benchmarks/bench.py"), "--smoke", "--sections", section,
                    "--out-dir", str(out), "--workdir", str(tmp_path / "work")], check=True, cwd=REPO,
                   capture_output=True, text=True, timeout=timeout)
    return json.loads((out / "results.json").read_text())["sections"][section]
