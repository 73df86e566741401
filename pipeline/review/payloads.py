"""What crosses modules in the review: the facts gathered from each side, and review.json itself.

Types only (TypedDicts are plain dicts at run time, so review.json's bytes do not depend on them).
The keys are the JSON keys; a reader of render.py looks here for what a section can rely on.
"""
from __future__ import annotations

from typing import Any, TypedDict

from pipeline.review.settings import ReviewParams
from pipeline.review.stats import VerdictPayload


class PullFacts(TypedDict):
    """What ``pull-data`` (or the base worktree's pull) restored: pull.json beside the report."""
    pointers: list[str]              # every git-tracked .dvc pointer
    pulled: list[str]                # the pointers whose data came from the remote
    outputs_restored: list[str]      # stored outputs dvc.lock names, restored (cache or remote)
    outputs_not_stored: list[str]    # stored outputs the remote lacks: `dvc repro` computes them


class OnnxFacts(TypedDict):
    """One side's ONNX file and export parity (None where its manifest or parity report lacks it)."""
    size_bytes: int | None
    sha256: str | None
    contract_digest: str | None
    contract_major: int | None
    io_signature: Any
    parity_rows: int | None
    batch_sizes: list[int]
    label_agreement: float | None
    max_abs_proba_diff: float | None
    tolerance: float | None


class ReleasedFacts(TypedDict, total=False):
    """The released model (stage final-fit) as the comment shows it."""
    rows: int
    newest_phishing_month: str | None
    threshold: float
    test_rows: int
    roc_auc: float
    recall: float
    fpr: float


class ModelSide(TypedDict, total=False):
    """review.json ``base`` / ``pr``: one model on the PR's test split."""
    ref: str
    sha: str
    threshold: float
    metrics: dict[str, Any]          # headline metric -> value (base) or {value, ci95_low, ci95_high} (PR)
    confusion: dict[str, int]        # tn, fp, fn, tp
    slices: dict[str, Any]           # the base's slice metrics (the PR's are in metrics.json)


class PipelineFacts(TypedDict, total=False):
    """review.json ``pipeline``: how both sides were built, and whether the PR's dvc.lock is current."""
    metrics_consistent: bool
    pr: dict[str, Any] | None        # ReproRun.to_dict() of the PR's `dvc repro` (None: no log given)
    base: dict[str, Any]             # ... of the base worktree's
    base_outputs: PullFacts | dict[str, Any]
    pr_outputs: PullFacts | dict[str, Any]
    stages: list[str]
    lock_checked: bool
    lock_mismatch: list[dict[str, Any]]
    files_to_commit: list[str]
    stale_stages: list[str]
    review_seconds: float


class Review(TypedDict, total=False):
    """review.json: every number the comment prints (render.py reads nothing else)."""
    base: ModelSide
    pr: ModelSide
    test_rows: int
    fpr_points: list[float]
    interval_level: float
    bootstrap_resamples: int
    deltas: dict[str, dict[str, float]]
    verdict_scope: dict[str, Any]
    verdict_deltas: dict[str, dict[str, float]] | None
    mcnemar: dict[str, Any]
    mcnemar_by_class: dict[str, dict[str, Any]]
    verdict: VerdictPayload
    labels: list[str]
    review_params: ReviewParams
    review_params_source: str
    params_diff: list[dict[str, Any]]
    pointers_diff: list[dict[str, Any]]
    pointer_count: int
    rows_diff: list[dict[str, Any]]
    data_changed: bool
    data_changes: dict[str, Any]
    future: dict[str, Any]
    per_source: dict[str, Any] | None
    slice_movers: list[dict[str, Any]]
    pipeline: PipelineFacts
    onnx: dict[str, Any]             # base, pr (OnnxFacts), contract_changed
    released: dict[str, ReleasedFacts | None]
    plots: list[str]
