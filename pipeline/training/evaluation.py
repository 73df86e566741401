"""Pure evaluation: predictions in, the metrics.json document out."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.training.metrics import (
    headline_metrics,
    metrics_with_intervals,
    paired_bootstrap_delta,
    paired_rate_delta,
    threshold_metrics,
)
from pipeline.training.slices import slice_labels


def slice_metrics(y: np.ndarray, p: np.ndarray, urls: pd.Series, threshold: float, length_bins) -> dict:
    """Per slice: rows, phishing share, ROC AUC (when both classes occur), recall and FPR."""
    out: dict = {}
    y = np.asarray(y)
    for family, labels in slice_labels(urls.reset_index(drop=True), length_bins).items():
        out[family] = {}
        for name in sorted(labels.unique()):
            mask = (labels == name).to_numpy()
            out[family][name] = rates_entry(y[mask], np.asarray(p)[mask], threshold)
    return out


def rates_entry(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Rows, class counts, and whichever of recall / FPR / precision / ROC AUC the classes allow."""
    y, p = np.asarray(y), np.asarray(p)
    rates = threshold_metrics(y, p, threshold)
    entry = {"rows": len(y), "phishing": int((y == 1).sum()), "legitimate": int((y == 0).sum()),
             "phishing_share": float(y.mean()) if len(y) else 0.0}
    if entry["phishing"]:
        entry["recall"] = rates["recall"]
    if entry["legitimate"]:
        entry["fpr"] = rates["fpr"]
    if entry["phishing"] and entry["legitimate"]:
        entry["precision"] = rates["precision"]
        entry["roc_auc"] = float(roc_auc_score(y, p))
    return entry


def rates_by(groups, y, p, threshold: float) -> dict:
    """Per group (e.g. source): rows, class counts and whichever of recall / FPR / precision / ROC AUC
    its classes allow, at ``threshold``."""
    groups, y, p = np.asarray(groups, dtype=object).astype(str), np.asarray(y), np.asarray(p)
    return {g: rates_entry(y[groups == g], p[groups == g], threshold) for g in sorted(set(groups))}


def recall_by_year(years: np.ndarray, p: np.ndarray, threshold: float, min_rows: int = 20) -> dict:
    """Recall on an all-phishing stream per year; sparse years are pooled into '<first full year'."""
    frame = pd.DataFrame({"year": np.asarray(years), "hit": np.asarray(p) >= threshold})
    counts = frame.groupby("year")["hit"].agg(["size", "mean"])
    out, pooled = {}, frame[frame["year"].isin(counts.index[counts["size"] < min_rows])]
    if len(pooled):
        out[f"<={int(pooled['year'].max())} (pooled)"] = {"rows": len(pooled), "recall": float(pooled["hit"].mean())}
    for year, row in counts[counts["size"] >= min_rows].iterrows():
        out[str(int(year))] = {"rows": int(row["size"]), "recall": float(row["mean"])}
    return out


