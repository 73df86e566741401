"""Stage `evaluate`: test-split metrics with intervals, members, slices, out-of-source recall, plots."""
from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from pipeline.evaluation import evaluate
from pipeline.model import member_proba, phishing_proba
from pipeline.stages import add_stage_command
from pipeline.params import read_json, write_json
from pipeline.plots import confusion_png, curves_png, recall_by_year_png
from pipeline.slices import strip_scheme_and_www

TEST = Path("data/prepared/test.parquet")
OUT_OF_SOURCE = Path("data/prepared/out_of_source.parquet")
MODEL = Path("models/model.joblib")
OPERATING = Path("reports/operating_point.json")
METRICS = Path("metrics.json")
PLOTS = Path("plots")


def run(params: dict, test_path: Path = TEST, oos_path: Path = OUT_OF_SOURCE, model_path: Path = MODEL,
        operating_path: Path = OPERATING, metrics_path: Path = METRICS, plots_dir: Path = PLOTS) -> dict:
    test = pd.read_parquet(test_path)
    oos = pd.read_parquet(oos_path)
    oos = oos[~oos["seen_in_training"]]
    model = joblib.load(model_path)
    operating = read_json(operating_path)
    y = test["label"].to_numpy()

    print(f"evaluate: scoring {len(test):,} test URLs, {len(oos):,} out-of-source URLs ...", flush=True)
    p = phishing_proba(model, test["url"])
    members = member_proba(model, test["url"])
    stripped = phishing_proba(model, test["url"].map(strip_scheme_and_www))
    oos_p = phishing_proba(model, oos["url"]) if len(oos) else np.zeros(0)
    print(f"evaluate: bootstrapping {params['evaluate']['bootstrap_resamples']} resamples ...", flush=True)
    doc = evaluate(y, p, members, test["url"], operating, params["evaluate"], stripped,
                   {"p": oos_p, "year": oos["year"].to_numpy()})
    write_json(metrics_path, doc)

    threshold = operating["ensemble"]["threshold"]
    plots_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"actual": np.where(y == 1, "phishing", "legitimate"),
                  "predicted": np.where(p >= threshold, "phishing", "legitimate")}
                 ).to_csv(plots_dir / "confusion.csv", index=False)
    confusion_png(doc["ensemble"]["confusion"], plots_dir / "confusion.png",
                  f"ensemble @ threshold {threshold:.3f}")
    scores = {"ensemble": p, **members}
    thresholds = {"ensemble": threshold, **{k: v["threshold"] for k, v in operating["members"].items()}}
    curves_png(y, scores, plots_dir / "curves.png", thresholds)
    _curve_tables(y, p, plots_dir)
    recall_by_year_png([{"year": k, **v} for k, v in doc["out_of_source"]["recall_by_year"].items()],
                       plots_dir / "recall_by_year.png")
    _print_summary(doc)
    return doc


def _curve_tables(y, p, plots_dir: Path) -> None:
    """ROC/PR points for `dvc plots` (thinned to keep the files small and diffable)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 400)).astype(int))
    pd.DataFrame({"fpr": fpr[keep].round(6), "tpr": tpr[keep].round(6)}).to_csv(plots_dir / "roc.csv", index=False)
    precision, recall, _ = precision_recall_curve(y, p)
    keep = np.unique(np.linspace(0, len(recall) - 1, min(len(recall), 400)).astype(int))
    pd.DataFrame({"recall": recall[keep].round(6), "precision": precision[keep].round(6)}
                 ).to_csv(plots_dir / "pr.csv", index=False)


def _print_summary(doc: dict) -> None:
    rows = [("ensemble", doc["ensemble"])] + list(doc["members"].items())
    print(f"  {'model':<16}{'ROC AUC':>9}{'PR AUC':>9}{'TPR@1e-3':>10}{'TPR@1e-2':>10}{'recall':>8}{'FPR':>8}")
    for name, m in rows:
        print(f"  {name:<16}{m['roc_auc']['value']:>9.4f}{m['pr_auc']['value']:>9.4f}"
              f"{m['tpr_at_fpr_0.001']['value']:>10.4f}{m['tpr_at_fpr_0.01']['value']:>10.4f}"
              f"{m['recall']['value']:>8.4f}{m['fpr']['value']:>8.4f}")
    oos = doc.get("out_of_source", {})
    if oos:
        years = ", ".join(f"{y}: {v['recall']:.2f}" for y, v in oos["recall_by_year"].items())
        print(f"  out-of-source recall {oos['recall']:.3f} by year: {years}")


def register(subparsers) -> None:
    add_stage_command(subparsers, "evaluate",
                      "test metrics, bootstrap intervals, slices, plots (DVC stage)", __doc__, run)
