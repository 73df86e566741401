"""Pure evaluation: predictions in, the metrics.json document out."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.metrics import headline_metrics, metrics_with_intervals, paired_bootstrap_delta, threshold_metrics
from pipeline.slices import slice_labels


def slice_metrics(y: np.ndarray, p: np.ndarray, urls: pd.Series, threshold: float, length_bins) -> dict:
    """Per slice: rows, phishing share, ROC AUC (when both classes occur), recall and FPR."""
    out: dict = {}
    y = np.asarray(y)
    for family, labels in slice_labels(urls.reset_index(drop=True), length_bins).items():
        out[family] = {}
        for name in sorted(labels.unique()):
            mask = (labels == name).to_numpy()
            ys, ps = y[mask], np.asarray(p)[mask]
            rates = threshold_metrics(ys, ps, threshold)
            entry = {"rows": int(mask.sum()), "phishing_share": float(ys.mean()),
                     "recall": rates["recall"], "fpr": rates["fpr"], "precision": rates["precision"]}
            if 0 < ys.sum() < len(ys):
                entry["roc_auc"] = float(roc_auc_score(ys, ps))
            out[family][name] = entry
    return out


def recall_by_year(years: np.ndarray, p: np.ndarray, threshold: float, min_rows: int = 20) -> dict:
    """Recall on an all-phishing stream per year; sparse years are pooled into '<first full year'."""
    frame = pd.DataFrame({"year": np.asarray(years), "hit": np.asarray(p) >= threshold})
    counts = frame.groupby("year")["hit"].agg(["size", "mean"])
    out, pooled = {}, frame[frame["year"].isin(counts.index[counts["size"] < min_rows])]
    if len(pooled):
        out[f"<={int(pooled['year'].max())} (pooled)"] = {"rows": int(len(pooled)), "recall": float(pooled["hit"].mean())}
    for year, row in counts[counts["size"] >= min_rows].iterrows():
        out[str(int(year))] = {"rows": int(row["size"]), "recall": float(row["mean"])}
    return out


def evaluate(y, ensemble_p, member_ps: dict, urls: pd.Series, operating: dict, params: dict,
             stripped_p: np.ndarray | None = None, oos: dict | None = None) -> dict:
    """Assemble metrics.json: ensemble and members with intervals, the ensemble's paired gain
    over each member, slices, the format-stripped view and the out-of-source recall."""
    fpr_points, n, seed = params["fpr_points"], params["bootstrap_resamples"], params["seed"]
    threshold = operating["ensemble"]["threshold"]
    doc = {"target_fpr": operating["target_fpr"], "threshold": threshold,
           "ensemble": metrics_with_intervals(y, ensemble_p, threshold, fpr_points, n, seed),
           "members": {}, "ensemble_minus_member": {}}
    for name, p in member_ps.items():
        t = operating["members"][name]["threshold"]
        doc["members"][name] = metrics_with_intervals(y, p, t, fpr_points, n, seed)
        doc["ensemble_minus_member"][name] = paired_bootstrap_delta(
            y, ensemble_p, p, threshold, t, fpr_points, n, seed)
    doc["slices"] = slice_metrics(y, ensemble_p, urls, threshold, params["length_bins"])
    if stripped_p is not None:
        doc["format_stripped"] = headline_metrics(y, stripped_p, threshold, fpr_points)
    if oos is not None:
        p_oos = np.asarray(oos["p"])
        doc["out_of_source"] = {"rows": int(len(p_oos)),
                                "recall": float((p_oos >= threshold).mean()) if len(p_oos) else 0.0,
                                "recall_by_year": recall_by_year(oos["year"], p_oos, threshold)}
    return doc
