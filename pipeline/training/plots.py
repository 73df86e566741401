"""Plots a reviewer would rather look at than read."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from pipeline.common import plot_text

_META = {"Software": None, "Creator": None, "Producer": None, "CreationDate": None}


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def confusion_png(cm: dict, path: Path, title: str) -> None:
    matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        share = v / max(matrix[i].sum(), 1)
        ax.text(j, i, f"{v:,}\n{share:.1%}", ha="center", va="center",
                color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], ["legitimate", "phishing"])
    ax.set_yticks([0, 1], ["legitimate", "phishing"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(plot_text(title))
    _save(fig, path)


def curves_png(y, scores: dict[str, np.ndarray], path: Path, operating: dict[str, float] | None = None) -> None:
    """ROC (log FPR axis, where the product operates) and precision-recall, one line per model."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        roc_ax.plot(np.maximum(fpr, 1e-5), tpr, label=plot_text(name))
        precision, recall, _ = precision_recall_curve(y, p)
        pr_ax.plot(recall, precision, label=plot_text(name))
        if operating and name in operating:
            t = operating[name]
            flagged = p >= t
            roc_ax.plot(max(flagged[y == 0].mean(), 1e-5), flagged[y == 1].mean(), "o", color="black")
    roc_ax.set_xscale("log")
    roc_ax.set_xlim(1e-4, 1)
    roc_ax.set_xlabel("false positive rate (log)")
    roc_ax.set_ylabel("true positive rate")
    roc_ax.set_title("ROC (dot = operating point)")
    pr_ax.set_xlabel("recall")
    pr_ax.set_ylabel("precision")
    pr_ax.set_title("precision-recall")
    for ax in (roc_ax, pr_ax):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left" if ax is pr_ax else "lower right", fontsize=8)
    _save(fig, path)


def recall_by_year_png(table: list[dict], path: Path) -> None:
    years = [row["year"] for row in table]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar([plot_text(y) for y in years], [row["recall"] for row in table], color="tab:red")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall at operating threshold")
    ax.set_title("Out-of-source check: PhishTank recall by submission year")
    _save(fig, path)


def future_by_month_png(table: dict, path: Path, target_fpr: float) -> None:
    """Per month of the future split: recall (top) and false-positive rate against the target (bottom)."""
    months = list(table)
    x = np.arange(len(months))
    fig, (rec_ax, fpr_ax) = plt.subplots(2, 1, sharex=True, figsize=(max(6, 0.3 * len(months) + 2), 4.6),
                                         gridspec_kw={"height_ratios": [3, 2]})
    recall = [table[m].get("recall", np.nan) for m in months]
    fpr = [100 * table[m].get("fpr", np.nan) for m in months]
    rec_ax.bar(x, recall, color="tab:red")
    rec_ax.set_ylim(0, 1)
    rec_ax.set_ylabel("recall")
    rec_ax.set_title("Future split by month (first seen after the training cut-off)")
    fpr_ax.plot(x, fpr, "o", color="tab:blue")
    fpr_ax.axhline(100 * target_fpr, color="black", linestyle="--", linewidth=1, label=f"target {target_fpr:.0%}")
    fpr_ax.set_ylim(0, max(3 * 100 * target_fpr, np.nanmax(fpr + [0]) * 1.1))
    fpr_ax.set_ylabel("FPR (%)")
    fpr_ax.legend(fontsize=8, loc="upper left")
    fpr_ax.set_xticks(x, [plot_text(m) for m in months], rotation=90, fontsize=7)
    for ax in (rec_ax, fpr_ax):
        ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def backtest_png(rows: list[dict], decay: dict, path: Path) -> None:
    """Recall by model age (months after the training cut-off): one line per cut-off, and the
    phishing-weighted mean over cut-offs (the decay table of reports/backtest.json)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    by_cutoff: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        if row.get("recall") is not None:
            by_cutoff.setdefault(row["cutoff"], []).append((row["age_months"], row["recall"]))
    for cutoff, points in sorted(by_cutoff.items()):
        cutoff_ages, recalls = zip(*sorted(points))
        ax.plot(cutoff_ages, recalls, "o-", alpha=0.5, label=f"trained to {plot_text(cutoff)}")
    ages = sorted(int(a) for a in decay)
    ax.plot(ages, [decay[str(a)]["recall"] if decay[str(a)]["recall"] is not None else np.nan for a in ages],
            "k-", linewidth=2.5, label="all cut-offs (weighted by phishing URLs)")
    ax.set_xticks(ages)
    ax.set_xlabel("model age: months after the training cut-off")
    ax.set_ylabel("recall at the model's threshold")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title("Backtest: how fast recall decays")
    ax.legend(fontsize=7, loc="lower left")
    _save(fig, path)