def by_month(first_seen: np.ndarray, y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """{'YYYY-MM': rates} for dated rows, oldest first (FPR only where legitimate rows exist)."""
    months = pd.Series(np.asarray(first_seen, dtype=object)).str[:7].to_numpy()
    y, p = np.asarray(y), np.asarray(p)
    return {str(m): rates_entry(y[months == m], p[months == m], threshold)
            for m in sorted(set(months)) if m}


def newest_months(table: dict, n: int) -> dict:
    """Recall over the ``n`` newest months that hold phishing rows (the model's freshest blind spot)."""
    months = [m for m in sorted(table) if table[m]["phishing"]][-n:]
    phishing = sum(table[m]["phishing"] for m in months)
    hits = sum(table[m]["recall"] * table[m]["phishing"] for m in months)
    return {"months": months, "phishing": int(phishing), "recall": hits / phishing if phishing else None}


def future_metrics(frame: pd.DataFrame, p: np.ndarray, member_ps: dict, threshold: float,
                   member_thresholds: dict, newest: int) -> dict:
    """The future split: overall (ensemble and members), per month, and the newest months' recall."""
    y = frame["label"].to_numpy()
    table = by_month(frame["first_seen"].to_numpy(), y, p, threshold)
    return {"rows": len(frame), **rates_entry(y, p, threshold),
            "first_seen_min": str(frame["first_seen"].min()) if len(frame) else None,
            "first_seen_max": str(frame["first_seen"].max()) if len(frame) else None,
            "members": {name: rates_entry(y, mp, member_thresholds[name]) for name, mp in member_ps.items()},
            "by_month": table, f"newest_{newest}_months": newest_months(table, newest)}


def member_gain(y: np.ndarray, p: np.ndarray, member_ps: dict, threshold: float, member_thresholds: dict,
                fpr_points, n: int, seed: int) -> dict:
    """The ensemble's paired-bootstrap gain over its best member on these rows.

    The metric is ROC AUC where both classes occur, else recall (phishing only)
    or specificity, 1 - FPR (legitimate only), each at the model's own threshold.
    """
    y = np.asarray(y)
    both = 0 < y.sum() < len(y)
    if both:
        metric = "roc_auc"
        point = {name: headline_metrics(y, mp, member_thresholds[name], fpr_points)[metric]
                 for name, mp in member_ps.items()}
    else:
        metric = "recall" if y.sum() else "specificity"
        hits = {name: _hits(mp, member_thresholds[name], metric) for name, mp in member_ps.items()}
        point = {name: float(h.mean()) for name, h in hits.items()}
    best = max(point, key=lambda k: (point[k], k))
    if both:
        delta = paired_bootstrap_delta(y, p, member_ps[best], threshold, member_thresholds[best], fpr_points,
                                       n, seed)[metric]
    else:
        delta = paired_rate_delta(_hits(p, threshold, metric), hits[best], n, seed)
    return {"metric": metric, "best_member": best, "best_member_value": point[best], "delta": delta,
            "significant_gain": delta["ci95_low"] > 0, "significant_loss": delta["ci95_high"] < 0}


def _hits(p: np.ndarray, threshold: float, metric: str) -> np.ndarray:
    flagged = np.asarray(p) >= threshold
    return flagged if metric == "recall" else ~flagged


def per_source(frame: pd.DataFrame, p: np.ndarray, member_ps: dict, threshold: float, member_thresholds: dict,
               params: dict) -> dict:
    """Per source of the test split: the ensemble, each member, and the ensemble's gain over the best member."""
    out = {}
    sources = frame["source"].to_numpy()
    y = frame["label"].to_numpy()
    for source in sorted(set(sources)):
        mask = sources == source
        members = {name: mp[mask] for name, mp in member_ps.items()}
        out[str(source)] = {
            "ensemble": rates_entry(y[mask], p[mask], threshold),
            "members": {name: rates_entry(y[mask], mp, member_thresholds[name]) for name, mp in members.items()},
            "ensemble_vs_best_member": member_gain(y[mask], p[mask], members, threshold, member_thresholds,
                                                   params["fpr_points"], params["bootstrap_resamples"],
                                                   params["seed"]),
        }
    return out


def evaluate(test: pd.DataFrame, ensemble_p, member_ps: dict, operating: dict, params: dict,
             stripped_p: np.ndarray | None = None, oos: dict | None = None, future: dict | None = None) -> dict:
    """Assemble metrics.json: ensemble and members with intervals, the ensemble's paired gain
    over each member (pooled and per source), slices, the format-stripped view, the future split
    and the out-of-source recall."""
    y = test["label"].to_numpy()
    fpr_points, n, seed = params["fpr_points"], params["bootstrap_resamples"], params["seed"]
    threshold = operating["ensemble"]["threshold"]
    member_thresholds = {name: m["threshold"] for name, m in operating["members"].items()}
    doc = {"target_fpr": operating["target_fpr"], "threshold": threshold,
           "ensemble": metrics_with_intervals(y, ensemble_p, threshold, fpr_points, n, seed),
           "members": {}, "ensemble_minus_member": {}}
    for name, p in member_ps.items():
        t = member_thresholds[name]
        doc["members"][name] = metrics_with_intervals(y, p, t, fpr_points, n, seed)
        doc["ensemble_minus_member"][name] = paired_bootstrap_delta(
            y, ensemble_p, p, threshold, t, fpr_points, n, seed)
    doc["per_source"] = per_source(test, ensemble_p, member_ps, threshold, member_thresholds, params)
    doc["slices"] = slice_metrics(y, ensemble_p, test["url"], threshold, params["length_bins"])
    if stripped_p is not None:
        doc["format_stripped"] = {**headline_metrics(y, stripped_p, threshold, fpr_points),
                                  "max_abs_score_change": float(np.abs(stripped_p - ensemble_p).max())}
    if future is not None:
        doc["future"] = future_metrics(future["frame"], future["p"], future["members"], threshold,
                                       member_thresholds, params["newest_months"])
    if oos is not None:
        p_oos = np.asarray(oos["p"])
        doc["out_of_source"] = {"rows": len(p_oos),
                                "recall": float((p_oos >= threshold).mean()) if len(p_oos) else 0.0,
                                "recall_by_year": recall_by_year(oos["year"], p_oos, threshold)}
    return doc
