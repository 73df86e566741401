"""Paired statistics for champion vs challenger on the same test URLs, and the verdict.

Both models score the same URLs, so the comparison is paired:

* McNemar's exact test on the per-URL decisions at each model's own operating
  threshold: only the discordant URLs (one model right, the other wrong) carry
  information, and under "no difference" each is equally likely to go either way.
* A paired bootstrap (``pipeline.training.metrics.paired_bootstrap_delta``) of the
  threshold-free metrics (ROC AUC, TPR at fixed FPR), resampling URLs jointly.

A change counts only when it is both significant (at ``alpha``) and at least
the minimum effect from params.yaml ``review.min_effect``: a large test set
makes tiny changes significant, and tiny changes are not worth a red check.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict, cast

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar as _mcnemar_test

from pipeline.common import md_cell
from pipeline.formatting import general
from pipeline.training.evaluation import by_month, newest_months, rates_entry
from pipeline.training.metrics import fpr_key

BETTER, NO_CHANGE, WORSE = "better", "no significant change", "worse"


def mcnemar(y, predicted_base, predicted_pr) -> dict:
    """Exact (binomial) McNemar test of the paired decisions; ``effect`` = accuracy(PR) - accuracy(base).

    ``base_only`` counts URLs the base model gets right and the PR model wrong
    (regressions), ``pr_only`` the reverse (fixes).
    """
    y = np.asarray(y).astype(bool)
    base_right = np.asarray(predicted_base).astype(bool) == y
    pr_right = np.asarray(predicted_pr).astype(bool) == y
    both = int(np.sum(base_right & pr_right))
    base_only = int(np.sum(base_right & ~pr_right))
    pr_only = int(np.sum(~base_right & pr_right))
    neither = int(np.sum(~base_right & ~pr_right))
    discordant = base_only + pr_only
    table = [[both, base_only], [pr_only, neither]]
    p_value = float(_mcnemar_test(table, exact=True).pvalue) if discordant else 1.0
    n = len(y)
    return {"test": "McNemar exact (binomial)", "rows": int(n), "both_right": both, "base_only": base_only,
            "pr_only": pr_only, "both_wrong": neither, "discordant": discordant, "p_value": min(p_value, 1.0),
            "effect": (pr_only - base_only) / n if n else 0.0}


def verdict_scope(y, seen_by_base, min_rows: int) -> dict:
    """Which test rows the verdict's tests use.

    A PR that changes the data re-splits it, so some of its test URLs may have
    been in the base model's training or validation split; scoring the base on
    them flatters it. The tests then use only the URLs the base never saw, if at
    least ``min_rows`` of them with both classes remain (else all rows, flagged).
    """
    y, seen = np.asarray(y), np.asarray(seen_by_base, dtype=bool)
    unseen = ~seen
    out: dict[str, Any] = {"rows": len(y), "seen_by_base": int(seen.sum()), "restricted": False, "mask": None}
    if not seen.any():
        return out
    ys = y[unseen]
    if unseen.sum() >= min_rows and 0 < ys.sum() < len(ys):
        out.update(rows=int(unseen.sum()), restricted=True, mask=unseen)
    return out


def mcnemar_by_class(y, predicted_base, predicted_pr) -> dict:
    """McNemar separately on legitimate URLs (false positives) and phishing URLs (misses)."""
    y = np.asarray(y).astype(int)
    out = {}
    for name, label in (("legitimate", 0), ("phishing", 1)):
        mask = y == label
        out[name] = mcnemar(y[mask], np.asarray(predicted_base)[mask], np.asarray(predicted_pr)[mask])
    return out


def future_rates(first_seen, y, p, threshold: float, newest: int) -> dict:
    """One model on the future split: overall, per first-seen month, and recall on the ``newest``
    months that hold phishing rows (the same functions the evaluate stage uses)."""
    table = by_month(np.asarray(first_seen, dtype=object), y, p, threshold)
    return {"overall": rates_entry(y, p, threshold), "by_month": table, "newest": newest_months(table, newest)}


@dataclass
class Finding:
    """One test's contribution to the verdict."""
    name: str                    # "McNemar", "roc_auc", "tpr_at_fpr_0.001", ...
    label: str                   # how the report names it
    value: float                 # the effect: accuracy delta or metric delta (PR - base)
    direction: str               # BETTER, NO_CHANGE or WORSE
    significant: bool
    min_effect: float
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class FindingPayload(TypedDict):
    """A :class:`Finding` in review.json."""
    name: str
    label: str
    value: float
    direction: str
    significant: bool
    min_effect: float
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


