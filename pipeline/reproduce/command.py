"""Re-train a commit from scratch and report how far the result is from its committed outputs.

The commit (HEAD by default) is cloned into a temporary directory (this repository's work tree,
index and DVC cache are only read), its raw data is pulled from the DVC remote, and
`dvc repro --force --no-run-cache` re-runs every stage with an empty DVC cache. Then:

  identical bytes of models/model.joblib and the ONNX file  -> exit 0
  else both ONNX files score the test split (onnxruntime): every label equal and
  max |dP| <= params export.max_abs_proba_diff              -> exit 0, "reproduced within tolerance"
  else                                                       -> exit 2 (1: nothing to compare with)

Writes reproduce.json, summary.md and repro.log to build/reproduce/ (--out).
"""
from __future__ import annotations

import argparse
import logging
import platform
import sys
from pathlib import Path

from pipeline import paths
from pipeline.common import (
    PipelineError,
    json_bytes,
    load_params,
    read_json,
    sha256_file,
    terminal,
)
from pipeline.reproduce import compare, render, scratch
from pipeline.store.dvc import git
from pipeline.store.outputs import lock_outputs, read_lock

log = logging.getLogger(__name__)


class _Echo:
    """`dvc repro` output as progress on stderr, one line at a time through :func:`terminal` (of a
    progress bar redrawn with ``\\r``, its last state)."""

    def write(self, line: str) -> None:
        text = line.rstrip("\n").split("\r")[-1].expandtabs(4)
        if text.strip():
            print(terminal(text), file=sys.stderr)

    def flush(self) -> None:
        sys.stderr.flush()


class _OnnxReference:
    """The committed ONNX file as parity_report's reference model (which calls ``predict_proba``)."""

    def __init__(self, onnx_bytes: bytes, batch_size: int):
        from pipeline.training.onnx_export import session

        self._session, self._batch = session(onnx_bytes), batch_size

    def predict_proba(self, x):
        from pipeline.training.onnx_export import onnx_predict

        return onnx_predict(self._session, x, self._batch)[1]


def score_both(committed_onnx: Path, reproduced_onnx: Path, test: Path, threshold: float, batch: int) -> dict:
    """The export gate's parity report, with the committed ONNX file where the sklearn model stands:
    labels as the committed graph decides them, at its threshold, against the re-trained graph's."""
    import pandas as pd

    from pipeline.training.onnx_export import parity_report

    urls = pd.read_parquet(test)["url"]
    log.info("reproduce: scoring the test split (%d URLs) with both ONNX files ...", len(urls))
    return parity_report(_OnnxReference(committed_onnx.read_bytes(), batch), reproduced_onnx.read_bytes(), urls,
                         threshold, [batch])


def _json_or_none(path: Path):
    return read_json(path) if path.is_file() else None


def released_operating_point(tree: Path) -> dict | None:
    """The threshold the ONNX file carries: the final fit's (commits before it: the held-out model's)."""
    operating = _json_or_none(tree / paths.OPERATING_POINT)
    return (operating or {}).get("released") or operating


def read_side(tree: Path, onnx_sha256: str | None) -> compare.Side:
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
    if path is None:
        return None
    threshold = compare.threshold_change(committed.operating_point, None)["committed"]
    if threshold is None:
        raise PipelineError("reproduce: the commit has no reports/operating_point.json threshold to score with")
    batch = max(export.get("parity_batch_sizes") or [1024])
    report = score_both(path, work.tree / paths.ONNX, work.tree / paths.TEST, threshold, batch)
    return compare.parity_summary(report, export["max_abs_proba_diff"], where)


def reproduce(root: Path, rev: str, out: Path, workdir: Path | None = None, keep: bool = False, echo=None) -> dict:
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


def write_outputs(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduce.json").write_bytes(json_bytes(report))
    (out / "summary.md").write_text(render.markdown_summary(report), encoding="utf-8")


def run_reproduce(args) -> int:
    root = Path(git(Path.cwd(), "rev-parse", "--show-toplevel"))
    out = Path(args.out) if args.out else root / paths.REPRODUCE
    echo = _Echo() if logging.getLogger().isEnabledFor(logging.INFO) else None
    report = reproduce(root, args.rev, out, Path(args.workdir) if args.workdir else None, args.keep, echo)
    write_outputs(report, out)
    print("\n".join(render.terminal_summary(report)))
    print(f"reproduce: wrote {terminal(out / 'reproduce.json')}, {terminal(out / 'summary.md')} and "
          f"{terminal(out / 'repro.log')}")
    return report["verdict"]["exit_code"]


def register(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="re-train a commit in a scratch clone; compare with its committed "
                              "model, ONNX file and metrics", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", default="HEAD", help="the commit to re-train (default: HEAD)")
    p.add_argument("--keep", action="store_true", help="keep the scratch clone (its path is logged)")
    p.add_argument("--out", metavar="DIR", help=f"report directory (default: {paths.REPRODUCE} in the repository)")
    p.add_argument("--workdir", metavar="DIR",
                   help="where the scratch clone is made (default: the system's temp directory)")
    p.set_defaults(func=run_reproduce)
