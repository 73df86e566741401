"""Stage `backtest`: train on everything up to month M, test on M+1..M+h, for several cut-offs.

The table and plot show how fast recall decays with the model's age, which is
what says how often to retrain. Writes ``reports/backtest.json``,
``reports/backtest.csv`` and ``plots/backtest.png``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from joblib import Parallel, delayed
from tqdm import tqdm

from pipeline import paths
from pipeline.common import PipelineError, write_csv, write_json
from pipeline.stages import add_stage_command
from pipeline.training.plots import backtest_png
from pipeline.training.refits import backtest_fold, decay_summary
from pipeline.training.splitting import ALL_SPLITS, future_split_start, month_start

TABLE_COLUMNS = ["cutoff", "age_months", "month", "train_rows", "threshold", "rows", "phishing", "legitimate",
                 "recall", "fpr"]


def load_splits(prepared: Path = paths.PREPARED) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(prepared / f"{name}.parquet") for name in ALL_SPLITS}


def run_folds(fold, keys: list, splits: dict, params: dict, settings: dict, what: str) -> list:
    """``fold(key, splits, params, settings)`` for every key, in parallel, results in key order."""
    jobs = Parallel(n_jobs=int(settings["n_jobs"]), return_as="generator")(
        delayed(fold)(key, splits, params, settings) for key in keys)
    return list(tqdm(jobs, total=len(keys), desc=what, unit="fold", file=sys.stdout))


def check_cutoffs(cutoffs: list[str], horizon: int, future_from: str | None) -> None:
    """A backtest must never train on the future split: every cut-off ends before it."""
    for cutoff in cutoffs:
        if future_from and month_start(cutoff, 1) > str(future_from):
            raise PipelineError(f"params backtest.cutoffs: {cutoff} ends after the future split's start "
                                f"{future_from} (split.future_months); a backtest model would train on it")


def run(params: dict, out: Path = paths.BACKTEST, table: Path = paths.BACKTEST_TABLE,
        plot: Path = paths.BACKTEST_PLOT) -> dict:
    settings = params["backtest"]
    cutoffs = [str(c) for c in settings["cutoffs"]]
    splits = load_splits()
    check_cutoffs(cutoffs, int(settings["horizon_months"]), future_split_start(splits["future"]))
    folds = run_folds(backtest_fold, cutoffs, splits, params, settings, "backtest")
    rows = [row for fold in folds for row in fold]
    doc = {"horizon_months": settings["horizon_months"], "max_train_rows": settings.get("max_train_rows"),
           "seed": settings["seed"], "rows": rows, "decay": decay_summary(rows)}
    write_json(out, doc)
    write_csv(pd.DataFrame([{k: r.get(k) for k in TABLE_COLUMNS} for r in rows]), table)
    backtest_png(rows, doc["decay"], plot)
    for age, d in doc["decay"].items():
        recall = "n/a" if d["recall"] is None else f"{d['recall']:.4f}"
        print(f"  model age {age} month(s): recall {recall} over {d['phishing']:,} phishing URLs "
              f"({d['cutoffs']} cut-offs)")
    return doc


def register(subparsers) -> None:
    add_stage_command(subparsers, "backtest",
                      "retrain up to each cut-off month, test on the months after (DVC stage)", __doc__, run)