class VerdictPayload(TypedDict):
    """A :class:`Verdict` in review.json (``verdict``): what the comment's first line and the check read."""
    outcome: str
    alpha: float
    accepted_by: str | None
    fails_check: bool
    findings: list[FindingPayload]


@dataclass
class Verdict:
    outcome: str                 # BETTER, NO_CHANGE or WORSE
    alpha: float
    findings: list[Finding] = field(default_factory=list)
    accepted_by: str | None = None   # how a "worse" verdict was accepted (label or param), if it was

    @property
    def decisive(self) -> list[Finding]:
        """The findings the outcome rests on (all of them for 'no significant change')."""
        if self.outcome == NO_CHANGE:
            return self.findings
        return [f for f in self.findings if f.direction == self.outcome]

    @property
    def fails_check(self) -> bool:
        return self.outcome == WORSE and not self.accepted_by

    def to_dict(self) -> VerdictPayload:
        return {"outcome": self.outcome, "alpha": self.alpha, "accepted_by": self.accepted_by,
                "fails_check": self.fails_check, "findings": [cast(FindingPayload, asdict(f)) for f in self.findings]}


def _direction(significant: bool, value: float, min_effect: float) -> str:
    if significant and value <= -min_effect:
        return WORSE
    if significant and value >= min_effect:
        return BETTER
    return NO_CHANGE


def mcnemar_finding(result: dict, alpha: float, min_effect: float) -> Finding:
    significant = result["p_value"] < alpha
    return Finding("mcnemar", "McNemar", result["effect"], _direction(significant, result["effect"], min_effect),
                   significant, min_effect, p_value=result["p_value"])


def interval_finding(name: str, label: str, delta: dict, min_effect: float) -> Finding:
    """A bootstrap interval of PR - base that excludes 0 is significant at the interval's level."""
    low, high = delta["ci95_low"], delta["ci95_high"]
    significant = low > 0 or high < 0
    return Finding(name, label, delta["value"], _direction(significant, delta["value"], min_effect),
                   significant, min_effect, ci_low=low, ci_high=high)


def metric_label(key: str) -> str:
    if key.startswith("tpr_at_fpr_"):
        return f"TPR@FPR {key.removeprefix('tpr_at_fpr_')}"
    return {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "precision": "precision", "recall": "recall",
            "f1": "F1", "fpr": "FPR", "threshold": "threshold"}.get(key, key)


def decide(mcnemar_result: dict, deltas: dict, fpr_points: list[float], review_params: Mapping[str, Any]) -> Verdict:
    """The verdict: WORSE if any test shows a significant, material loss; BETTER if at least one
    shows a significant, material gain and none a loss; otherwise NO_CHANGE."""
    alpha = float(review_params["alpha"])
    effect = review_params["min_effect"]
    findings = [mcnemar_finding(mcnemar_result, alpha, float(effect["accuracy"])),
                interval_finding("roc_auc", metric_label("roc_auc"), deltas["roc_auc"], float(effect["roc_auc"]))]
    for point in fpr_points:
        key = fpr_key(point)
        findings.append(interval_finding(key, metric_label(key), deltas[key], float(effect["tpr_at_fpr"])))
    directions = {f.direction for f in findings}
    outcome = WORSE if WORSE in directions else BETTER if BETTER in directions else NO_CHANGE
    return Verdict(outcome, alpha, findings)


def acceptance(labels, accept_label: str | None, accept_param) -> str | None:
    """How a regression is accepted: the PR label, or the params.yaml ``review.accept_regression`` reason."""
    if accept_label and accept_label in {label.strip() for label in labels}:
        return f"label {md_cell(accept_label)}"
    if accept_param not in (None, False, ""):
        reason = "" if accept_param is True else f": “{md_cell(accept_param, code=False)}”"
        return f"params.yaml `review.accept_regression`{reason}"
    return None


def format_p(p: float) -> str:
    """p-values for people: 3 significant digits, scientific below 1e-3."""
    return general(p, 3) if p >= 0.001 else f"{p:.2e}"
