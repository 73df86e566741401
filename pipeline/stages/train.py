"""Stage `train`: fit the ensemble on the training split and save it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import joblib
import pandas as pd

from pipeline import paths
from pipeline.stages import add_stage_command
from pipeline.training.model import build_model, fit, vocabulary_size

log = logging.getLogger(__name__)
COLUMNS = ["url", "label"]  # all the fit uses: the other split columns would only take memory


def run(params: dict, train_path: Path = paths.TRAIN, model_path: Path = paths.MODEL):
    train = pd.read_parquet(train_path, columns=COLUMNS)
    model = build_model(params["train"])
    started = time.perf_counter()
    log.info("train: fitting %d members on %s URLs ...", len(model.estimators), f"{len(train):,}")
    fit(model, train["url"], train["label"].to_numpy())
    print(f"train: done in {time.perf_counter() - started:.1f}s; "
          f"vocabulary {vocabulary_size(model):,} n-grams (host and path)")
    model_path.parent.mkdir(parents=True, exist_ok=True)
    # Uncompressed: zlib builds (zlib, zlib-ng) compress the same bytes differently, and the DVC
    # remote's git packs compress the file anyway (2.9 MB on disk, 1.2 MB packed).
    joblib.dump(model, model_path, compress=0)
    return model


def register(subparsers) -> None:
    add_stage_command(subparsers, "train",
                      "fit the soft-voting ensemble (DVC stage)", __doc__, run)
