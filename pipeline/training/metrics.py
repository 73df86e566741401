"""Pure evaluation maths: operating thresholds, headline metrics, bootstrap intervals.

Every headline metric is computed from one descending sort of the scores and
weighted cumulative sums. A bootstrap resample is then just a vector of row
multiplicities, so hundreds of resamples cost milliseconds each, and the point
estimates equal scikit-learn's ``roc_auc_score`` / ``average_precision_score``
(tested).
"""
from __future__ import annotations

from typing import Any

import numpy as np


def choose_threshold(y: np.ndarray, p: np.ndarray, target_fpr: float) -> float:
    """Lowest threshold whose false-positive rate on (y, p) is at most ``target_fpr``.

    Returned as the midpoint between two adjacent distinct scores, so no
    validation score sits exactly on it (float32/float64 round-off in the ONNX
    graph cannot flip a label), and ``score >= threshold`` is the decision rule.
    """
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    if not 0 <= target_fpr < 1:
        raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
    negatives = np.sort(p[y == 0])[::-1]
    if len(negatives) == 0:
        raise ValueError("cannot choose a threshold: the validation split has no legitimate URLs")
    allowed = int(np.floor(target_fpr * len(negatives) + 1e-9))
    if allowed >= len(negatives):
        return float(np.min(p) / 2)
    boundary = negatives[allowed]  # the highest negative score that must stay below the threshold
    above = np.unique(p[p > boundary])
    upper = above[0] if len(above) else min(1.0, boundary + 1e-6)
    return float((boundary + upper) / 2)


def source_safe_threshold(y, p, sources, target_fpr: float, min_legitimate: int) -> tuple[float, str]:
    """The lowest threshold that keeps the FPR at or below ``target_fpr`` on the pooled rows *and*
    on every source with at least ``min_legitimate`` legitimate rows; returns (threshold, the source
    that binds, or 'all sources pooled')."""
    y, p, sources = np.asarray(y), np.asarray(p, dtype=np.float64), np.asarray(sources)
    best, binding = choose_threshold(y, p, target_fpr), "all sources pooled"
    if min_legitimate > 0:
        for source in sorted(set(sources)):
            mask = sources == source
            if (y[mask] == 0).sum() >= min_legitimate:
                t = choose_threshold(y[mask], p[mask], target_fpr)
                if t > best:
                    best, binding = t, str(source)
    return best, binding


def fpr_key(point: float) -> str:
    return f"tpr_at_fpr_{point:g}"


class RankedScores:
    """Scores sorted once; metrics for any row weighting (1 = the sample itself)."""

    def __init__(self, y, p) -> None:
        y, p = np.asarray(y).astype(np.int64), np.asarray(p, dtype=np.float64)
        self.order = np.argsort(-p, kind="stable")
        self.y = y[self.order]
        self.p = p[self.order]
        # Index of the last row of each run of equal scores (one ROC point per distinct score).
        self.ends = np.r_[np.flatnonzero(np.diff(self.p) != 0), len(self.p) - 1]

    def metrics(self, weights: np.ndarray | None, threshold: float, fpr_points) -> dict:
        w = np.ones(len(self.y)) if weights is None else np.asarray(weights, dtype=np.float64)[self.order]
        tps = np.cumsum(w * self.y)[self.ends]
        fps = np.cumsum(w * (1 - self.y))[self.ends]
        pos, neg = tps[-1], fps[-1]
        if pos == 0 or neg == 0:
            raise ValueError("metrics need both classes in the sample")
        tpr = np.r_[0.0, tps / pos]
        fpr = np.r_[0.0, fps / neg]
        roc_auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        precision = tps / np.maximum(tps + fps, 1e-300)
        pr_auc = float(np.sum(np.diff(tpr) * precision))
        out = {"roc_auc": roc_auc, "pr_auc": pr_auc}
        flagged = self.p >= threshold
        tp = float(np.sum(w[flagged] * self.y[flagged]))
        fp = float(np.sum(w[flagged] * (1 - self.y[flagged])))
        out["precision"] = tp / (tp + fp) if tp + fp else 0.0
        out["recall"] = tp / pos
        out["f1"] = (2 * out["precision"] * out["recall"] / (out["precision"] + out["recall"])
                     if out["precision"] + out["recall"] else 0.0)
        out["fpr"] = fp / neg
        for point in fpr_points:
            out[fpr_key(point)] = float(tpr[fpr <= point + 1e-12].max())
        return out


