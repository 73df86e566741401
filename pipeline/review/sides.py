"""The two sides of the review, read from disk: the base revision (champion) and the working tree (PR)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.common import read_json
from pipeline.review import diffs, gather
from pipeline.review.facts import (
    json_or_none,
    onnx_facts,
    released_model_of,
    yaml_or_none,
)
from pipeline.review.payloads import OnnxFacts

log = logging.getLogger(__name__)


@dataclass
class BaseSide:
    """What the review needs from the base revision, read while its worktree exists."""
    sha: str
    params: dict | None
    operating: dict
    report: dict | None
    onnx: OnnxFacts
    pointers: dict[str, str | None]
    seen_urls: set[str]       # URLs the base model trained on or tuned its threshold on
    p_test: np.ndarray        # the base model's scores of the PR's test split
    p_future: np.ndarray | None   # ... and of the PR's future split (None: the PR has none)
    has_future_split: bool    # the base's own pipeline has a future split
    quarantine: pd.DataFrame | None  # its quarantine.csv, None if it has none
    final_fit: dict | None = None  # its reports/final_fit.json (the released model), None before final fits


@dataclass
class PRSide:
    params: dict
    head_name: str
    test: pd.DataFrame            # the PR's test split
    future: pd.DataFrame | None   # the PR's future split, None if it has none


def read_pr(root: Path, params: dict, head_name: str) -> PRSide:
    """The working tree's splits (its pipeline outputs must exist: `dvc repro` ran)."""
    gather.require(root, (paths.MODEL, paths.OPERATING_POINT, paths.METRICS, paths.TEST), "the working tree",
                   "run `dvc repro` first (or pass --repro)")
    future = pd.read_parquet(root / paths.FUTURE) if (root / paths.FUTURE).is_file() else None
    return PRSide(params, head_name, pd.read_parquet(root / paths.TEST), future)


def read_base(root: Path, out: Path, tree: gather.BaseTree, pr: PRSide) -> BaseSide:
    """Everything compare() needs from the base worktree; the PR's splits scored by the base model
    with the base's own code."""
    b = tree.worktree
    log.info("report: scoring %s test URLs with the base model (base code) ...", f"{len(pr.test):,}")
    p_test = gather.score(b, b / paths.MODEL, root / paths.TEST, out / "base_scores.npy")
    p_future = None
    if pr.future is not None:
        log.info("report: scoring %s future URLs with the base model (base code) ...", f"{len(pr.future):,}")
        p_future = (gather.score(b, b / paths.MODEL, root / paths.FUTURE, out / "base_future_scores.npy")
                    if len(pr.future) else np.zeros(0))
    seen: set[str] = set()
    for split in (paths.TRAIN, paths.VALIDATION):
        if (b / split).is_file():
            seen |= set(pd.read_parquet(b / split, columns=["url"])["url"])
    return BaseSide(sha=tree.sha, params=yaml_or_none(gather.git_show(root, tree.sha, paths.PARAMS.as_posix())),
                    operating=read_json(b / paths.OPERATING_POINT), report=json_or_none(b / paths.DATA_REPORT),
                    onnx=onnx_facts(json_or_none(b / paths.MANIFEST), json_or_none(b / paths.PARITY)),
                    pointers=gather.tracked_pointers(root, tree.sha), seen_urls=seen, p_test=p_test,
                    p_future=p_future, has_future_split=(b / paths.FUTURE).is_file(),
                    quarantine=diffs.read_quarantine(b / paths.QUARANTINE), final_fit=released_model_of(b))
