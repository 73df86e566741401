"""``python -m pipeline pull-data``: restore the data and stored outputs the review needs, and say why when
the DVC remote cannot be read (see :func:`pipeline.review.gather.pull`).

Exit codes: 0 restored, 4 the DVC remote could not be read, 1 any other error.
"""
from __future__ import annotations

import argparse
import sys

from pipeline.commands import help_text
from pipeline.common import ExitCode, terminal, write_json
from pipeline.review import gather
from pipeline.review.failure import annotate, write_failure
from pipeline.review.gather import PULL_FACTS, PullError
from pipeline.review.settings import out_dir, tree_params


def run(args: argparse.Namespace) -> int:
    root = gather.repo_root()
    out = out_dir(root, tree_params(root), args.out)
    try:
        facts = gather.pull(root, args.base, True if args.fork else None)
    except PullError as exc:
        write_failure(out, exc.diagnosis.markdown())
        print(terminal(exc.output, newlines=True), file=sys.stderr)
        print(f"\npull-data: {terminal(exc.diagnosis.title)}\n\n{terminal(exc.diagnosis.advice, newlines=True)}",
              file=sys.stderr)
        annotate("error", exc.diagnosis.title, exc.diagnosis.advice[:800])
        return ExitCode.PULL
    write_json(out / PULL_FACTS, facts)
    pulled = ", ".join(terminal(p) for p in facts["pulled"]) or "nothing (all data was in the DVC cache)"
    print(f"pull-data: {len(facts['pointers'])} .dvc pointers; pulled from the remote: {pulled}")
    restored = ", ".join(terminal(p) for p in facts["outputs_restored"]) or "nothing"
    print(f"pull-data: stored outputs restored (dvc.lock's bytes): {restored}")
    if facts["outputs_not_stored"]:
        print("pull-data: not in the DVC remote, so `dvc repro` computes them: "
              + ", ".join(terminal(p) for p in facts["outputs_not_stored"]))
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    q = subparsers.add_parser(
        "pull-data", help="check out cached DVC outputs, `dvc pull` missing data, explain failures",
        description=help_text(gather.pull.__doc__))
    q.add_argument("--base", default="main", help="base branch (named in the advice on failure)")
    q.add_argument("--out", help="where report.md explains a failure (default: params.yaml review.out)")
    q.add_argument("--fork", action="store_true", help="the PR comes from a fork (or env PR_FROM_FORK=true)")
    q.set_defaults(func=run)
