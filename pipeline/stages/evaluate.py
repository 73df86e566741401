"""Stage `evaluate`: test-split metrics with intervals, per source, slices, the future split by month,
out-of-source recall, the leave-one-source-out table, plots."""
from __future__ import annotations

import logging
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from pipeline import paths
from pipeline.common import read_json, terminal, write_csv, write_json
from pipeline.stages import add_stage_command
from pipeline.training.evaluation import evaluate, rates_by
from pipeline.training.metrics import metrics_with_intervals
from pipeline.training.model import phishing_proba, scores
from pipeline.training.plots import (
    confusion_png,
    curves_png,
    future_by_month_png,
    recall_by_year_png,
)
from pipeline.training.slices import strip_scheme_and_www

log = logging.getLogger(__name__)


def run(params: dict, test_path: Path = paths.TEST, future_path: Path = paths.FUTURE,
        oos_path: Path = paths.OUT_OF_SOURCE, model_path: Path = paths.MODEL,
        operating_path: Path = paths.OPERATING_POINT, loso_path: Path = paths.LEAVE_ONE_SOURCE_OUT,
        metrics_path: Path = paths.METRICS, plots_dir: Path = paths.PLOTS,
        final_path: Path = paths.FINAL_MODEL) -> dict:
    test, future = pd.read_parquet(test_path), pd.read_parquet(future_path)
    oos = pd.read_parquet(oos_path)
    oos = oos[~oos["seen_in_training"]]
    model = joblib.load(model_path)
    operating = read_json(operating_path)
    y = test["label"].to_numpy()

    log.info("evaluate: scoring %s test, %s future and %s out-of-source URLs ...", f"{len(test):,}",
             f"{len(future):,}", f"{len(oos):,}")
    p, members = scores(model, test["url"])
    stripped = phishing_proba(model, test["url"].map(strip_scheme_and_www))
    oos_p = phishing_proba(model, oos["url"]) if len(oos) else np.zeros(0)
    future_p, future_members = scores(model, future["url"]) if len(future) else \
        (np.zeros(0), {k: np.zeros(0) for k in members})
    future_scores = {"frame": future, "p": future_p, "members": future_members}
    log.info("evaluate: bootstrapping %d resamples ...", params["evaluate"]["bootstrap_resamples"])
    doc = evaluate(test, p, members, operating, params["evaluate"], stripped,
                   {"p": oos_p, "year": oos["year"].to_numpy()}, future_scores)
    doc["leave_one_source_out"] = read_json(loso_path)
    doc["released_model"] = released_model_metrics(test, final_path, operating["released"], params["evaluate"])
    write_json(metrics_path, doc)
    _plots(doc, y, p, members, operating, plots_dir)
    _print_summary(doc)
    return doc


def released_model_metrics(test: pd.DataFrame, final_path: Path, operating: dict, settings: dict) -> dict:
    """The released model (the final fit) on the test split, which it never trained on, at its threshold."""
    log.info("evaluate: scoring the test split with the released model (final fit) ...")
    p = phishing_proba(joblib.load(final_path), test["url"])
    y, threshold = test["label"].to_numpy(), operating["ensemble"]["threshold"]
    return {"threshold": threshold,
            "test": metrics_with_intervals(y, p, threshold, settings["fpr_points"], settings["bootstrap_resamples"],
                                           settings["seed"]),
            "test_per_source": rates_by(test["source"], y, p, threshold)}


def _plots(doc: dict, y, p, members: dict, operating: dict, plots_dir: Path) -> None:
    threshold = operating["ensemble"]["threshold"]
    plots_dir.mkdir(parents=True, exist_ok=True)
    write_csv(pd.DataFrame({"actual": np.where(y == 1, "phishing", "legitimate"),
                            "predicted": np.where(p >= threshold, "phishing", "legitimate")}),
              plots_dir / "confusion.csv")
    confusion_png(doc["ensemble"]["confusion"], plots_dir / "confusion.png", f"ensemble @ threshold {threshold:.3f}")
    scores = {"ensemble": p, **members}
    thresholds = {"ensemble": threshold, **{k: v["threshold"] for k, v in operating["members"].items()}}
    curves_png(y, scores, plots_dir / "curves.png", thresholds)
    _curve_tables(y, p, plots_dir)
    recall_by_year_png([{"year": k, **v} for k, v in doc["out_of_source"]["recall_by_year"].items()],
                       plots_dir / "recall_by_year.png")
    future_by_month_png(doc["future"]["by_month"], plots_dir / "future_by_month.png", operating["target_fpr"])


def _curve_tables(y, p, plots_dir: Path) -> None:
    """ROC/PR points for `dvc plots` (thinned to keep the files small and diffable)."""
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 400)).astype(int))
    pd.DataFrame({"fpr": fpr[keep].round(6), "tpr": tpr[keep].round(6)}).to_csv(plots_dir / "roc.csv", index=False)
    precision, recall, _ = precision_recall_curve(y, p)
    keep = np.unique(np.linspace(0, len(recall) - 1, min(len(recall), 400)).astype(int))
    pd.DataFrame({"recall": recall[keep].round(6), "precision": precision[keep].round(6)}
                 ).to_csv(plots_dir / "pr.csv", index=False)


def _print_summary(doc: dict) -> None:
    rows = [("ensemble", doc["ensemble"])] + list(doc["members"].items())
    if doc.get("released_model"):
        rows.append(("released (final)", doc["released_model"]["test"]))
    print(f"  {'model':<16}{'ROC AUC':>9}{'PR AUC':>9}{'TPR@1e-3':>10}{'TPR@1e-2':>10}{'recall':>8}{'FPR':>8}")
    for name, m in rows:
        print(f"  {terminal(name):<16}{m['roc_auc']['value']:>9.4f}{m['pr_auc']['value']:>9.4f}"
              f"{m['tpr_at_fpr_0.001']['value']:>10.4f}{m['tpr_at_fpr_0.01']['value']:>10.4f}"
              f"{m['recall']['value']:>8.4f}{m['fpr']['value']:>8.4f}")
    for source, entry in doc["per_source"].items():
        e, gain = entry["ensemble"], entry["ensemble_vs_best_member"]
        auc = f"ROC AUC {e['roc_auc']:.4f}  " if "roc_auc" in e else ""
        rates = "  ".join(f"{k} {e[k]:.4f}" for k in ("recall", "fpr") if k in e)
        d = gain["delta"]
        print(f"  {terminal(source):<14} {e['rows']:>7,} rows  {auc}{rates}  vs {terminal(gain['best_member'])} "
              f"{gain['metric']} {d['value']:+.4f} [{d['ci95_low']:+.4f}, {d['ci95_high']:+.4f}]")
    future = doc.get("future")
    if future and future["rows"]:
        newest = next(v for k, v in future.items() if k.startswith("newest_"))
        print(f"  future split ({future['rows']:,} rows from {future['first_seen_min']}): recall "
              f"{future.get('recall', float('nan')):.4f}, FPR {future.get('fpr', float('nan')):.4f}; "
              f"newest {len(newest['months'])} months recall {newest['recall']:.4f}")
    oos = doc.get("out_of_source", {})
    if oos:
        years = ", ".join(f"{y}: {v['recall']:.2f}" for y, v in oos["recall_by_year"].items())
        print(f"  out-of-source recall {oos['recall']:.3f} by year: {years}")


def register(subparsers) -> None:
    add_stage_command(subparsers, "evaluate",
                      "test metrics, bootstrap intervals, slices, plots (DVC stage)", __doc__, run)
