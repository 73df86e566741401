"""Shared fixtures: small real-data samples (tests/data) and a model trained on them once."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "data"

SMALL_TRAIN_PARAMS = {
    "seed": 42,
    "char_tfidf": {"ngram_min": 1, "ngram_max": 4, "max_features": 800, "min_df": 2},
    "logistic_regression": {"C": 4.0, "max_iter": 1000},
    "lexical_forest": {"n_estimators": 15, "max_depth": 8, "min_samples_leaf": 2, "max_features": 0.5},
    "weights": [3.0, 1.0],
}


def gzip_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, gzip.GzipFile(dst, "wb", mtime=0) as fout:
        shutil.copyfileobj(fin, fout)


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    """~3,000 real labelled URLs from both training sources."""
    frames = [pd.read_csv(SAMPLES / f"{name}_sample.csv", dtype=str, keep_default_na=False)
              for name in ("ebbu2017", "phishstorm")]
    frame = pd.concat(frames, ignore_index=True).drop_duplicates("url")
    frame["label"] = frame["label"].astype(int)
    return frame.reset_index(drop=True)


@pytest.fixture(scope="session")
def small_model(sample_frame):
    """A small ensemble fitted on the sample: fast enough for every parity test."""
    from pipeline.model import build_model, fit

    return fit(build_model(SMALL_TRAIN_PARAMS), sample_frame["url"], sample_frame["label"].to_numpy())


@pytest.fixture(scope="session")
def small_onnx(small_model):
    from pipeline.onnx_export import to_onnx

    return to_onnx(small_model, 0.5).SerializeToString()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
