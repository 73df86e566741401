"""The review's settings: params.yaml ``review:`` is their only home (no second copy of a value here).

Thresholds come from the base revision's params (a PR cannot loosen its own check); a key the base
lacks (an older base) comes from the PR's; ``accept_regression`` is always the PR's own statement,
visible in the params diff.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, TypedDict, cast

from pipeline import paths
from pipeline.common import load_params
from pipeline.review.gather import ReviewError

SECTION = "review"
REQUIRED = ("alpha", "min_effect", "bootstrap_resamples", "seed", "accept_label", "slices", "min_verdict_rows")


class SliceSettings(TypedDict):
    top: int          # slice metrics listed under "moved most"
    min_rows: int     # smaller slices are too noisy to list


class ReviewParams(TypedDict, total=False):
    """params.yaml ``review:`` as the review uses it (and review.json records it)."""
    out: str
    alpha: float
    min_effect: dict[str, float]     # accuracy, roc_auc, tpr_at_fpr
    bootstrap_resamples: int
    seed: int
    accept_label: str | None
    accept_regression: Any           # the PR's reason (text), True, or None
    min_verdict_rows: int
    slices: SliceSettings


def _merge(base: dict, override: dict | None) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def review_params(base_params: dict | None, pr_params: dict | None) -> tuple[ReviewParams, str]:
    """The review settings and where they came from (the comment's footer names it)."""
    base_review = (base_params or {}).get(SECTION)
    pr_review = (pr_params or {}).get(SECTION)
    if not base_review and not pr_review:
        raise ReviewError("neither the base's nor the PR's params.yaml has a `review:` section: add one "
                          "(alpha, min_effect, bootstrap_resamples, seed, accept_label, slices, min_verdict_rows)")
    source = "the base's params.yaml `review:`" if base_review else "the PR's params.yaml `review:`"
    merged = _merge(pr_review or {}, base_review)
    missing = [key for key in REQUIRED if key not in merged]
    if missing:
        raise ReviewError(f"params.yaml `review:` lacks {', '.join(missing)} (on the base and on the PR)")
    merged["accept_regression"] = (pr_review or {}).get("accept_regression")
    return cast(ReviewParams, merged), source  # the keys were checked above


def out_dir(root: Path, params: dict | None, given: str | None) -> Path:
    """Where the review writes: ``--out``, else params.yaml ``review.out``, else :data:`paths.REVIEW`."""
    if given:
        return Path(given)
    return root / (((params or {}).get(SECTION) or {}).get("out") or paths.REVIEW)


def tree_params(root: Path) -> dict | None:
    """A checkout's params.yaml (None when it has none: the review then says what is missing)."""
    try:
        return load_params(root / paths.PARAMS)
    except OSError:
        return None
