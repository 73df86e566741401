"""Re-train a commit in a scratch clone and compare the result with its committed outputs.

The commit is cloned into a temporary directory (this repository's work tree, index and DVC cache
are only read), its raw data is pulled from the DVC remote, and `dvc repro --force --no-run-cache`
re-runs every stage with an empty DVC cache. When the model or ONNX bytes differ, both ONNX files
score the re-made test split (the export gate's parity report).
"""
from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.common import PipelineError, load_params, read_json, sha256_file
from pipeline.reproduce import compare, scratch
from pipeline.store.dvc import Echo
from pipeline.store.outputs import lock_outputs, read_lock
from pipeline.training.onnx_export import onnx_predict, parity_report, session

log = logging.getLogger(__name__)


class _OnnxReference:
    """The committed ONNX file as parity_report's reference model (which calls ``predict_proba``)."""

    def __init__(self, onnx_bytes: bytes, batch_size: int):
        self._session, self._batch = session(onnx_bytes), batch_size

    def predict_proba(self, x: Any) -> np.ndarray:
        return onnx_predict(self._session, x, self._batch)[1]


def score_both(committed_onnx: Path, reproduced_onnx: Path, test: Path, threshold: float, batch: int) -> dict:
    """The export gate's parity report, with the committed ONNX file where the sklearn model stands:
    labels as the committed graph decides them, at its threshold, against the re-trained graph's."""
    urls = pd.read_parquet(test)["url"]
    log.info("reproduce: scoring the test split (%d URLs) with both ONNX files ...", len(urls))
    return parity_report(_OnnxReference(committed_onnx.read_bytes(), batch), reproduced_onnx.read_bytes(), urls,
                         threshold, [batch])


def _json_or_none(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def released_operating_point(tree: Path) -> dict | None:
    """The threshold the ONNX file carries: the final fit's (commits before it: the held-out model's)."""
    operating = _json_or_none(tree / paths.OPERATING_POINT)
    return (operating or {}).get("released") or operating


def read_side(tree: Path, onnx_sha256: str | None) -> compare.Side:
    """One side's dvc.lock, metrics, released threshold and ONNX sha256."""
    return compare.Side(read_lock(tree), _json_or_none(tree / paths.METRICS), released_operating_point(tree),
                        onnx_sha256)


def committed_side(tree: Path) -> compare.Side:
    """The outputs as committed: dvc.lock, metrics, threshold, and the manifest's ONNX sha256."""
    manifest = _json_or_none(tree / paths.MANIFEST) or {}
    return read_side(tree, (manifest.get("model") or {}).get("sha256"))


def reproduced_side(tree: Path) -> compare.Side:
    onnx = tree / paths.ONNX
    return read_side(tree, sha256_file(onnx) if onnx.is_file() else None)


def _parity(root: Path, work: scratch.Scratch, committed: compare.Side, export: dict) -> dict | None:
    """Both ONNX files on the re-made test split; None when the committed file is nowhere to be found."""
    entry = lock_outputs(committed.lock).get(paths.ONNX.as_posix())
    path, where = scratch.fetch_committed(root, work, paths.ONNX, entry.md5 if entry else None)
    if path is None or where is None:
        return None
    threshold = compare.threshold_change(committed.operating_point, None)["committed"]
    if threshold is None:
        raise PipelineError("reproduce: the commit has no reports/operating_point.json threshold to score with")
    batch = max(export.get("parity_batch_sizes") or [1024])
    report = score_both(path, work.tree / paths.ONNX, work.tree / paths.TEST, threshold, batch)
    return compare.parity_summary(report, export["max_abs_proba_diff"], where)


def reproduce(root: Path, rev: str, out: Path, workdir: Path | None = None, keep: bool = False,
              echo: Echo | None = None) -> dict:
    """Clone ``rev``, re-train it there, compare with its committed outputs: the report (see module doc)."""
    sha = scratch.resolve_commit(root, rev)
    with scratch.scratch_clone(root, sha, workdir, keep) as work:
        tree = work.tree
        log.info("reproduce: %s (%s) cloned into %s", rev, sha[:12], tree)
        if not (tree / paths.DVC_YAML).is_file():
            raise PipelineError(f"reproduce: {rev} has no dvc.yaml: nothing to re-train")
        scratch.use_roots_remote_if_missing(tree, root)
        committed, export = committed_side(tree), load_params(tree / paths.PARAMS)["export"]
        scratch.pull_raw_data(tree)
        repro = scratch.rerun_every_stage(tree, out / "repro.log", echo)
        reproduced = reproduced_side(tree)
        identical = all(f["identical"] for f in compare.released_files(committed, reproduced).values())
        parity = None if identical else _parity(root, work, committed, export)
        result = compare.compare(committed, reproduced, parity, export["max_abs_proba_diff"])
    return {"rev": rev, "commit": sha, "machine": platform.machine(), "repro": repro.to_dict(), **result}
