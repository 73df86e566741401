"""The card's own ways of writing values: metric labels and order, intervals, lists, table alignment.

Numbers go through :mod:`pipeline.formatting` (the card's precision: 4 decimals for a rate, 6 for a
threshold, 1 for a percentage); the tests parse them back. A value the outputs lack reads as
:data:`MISSING`.
"""
from __future__ import annotations

import re
from typing import Any

from pipeline.formatting import MISSING, Formatter, num
from pipeline.formatting import interval as interval_text
from pipeline.release.card.sources import Doc, Estimate, dig

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "precision": "precision",
    "recall": "recall (true-positive rate)",
    "f1": "F1",
    "fpr": "false-positive rate",
}
SLICE_TITLES = {
    "scheme": "Scheme",
    "www": "Leading `www.`",
    "tld": "Top-level domain group",
    "length": "URL length (characters)",
}
SPLIT_ORDER = ("train", "validation", "test", "future")
CLASS_ORDER = ("legitimate", "phishing")
RIGHT = "---:"  # a right-aligned (number) column of md_table


def interval(estimate: Estimate, fmt: Formatter = num) -> str:
    """The 95% interval of a metrics.json estimate: ``[0.9891, 0.9925]``."""
    return interval_text(estimate["ci95_low"], estimate["ci95_high"], fmt)


def with_interval(estimate: Estimate | None, fmt: Formatter = num) -> str:
    """An estimate and its interval: ``0.9908 [0.9891, 0.9925]``; :data:`MISSING` without one."""
    return MISSING if estimate is None else f"{fmt(estimate['value'])} {interval(estimate, fmt)}"


def and_list(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'; :data:`MISSING` for none."""
    if not items:
        return MISSING
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def months(n: int) -> str:
    return f"{n} month" if n == 1 else f"{n} months"


def metric_label(key: str) -> str:
    if key.startswith("tpr_at_fpr_"):
        return f"recall at FPR {key.removeprefix('tpr_at_fpr_')}"
    return METRIC_LABELS.get(key, key)


def metric_keys(block: Doc) -> list[str]:
    """Metrics with intervals in ``block``, in the card's order: known ones first, then TPR@FPR."""
    keys = [k for k, v in block.items() if isinstance(v, dict) and "value" in v]
    known = [k for k in METRIC_LABELS if k in keys]
    tpr = sorted((k for k in keys if k.startswith("tpr_at_fpr_")),
                 key=lambda k: float(k.removeprefix("tpr_at_fpr_")))
    return known + tpr + sorted(set(keys) - set(known) - set(tpr))


def rates(entry: Any, keys: tuple[str, ...] = ("roc_auc", "recall", "fpr")) -> list[str]:
    """Table cells for the rates of a rates entry (absent when a class is missing: MISSING)."""
    return [num(dig(entry, k)) for k in keys]


def length_order(name: str) -> float:
    """URL-length slices ('0-39', '40-74', ..., '>=250') by their first number."""
    digits = re.findall(r"\d+", name)
    return float(digits[0]) if digits else float("inf")


def year_order(name: str) -> tuple[int, int]:
    """Years of the out-of-source stream in order, '<=2014 (pooled)' before '2015'."""
    year = int(re.findall(r"\d{4}", name)[0])
    return (year, 0 if "pooled" in name else 1)
