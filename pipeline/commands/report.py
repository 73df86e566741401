"""``python -m pipeline report --base REF``: the PR review.

``report`` compares the working tree (the challenger: this PR) with the base
revision (the champion) and writes to ``--out`` (default params.yaml
``review.out``): report.md (the PR comment), summary.md (the same without
images, for the job summary), review.json (every number), and PNG plots.

Exit codes: 0 better / no significant change / accepted regression,
3 worse (fails the check), 4 the DVC remote could not be read, 1 any other error.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import yaml

from pipeline import paths
from pipeline.commands import help_text
from pipeline.common import ExitCode, load_params, read_json, terminal, write_json
from pipeline.review import gather, render
from pipeline.review.compare import compare
from pipeline.review.facts import add_pipeline_facts
from pipeline.review.failure import annotate, failed_review, write_failure
from pipeline.review.gather import PULL_FACTS, PullError, ReviewError
from pipeline.review.payloads import Review
from pipeline.review.settings import out_dir, tree_params
from pipeline.review.sides import read_base, read_pr
from pipeline.store.dvc import ReproRun, repro, repro_from_log

log = logging.getLogger(__name__)

SCRATCH = ("base_scores.npy", "base_future_scores.npy")  # the base model's scores, only while the review runs


def head_name(root: Path, given: str | None) -> str:
    """How to call the challenger: given, or on a laptop the branch (+ its uncommitted changes)."""
    if given:
        return given
    dirty = gather.git(root, "status", "--porcelain", "--untracked-files=no")
    return gather.git(root, "rev-parse", "--abbrev-ref", "HEAD") + (" + working tree" if dirty else "")


def pr_repro(args: argparse.Namespace, root: Path, out: Path) -> tuple[ReproRun | None, dict]:
    """The challenger's `dvc repro`: run here (--repro) or read from the workflow's log, and what
    `pull-data` restored before it (CI leaves pull.json beside the report)."""
    pr_run = None
    if args.repro:
        log.info("report: dvc repro (PR) ...")
        pr_run = repro(root, out / "repro.log", echo=sys.stdout)
        if pr_run.returncode != 0:
            raise ReviewError(f"`dvc repro` failed for the PR (log: {out / 'repro.log'})")
    elif args.repro_log:
        pr_run = repro_from_log(Path(args.repro_log), args.repro_seconds)
    pr_pulled = read_json(out / PULL_FACTS) if args.repro_log and (out / PULL_FACTS).is_file() else {}
    if pr_run and pr_pulled:
        gather.mark_restored(pr_run, yaml.safe_load(gather.read_text(root / paths.DVC_LOCK) or "{}"),
                             pr_pulled.get("outputs_restored") or [])
    return pr_run, pr_pulled


def build_review(args: argparse.Namespace, root: Path, out: Path) -> Review:
    started = time.perf_counter()
    pr_params = load_params(root / paths.PARAMS)
    name = head_name(root, args.head_name)
    tree = gather.BaseTree(root, args.base, keep=args.keep_base)
    out.mkdir(parents=True, exist_ok=True)
    pr_run, pr_pulled = pr_repro(args, root, out)
    pr = read_pr(root, pr_params, name)
    with tree:
        log.info("report: building the base %s (%s) in %s ...", args.base, tree.sha[:7], tree.path)
        base_run = tree.build(out / "base-repro.log", args.base, echo=sys.stdout)
        base = read_base(root, out, tree, pr)

    review = compare(root, out, args.base, args.labels, base, pr)
    review["pipeline"].update({"pr": pr_run.to_dict() if pr_run else None, "base": base_run.to_dict(),
                               "base_outputs": tree.pulled, "pr_outputs": pr_pulled})
    add_pipeline_facts(root, review["pipeline"], pr_run)
    review["pipeline"]["review_seconds"] = round(time.perf_counter() - started, 1)
    for scratch in SCRATCH:
        (out / scratch).unlink(missing_ok=True)
    return review


def write_outputs(review: Review, out: Path) -> None:
    write_json(out / "review.json", review)
    (out / "report.md").write_text(render.render(review, images=True), encoding="utf-8")
    (out / "summary.md").write_text(render.render(review, images=False), encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    try:
        root = gather.repo_root()
    except ReviewError as exc:
        print(f"report: not in a git repository: {terminal(exc, newlines=True)}", file=sys.stderr)
        return ExitCode.ERROR
    out = out_dir(root, tree_params(root), args.out)
    try:
        review = build_review(args, root, out)
    except PullError as exc:
        write_failure(out, exc.diagnosis.markdown())
        print(f"report: {terminal(exc.diagnosis.title)}\n{terminal(exc.output, newlines=True)}", file=sys.stderr)
        annotate("error", exc.diagnosis.title)
        return ExitCode.PULL
    except ReviewError as exc:
        write_failure(out, failed_review(str(exc)))
        print(f"report: {terminal(exc, newlines=True)}", file=sys.stderr)
        annotate("error", "model review failed", str(exc)[:500])
        return ExitCode.ERROR
    write_outputs(review, out)
    print(terminal(render.verdict_section(review)[0]))
    print(f"report: wrote {terminal(out / 'report.md')}, {terminal(out / 'summary.md')}, {terminal(out / 'review.json')} and "
          f"{len(review['plots'])} plots")
    if review["verdict"]["fails_check"]:
        annotate("error", "model got worse", "see the review comment; accept with the label or param it names")
        return ExitCode.WORSE
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="PR review: compare this working tree with a base revision, write report.md",
        description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="git revision of the champion (e.g. main, origin/main)")
    p.add_argument("--out", help="output directory (default: params.yaml review.out)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--repro", action="store_true", help="run `dvc repro` on the working tree first")
    how.add_argument("--repro-log", help="output of the `dvc repro` that built the working tree")
    p.add_argument("--repro-seconds", type=float, help="wall time of that `dvc repro`")
    p.add_argument("--labels", default="", help="comma-separated PR labels (one may accept a regression)")
    p.add_argument("--head-name", help="how to call the challenger (default: the current branch)")
    p.add_argument("--keep-base", action="store_true", help="keep the base worktree (for debugging)")
    p.set_defaults(func=run)