def confusion(y: np.ndarray, predicted: np.ndarray) -> dict:
    y, predicted = np.asarray(y).astype(int), np.asarray(predicted).astype(int)
    return {"tn": int(((y == 0) & (predicted == 0)).sum()), "fp": int(((y == 0) & (predicted == 1)).sum()),
            "fn": int(((y == 1) & (predicted == 0)).sum()), "tp": int(((y == 1) & (predicted == 1)).sum())}


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Precision, recall, F1 and FPR of the rule ``p >= threshold`` (defined for one class too)."""
    cm = confusion(y, np.asarray(p) >= threshold)
    tp, fp, fn, tn = cm["tp"], cm["fp"], cm["fn"], cm["tn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "fpr": fp / (fp + tn) if fp + tn else 0.0}


def headline_metrics(y, p, threshold: float, fpr_points) -> dict:
    """The metrics reported everywhere (metrics.json, manifest, card, PR comment)."""
    return RankedScores(y, p).metrics(None, threshold, fpr_points)


def _both_classes(ranked: RankedScores, weights: np.ndarray) -> bool:
    drawn = np.asarray(weights)[ranked.order] > 0
    return bool(ranked.y[drawn].any() and not ranked.y[drawn].all())


def _resample_weights(n: int, n_resamples: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield np.bincount(rng.integers(0, n, n), minlength=n)


def _interval(values, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def metrics_with_intervals(y, p, threshold: float, fpr_points, n_resamples: int, seed: int,
                           level: float = 0.95) -> dict:
    """{metric: {"value", "ci95_low", "ci95_high"}} plus confusion matrix, threshold and rows.

    Percentile bootstrap over rows. Flat numeric leaves only, so ``dvc metrics
    diff`` can compare every field.
    """
    ranked = RankedScores(y, p)
    point = ranked.metrics(None, threshold, fpr_points)
    samples: dict[str, list[float]] = {k: [] for k in point}
    for w in _resample_weights(len(ranked.y), n_resamples, seed):
        if not _both_classes(ranked, w):
            continue  # a tiny sample can draw one class only; that resample defines no AUC
        for key, value in ranked.metrics(w, threshold, fpr_points).items():
            samples[key].append(value)
    out: dict[str, Any] = {}
    for key, value in point.items():
        low, high = _interval(samples[key], level) if samples[key] else (value, value)
        out[key] = {"value": value, "ci95_low": low, "ci95_high": high}
    out["threshold"] = float(threshold)
    out["confusion"] = confusion(y, np.asarray(p) >= threshold)
    out["rows"] = len(ranked.y)
    return out


def paired_bootstrap_delta(y, p_new, p_old, threshold_new: float, threshold_old: float, fpr_points,
                           n_resamples: int, seed: int, level: float = 0.95) -> dict:
    """Interval of (new - old) for each headline metric, resampling rows jointly.

    Pairing matters: both models are scored on the same resampled URLs, so the
    interval reflects the difference between the models, not test-set luck.
    """
    new, old = RankedScores(y, p_new), RankedScores(y, p_old)
    n = len(new.y)
    a0, b0 = new.metrics(None, threshold_new, fpr_points), old.metrics(None, threshold_old, fpr_points)
    deltas: dict[str, list[float]] = {k: [] for k in a0}
    for w in _resample_weights(n, n_resamples, seed):
        if not _both_classes(new, w):
            continue
        a, b = new.metrics(w, threshold_new, fpr_points), old.metrics(w, threshold_old, fpr_points)
        for key in a:
            deltas[key].append(a[key] - b[key])
    out = {}
    for key in a0:
        low, high = _interval(deltas[key], level) if deltas[key] else (a0[key] - b0[key],) * 2
        out[key] = {"value": a0[key] - b0[key], "ci95_low": low, "ci95_high": high}
    return out


def paired_rate_delta(hits_new: np.ndarray, hits_old: np.ndarray, n_resamples: int, seed: int,
                      level: float = 0.95) -> dict:
    """Interval of mean(new) - mean(old) for paired 0/1 outcomes (e.g. recall on a phishing-only source)."""
    diff = np.asarray(hits_new, dtype=np.float64) - np.asarray(hits_old, dtype=np.float64)
    n = len(diff)
    value = float(diff.mean()) if n else 0.0
    samples = [float(np.dot(w, diff) / n) for w in _resample_weights(n, n_resamples, seed)] if n else []
    low, high = _interval(samples, level) if samples else (value, value)
    return {"value": value, "ci95_low": low, "ci95_high": high}
