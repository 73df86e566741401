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
import sys
from pathlib import Path

from pipeline import paths
from pipeline.commands import help_text
from pipeline.common import json_bytes, terminal
from pipeline.reproduce import render
from pipeline.reproduce.retrain import reproduce
from pipeline.store.dvc import git

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


def write_outputs(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduce.json").write_bytes(json_bytes(report))
    (out / "summary.md").write_text(render.markdown_summary(report), encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    root = Path(git(Path.cwd(), "rev-parse", "--show-toplevel"))
    out = Path(args.out) if args.out else root / paths.REPRODUCE
    echo = _Echo() if logging.getLogger().isEnabledFor(logging.INFO) else None
    report = reproduce(root, args.rev, out, Path(args.workdir) if args.workdir else None, args.keep, echo)
    write_outputs(report, out)
    print("\n".join(render.terminal_summary(report)))
    print(f"reproduce: wrote {terminal(out / 'reproduce.json')}, {terminal(out / 'summary.md')} and "
          f"{terminal(out / 'repro.log')}")
    return report["verdict"]["exit_code"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reproduce", help="re-train a commit in a scratch clone; compare with its committed "
                              "model, ONNX file and metrics", description=help_text(__doc__),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", default="HEAD", help="the commit to re-train (default: HEAD)")
    p.add_argument("--keep", action="store_true", help="keep the scratch clone (its path is logged)")
    p.add_argument("--out", metavar="DIR", help=f"report directory (default: {paths.REPRODUCE} in the repository)")
    p.add_argument("--workdir", metavar="DIR",
                   help="where the scratch clone is made (default: the system's temp directory)")
    p.set_defaults(func=run)
