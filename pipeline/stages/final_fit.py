"""Stage `final-fit`: the model that is released, refitted with the same recipe on train + future.

Only the fit lives here, so a change to the threshold rule or to the evaluation never trains it
again: `operating-point` chooses its threshold and `evaluate` measures it on the test split
(see ``pipeline.training.final``). Writes models/final.joblib and reports/final_fit.json
(what it trained on, and the newest month of its data).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import joblib
import pandas as pd

from pipeline import paths
from pipeline.common import write_json
from pipeline.stages import add_stage_command
from pipeline.training.final import COLUMNS, TRAINED_ON, describe_rows, training_rows
from pipeline.training.model import build_model, fit

log = logging.getLogger(__name__)


def run(params: dict, prepared: Path = paths.PREPARED, model_path: Path = paths.FINAL_MODEL,
        out: Path = paths.FINAL_FIT) -> dict:
    rows = training_rows({name: pd.read_parquet(prepared / f"{name}.parquet", columns=COLUMNS)
                          for name in TRAINED_ON})
    model = build_model(params["train"])
    started = time.perf_counter()
    log.info("final-fit: fitting on %s URLs (train + future) ...", f"{len(rows):,}")
    fit(model, rows["url"], rows["label"].to_numpy())
    model_path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_path, compress=0)  # uncompressed, as in `train` (same bytes everywhere)
    doc = {"trained_on": describe_rows(rows)}
    write_json(out, doc)
    print(f"final-fit: done in {time.perf_counter() - started:.1f}s on {len(rows):,} URLs (train + future), "
          f"data up to {doc['trained_on']['newest_phishing_month']}")
    return doc


def register(subparsers) -> None:
    add_stage_command(subparsers, "final-fit",
                      "refit the recipe on train + future: the released model (DVC stage)", __doc__, run)
