"""Stage `final-fit`: the model that is released, refitted with the same recipe on train + future.

The held-out model (stage `train`) never sees the future split, so the future split and the
backtest can measure how a model does on months after its data. The product should not get
that handicapped model: it gets this one, trained on the future split too, so its data end in
the newest month the repository holds. Its threshold is chosen on the validation split, which
neither model trains on, with the same rule as the held-out model's; its test metrics are
measured on the test split, which neither model trains on either. What the future split and the
backtest say about the held-out model is the estimate for this one (model card, manifest).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.common import write_json
from pipeline.stages import add_stage_command
from pipeline.stages.operating_point import operating_points
from pipeline.training.evaluation import rates_entry
from pipeline.training.metrics import metrics_with_intervals
from pipeline.training.model import build_model, fit, scores

log = logging.getLogger(__name__)
TRAINED_ON = ("train", "future")
COLUMNS = ["url", "label", "source", "first_seen"]


def training_rows(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The final fit's rows, in a fixed order (train, then future), as each split stores them."""
    return pd.concat([splits[name][COLUMNS] for name in TRAINED_ON], ignore_index=True)


def data_freshness(rows: pd.DataFrame) -> dict:
    """The newest first-seen month the model trained on, overall and per dated source and class."""
    dated = rows[rows["first_seen"].astype(str) != ""]
    months = dated["first_seen"].astype(str).str[:7]
    per_source = {f"{source}/{'phishing' if label else 'legitimate'}": month
                  for (source, label), month in months.groupby([dated["source"], dated["label"]]).max().items()}
    phishing = months[dated["label"].to_numpy() == 1]
    return {"newest_first_seen_month": months.max() if len(months) else None,
            "newest_phishing_month": phishing.max() if len(phishing) else None,
            "newest_month_by_source": dict(sorted(per_source.items()))}


def describe_rows(rows: pd.DataFrame) -> dict:
    return {"splits": list(TRAINED_ON), "rows": int(len(rows)), "phishing": int((rows["label"] == 1).sum()),
            "legitimate": int((rows["label"] == 0).sum()), **data_freshness(rows)}


def run(params: dict, prepared: Path = paths.PREPARED, model_path: Path = paths.FINAL_MODEL,
        out: Path = paths.FINAL_FIT) -> dict:
    splits = {name: pd.read_parquet(prepared / f"{name}.parquet") for name in (*TRAINED_ON, "validation", "test")}
    rows = training_rows(splits)
    model = build_model(params["train"])
    started = time.perf_counter()
    log.info("final-fit: fitting on %s URLs (train + future) ...", f"{len(rows):,}")
    fit(model, rows["url"], rows["label"].to_numpy())
    print(f"final-fit: done in {time.perf_counter() - started:.1f}s on {len(rows):,} URLs")
    model_path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_path, compress=0)  # uncompressed, as in `train` (same bytes everywhere)

    validation, test = splits["validation"], splits["test"]
    settings, evaluation = params["operating_point"], params["evaluate"]
    p_val, members_val = scores(model, validation["url"])
    operating = operating_points(validation["label"].to_numpy(), p_val, members_val,
                                 validation["source"].to_numpy(), settings["target_fpr"],
                                 settings.get("min_legitimate_per_source", 0))
    operating["validation_rows"] = int(len(validation))
    threshold = operating["ensemble"]["threshold"]
    p_test = scores(model, test["url"])[0]
    y_test = test["label"].to_numpy()
    doc = {"trained_on": describe_rows(rows), "operating_point": operating,
           "test": metrics_with_intervals(y_test, p_test, threshold, evaluation["fpr_points"],
                                          evaluation["bootstrap_resamples"], evaluation["seed"]),
           "test_per_source": per_source_rates(test, p_test, threshold)}
    write_json(out, doc)
    t = doc["test"]
    print(f"final-fit: threshold {threshold:.6f} (validation FPR {operating['ensemble']['validation_fpr']:.4f}); "
          f"test ROC AUC {t['roc_auc']['value']:.4f}, recall {t['recall']['value']:.4f}, "
          f"FPR {t['fpr']['value']:.4f}; trained on data up to {doc['trained_on']['newest_phishing_month']}")
    return doc


def per_source_rates(test: pd.DataFrame, p: np.ndarray, threshold: float) -> dict:
    sources, y = test["source"].to_numpy(), test["label"].to_numpy()
    return {str(s): rates_entry(y[sources == s], p[sources == s], threshold) for s in sorted(set(sources))}


def register(subparsers) -> None:
    add_stage_command(subparsers, "final-fit",
                      "refit the recipe on train + future: the released model (DVC stage)", __doc__, run)
