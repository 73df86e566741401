"""What the serving sections (serving, levers, candidates, profile) run on: a fitted model, its export, URLs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from benchmarks._common import repo_params
from benchmarks._smoke import smoke_train_params
from pipeline import paths


@dataclass(eq=False)  # compared by identity: the levers' refits are cached per Inputs (benchmarks/_refits.py)
class Inputs:
    model: Any                              # the fitted VotingClassifier
    onnx_bytes: bytes                       # the exported ensemble
    urls: np.ndarray                        # object array of URLs to score (from the test split)
    train: pd.DataFrame | None = None       # url, label (levers: retraining)
    test: pd.DataFrame | None = None        # url, label (levers: accuracy)
    train_params: dict[str, Any] | None = None  # params['train'] of the model
    model_path: Path | None = None
    onnx_path: Path | None = None
    baseline_onnx: bytes | None = None      # another graph of the same model, timed in the reconciliation
    future: pd.DataFrame | None = None      # url, label of the future split (levers: accuracy there too)


def load_inputs(model: Path, onnx: Path, prepared: Path, smoke: bool, baseline_onnx: Path | None = None) -> Inputs:
    """The shipped model, its ONNX export and URLs from the prepared test split (``smoke``: slices of it)."""
    columns = ["url", "label"]
    test = pd.read_parquet(prepared / paths.TEST.name, columns=columns)
    train = pd.read_parquet(prepared / paths.TRAIN.name, columns=columns)
    future = pd.read_parquet(prepared / paths.FUTURE.name, columns=columns)
    n = 256 if smoke else 4096
    urls = test["url"].sample(n=min(n, len(test)), random_state=0).to_numpy(dtype=object)
    params = repo_params()["train"]
    if smoke:  # levers retrain on a slice
        train = train.sample(n=min(3000, len(train)), random_state=0)
        test = test.sample(n=min(2000, len(test)), random_state=0)
        future = future.sample(n=min(1000, len(future)), random_state=0)
        params = smoke_train_params(params)
    return Inputs(model=joblib.load(model), onnx_bytes=onnx.read_bytes(), urls=urls, train=train, test=test,
                  train_params=params, model_path=model, onnx_path=onnx,
                  baseline_onnx=baseline_onnx.read_bytes() if baseline_onnx else None, future=future)
