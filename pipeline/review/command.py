"""``python -m pipeline report --base REF`` and ``python -m pipeline pull-data``.

``report`` compares the working tree (the challenger: this PR) with the base
revision (the champion) and writes to ``--out`` (default params.yaml
``review.out``): report.md (the PR comment), summary.md (the same without
images, for the job summary), review.json (every number), and PNG plots.

Exit codes: 0 better / no significant change / accepted regression,
3 worse (fails the check), 4 the DVC remote could not be read, 1 any other error.
"""
from __future__ import annotations

import argparse
import copy
import functools
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from pipeline import paths
from pipeline.common import ExitCode, read_json, terminal, write_json
from pipeline.paths import FUTURE, QUARANTINE
from pipeline.review import diffs, gather, render, stats
from pipeline.review.comment import PLOTS
from pipeline.review.gather import PullError, ReviewError
from pipeline.training.final import released_model
from pipeline.training.splitting import future_split_start

log = logging.getLogger(__name__)

PULL_FACTS = "pull.json"  # what `pull-data` restored, beside the report: the PR side's stage table reads it
DEFAULTS = {
    "out": "build/review",
    "alpha": 0.05,
    "min_effect": {"accuracy": 0.002, "roc_auc": 0.002, "tpr_at_fpr": 0.01},
    "bootstrap_resamples": 400,
    "seed": 11,
    "accept_regression": None,
    "accept_label": "accept-regression",
    "slices": {"top": 8, "min_rows": 50},
    "min_verdict_rows": 100,
}


def _merge(base: dict, override: dict | None) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def review_params(base_params: dict | None, pr_params: dict | None) -> tuple[dict, str]:
    """The review settings: thresholds from the base (a PR cannot loosen its own check),
    ``accept_regression`` from the PR (it is the PR's statement, visible in the params diff)."""
    base_review = (base_params or {}).get("review")
    pr_review = (pr_params or {}).get("review")
    source = ("the base's params.yaml `review:`" if base_review else "the PR's params.yaml `review:`" if pr_review
              else "built-in defaults (no `review:` in params.yaml)")
    merged = _merge(DEFAULTS, base_review or pr_review)
    merged["accept_regression"] = (pr_review or {}).get("accept_regression")
    return merged, source


def _outputs_to_commit(root: Path, dvc_yaml: dict) -> list[str]:
    """dvc.lock and the git-tracked (cache: false) outputs the reproduction changed."""
    lock = str(paths.DVC_LOCK)
    small = {lock}
    for stage in (dvc_yaml.get("stages") or {}).values():
        for section in ("outs", "metrics", "plots"):
            for entry in stage.get(section) or []:
                if isinstance(entry, dict):
                    for path, opts in entry.items():
                        if isinstance(opts, dict) and opts.get("cache") is False:
                            small.add(path)
    changed = [p for p in gather.git(root, "diff", "--name-only", "HEAD").splitlines() if p in small]
    return [lock] + sorted(p for p in changed if p != lock)


def released_model_of(tree: Path) -> dict | None:
    """The released model's facts in a checkout (None for a commit from before final fits)."""
    return released_model(_json(tree / paths.FINAL_FIT), _json(tree / paths.OPERATING_POINT),
                          _json(tree / paths.METRICS))


def released_facts(final_fit: dict | None) -> dict | None:
    """The released model (stage final-fit) as the comment shows it: data, threshold, its own test split."""
    if not final_fit:
        return None
    test, trained = final_fit["test"], final_fit["trained_on"]
    return {"rows": trained["rows"], "newest_phishing_month": trained.get("newest_phishing_month"),
            "threshold": final_fit["operating_point"]["ensemble"]["threshold"], "test_rows": test["rows"],
            **{k: test[k]["value"] for k in ("roc_auc", "recall", "fpr") if k in test}}


def onnx_facts(manifest: dict | None, parity: dict | None) -> dict:
    manifest, parity = manifest or {}, parity or {}
    model = manifest.get("model", {})
    return {"size_bytes": model.get("size_bytes"), "sha256": model.get("sha256"),
            "contract_digest": manifest.get("contract_digest"), "contract_major": manifest.get("contract_major"),
            "io_signature": manifest.get("io_signature"),
            "parity_rows": parity.get("rows"),
            "batch_sizes": sorted(int(b) for b in parity.get("batch_sizes", {})),
            "label_agreement": parity.get("label_agreement"),
            "max_abs_proba_diff": parity.get("max_abs_proba_diff"), "tolerance": parity.get("tolerance")}


def contract_changed(base: dict, pr: dict) -> bool:
    keys = ("contract_digest", "contract_major", "io_signature")
    return any(base.get(k) is not None and pr.get(k) is not None and base[k] != pr[k] for k in keys)


def _json(path: Path):
    return read_json(path) if path.is_file() else None


def _yaml(text: str | None):
    return yaml.safe_load(text) if text else None


def repo_root() -> Path:
    return Path(gather.git(Path.cwd(), "rev-parse", "--show-toplevel"))


def resolve_out(args, root: Path) -> Path:
    if args.out:
        return Path(args.out)
    try:
        configured = (yaml.safe_load((root / paths.PARAMS).read_text()) or {}).get("review", {}).get("out")
    except OSError:
        configured = None
    return root / (configured or DEFAULTS["out"])




@dataclass
class BaseSide:
    """What the review needs from the base revision, read while its worktree exists."""
    sha: str
    params: dict | None
    operating: dict
    report: dict | None
    onnx: dict
    pointers: dict
    seen_urls: set            # URLs the base model trained on or tuned its threshold on
    p_test: np.ndarray        # the base model's scores of the PR's test split
    p_future: np.ndarray | None   # ... and of the PR's future split (None: the PR has none)
    has_future_split: bool    # the base's own pipeline has a future split
    quarantine: object        # its quarantine.csv as a DataFrame, None if it has none
    final_fit: dict | None = None  # its reports/final_fit.json (the released model), None before final fits


@dataclass
class PRSide:
    params: dict
    head_name: str
    test: object              # the PR's test split (DataFrame)
    future: object            # the PR's future split (DataFrame), None if it has none


def build_review(args, root: Path, out: Path) -> dict:
    started = time.perf_counter()
    pr_params = yaml.safe_load((root / paths.PARAMS).read_text())
    head_name = args.head_name
    if not head_name:  # on a laptop: the branch, and say so when uncommitted changes are part of it
        dirty = gather.git(root, "status", "--porcelain", "--untracked-files=no")
        head_name = gather.git(root, "rev-parse", "--abbrev-ref", "HEAD") + (" + working tree" if dirty else "")

    tree = gather.BaseTree(root, args.base, keep=args.keep_base)
    out.mkdir(parents=True, exist_ok=True)

    # The challenger: the working tree, reproduced here or by the workflow's `dvc repro` step.
    pr_run = None
    if args.repro:
        log.info("report: dvc repro (PR) ...")
        pr_run = gather.repro(root, out / "repro.log", echo=sys.stdout)
        if pr_run.returncode != 0:
            raise ReviewError(f"`dvc repro` failed for the PR (log: {out / 'repro.log'})")
    elif args.repro_log:
        pr_run = gather.repro_from_log(Path(args.repro_log), args.repro_seconds)
    # CI: `pull-data` then `dvc repro` ran before this command and left what they did beside the report.
    pr_pulled = read_json(out / PULL_FACTS) if args.repro_log and (out / PULL_FACTS).is_file() else {}
    if pr_run and pr_pulled:
        gather.mark_restored(pr_run, yaml.safe_load(gather.read_text(root / paths.DVC_LOCK) or "{}"),
                             pr_pulled.get("outputs_restored") or [])

    gather.require(root, (paths.MODEL, paths.OPERATING_POINT, paths.METRICS, paths.TEST), "the working tree",
                   "run `dvc repro` first (or pass --repro)")
    import pandas as pd

    pr = PRSide(pr_params, head_name, pd.read_parquet(root / paths.TEST),
                pd.read_parquet(root / FUTURE) if (root / FUTURE).is_file() else None)
    with tree:
        log.info("report: building the base %s (%s) in %s ...", args.base, tree.sha[:7], tree.path)
        base_run = tree.build(out / "base-repro.log", args.base, echo=sys.stdout)
        base = read_base(root, out, tree, pr)

    review = compare(root, out, args, base, pr)
    review["pipeline"].update({"pr": pr_run.to_dict() if pr_run else None, "base": base_run.to_dict(),
                               "base_outputs": tree.pulled, "pr_outputs": pr_pulled})
    _pipeline_facts(root, review, pr_run)
    review["pipeline"]["review_seconds"] = round(time.perf_counter() - started, 1)
    for name in ("base_scores.npy", "base_future_scores.npy"):
        (out / name).unlink(missing_ok=True)
    return review


def read_base(root: Path, out: Path, tree, pr: PRSide) -> BaseSide:
    """Everything compare() needs from the base worktree; the PR's splits scored by the base model
    with the base's own code."""
    import pandas as pd

    b = tree.path
    log.info("report: scoring %s test URLs with the base model (base code) ...", f"{len(pr.test):,}")
    p_test = gather.score(b, b / paths.MODEL, root / paths.TEST, out / "base_scores.npy")
    p_future = None
    if pr.future is not None:
        log.info("report: scoring %s future URLs with the base model (base code) ...", f"{len(pr.future):,}")
        p_future = (gather.score(b, b / paths.MODEL, root / FUTURE, out / "base_future_scores.npy")
                    if len(pr.future) else np.zeros(0))
    seen = set()
    for split in (paths.TRAIN, paths.VALIDATION):
        if (b / split).is_file():
            seen |= set(pd.read_parquet(b / split, columns=["url"])["url"])
    return BaseSide(sha=tree.sha, params=_yaml(gather.git_show(root, tree.sha, paths.PARAMS)),
                    operating=read_json(b / paths.OPERATING_POINT), report=_json(b / paths.DATA_REPORT),
                    onnx=onnx_facts(_json(b / paths.MANIFEST), _json(b / paths.PARITY)),
                    pointers=gather.tracked_pointers(root, tree.sha), seen_urls=seen, p_test=p_test,
                    p_future=p_future, has_future_split=(b / FUTURE).is_file(),
                    quarantine=diffs.read_quarantine(b / QUARANTINE), final_fit=released_model_of(b))


def compare(root: Path, out: Path, args, base: BaseSide, pr: PRSide) -> dict:
    """Score the PR's test split with the PR model, then put every comparison with the base together."""
    import joblib

    from pipeline.training.evaluation import rates_by, slice_metrics
    from pipeline.training.metrics import (
        confusion,
        headline_metrics,
        paired_bootstrap_delta,
    )
    from pipeline.training.model import phishing_proba

    rparams, rsource = review_params(base.params, pr.params)
    test, p_base = pr.test, base.p_test
    metrics = read_json(root / paths.METRICS)
    y = test["label"].to_numpy()
    log.info("report: scoring %s test URLs with the PR model ...", f"{len(test):,}")
    model = joblib.load(root / paths.MODEL)
    p_pr = phishing_proba(model, test["url"])
    t_pr = read_json(root / paths.OPERATING_POINT)["ensemble"]["threshold"]
    t_base = base.operating["ensemble"]["threshold"]
    fpr_points = pr.params["evaluate"]["fpr_points"]
    level, n_boot, seed = 1 - float(rparams["alpha"]), int(rparams["bootstrap_resamples"]), int(rparams["seed"])

    recomputed = headline_metrics(y, p_pr, t_pr, fpr_points)
    bootstrap = functools.partial(paired_bootstrap_delta, fpr_points=fpr_points, n_resamples=n_boot, seed=seed,
                                  level=level)  # one setting for the whole-split and the verdict intervals
    deltas = bootstrap(y, p_pr, p_base, t_pr, t_base)
    changes = _changes(root, out, base, pr.params)
    seen = test["url"].isin(base.seen_urls).to_numpy() if changes["data_changed"] else np.zeros(len(y), bool)
    decision = _decide(y, p_base, p_pr, (t_base, t_pr), seen, deltas, bootstrap, fpr_points, rparams,
                       args.labels)
    base_cm = confusion(y, p_base >= t_base)
    base_slices = slice_metrics(y, p_base, test["url"], t_base, pr.params["evaluate"]["length_bins"])
    slices = rparams["slices"]
    pr_onnx = onnx_facts(_json(root / paths.MANIFEST), _json(root / paths.PARITY))
    return {
        "base": {"ref": args.base, "sha": base.sha, "threshold": t_base,
                 "metrics": headline_metrics(y, p_base, t_base, fpr_points), "confusion": base_cm,
                 "slices": base_slices},
        "pr": {"ref": pr.head_name, "sha": gather.git(root, "rev-parse", "HEAD"), "threshold": t_pr,
               "metrics": {k: metrics["ensemble"][k] for k in recomputed}, "confusion": metrics["ensemble"]["confusion"]},
        "test_rows": len(test), "fpr_points": fpr_points,
        "interval_level": level, "bootstrap_resamples": n_boot, "deltas": deltas,
        **decision, "review_params": rparams, "review_params_source": rsource, **changes,
        "future": future_facts(model, base, pr, t_base, t_pr),
        "per_source": ({"base": rates_by(test["source"], y, p_base, t_base),
                        "pr": rates_by(test["source"], y, p_pr, t_pr)} if "source" in test else None),
        "slice_movers": diffs.slice_movers(base_slices, metrics.get("slices", {}), int(slices["min_rows"]),
                                           int(slices["top"])),
        "pipeline": {"metrics_consistent": all(abs(recomputed[k] - metrics["ensemble"][k]["value"]) < 1e-9
                                               for k in recomputed)},
        "onnx": {"base": base.onnx, "pr": pr_onnx, "contract_changed": contract_changed(base.onnx, pr_onnx)},
        "released": {"base": released_facts(base.final_fit), "pr": released_facts(released_model_of(root))},
        "plots": _plots(out, args, pr.head_name, y, (p_base, p_pr), (t_base, t_pr), base_cm,
                        metrics["ensemble"]["confusion"]),
    }


def _changes(root: Path, out: Path, base: BaseSide, pr_params: dict) -> dict:
    """What the PR changed in params, data pointers and the prepared data, and whether data changed at all."""
    pr_pointers = gather.tracked_pointers(root)
    pointers = diffs.pointers_diff(base.pointers, pr_pointers)
    params_diff = diffs.params_diff(base.params, pr_params)
    pr_report = _json(root / paths.DATA_REPORT)
    rows = diffs.rows_diff(base.report, pr_report)
    changes = data_changes(base, pr_report, diffs.read_quarantine(root / QUARANTINE), out)
    data_changed = bool(pointers) or any(d["key"].split(".")[0] in ("data", "split") for d in params_diff) \
        or any(r["old"] != r["new"] for r in rows) or bool(changes["months"]) \
        or any(r["old"] != r["new"] for r in changes["quarantine"])
    return {"params_diff": params_diff, "pointers_diff": pointers, "pointer_count": len(pr_pointers),
            "rows_diff": rows, "data_changed": data_changed, "data_changes": changes}


def _decide(y, p_base, p_pr, thresholds, seen, deltas, bootstrap, fpr_points, rparams, labels_arg) -> dict:
    """The verdict: McNemar and the bootstrap intervals on the rows neither model has seen, then labels."""
    t_base, t_pr = thresholds
    scope = stats.verdict_scope(y, seen, int(rparams["min_verdict_rows"]))
    mask = scope.pop("mask")
    verdict_deltas = None
    if mask is not None:
        y, p_base, p_pr = y[mask], p_base[mask], p_pr[mask]
        verdict_deltas = bootstrap(y, p_pr, p_base, t_pr, t_base)
    mc = stats.mcnemar(y, p_base >= t_base, p_pr >= t_pr)
    verdict = stats.decide(mc, deltas if mask is None else verdict_deltas, fpr_points, rparams)
    labels = [s for s in (labels_arg or "").split(",") if s.strip()]
    verdict.accepted_by = (stats.acceptance(labels, rparams.get("accept_label"), rparams.get("accept_regression"))
                           if verdict.outcome == stats.WORSE else None)
    return {"verdict_scope": scope, "verdict_deltas": verdict_deltas, "mcnemar": mc,
            "mcnemar_by_class": stats.mcnemar_by_class(y, p_base >= t_base, p_pr >= t_pr),
            "verdict": verdict.to_dict(), "labels": labels}


def _plots(out: Path, args, head_name: str, y, scores, thresholds, base_cm, pr_cm) -> list[str]:
    from pipeline.training.plots import confusion_png, curves_png

    (p_base, p_pr), (t_base, t_pr) = scores, thresholds
    base_name, pr_name = f"base ({short_ref(args.base)})", f"PR ({head_name})"
    plots = list(PLOTS)  # the names the comment job's gate turns into text (pipeline/review/comment.py)
    confusion_png(base_cm, out / plots[0], f"{base_name} @ {t_base:.3f}")
    confusion_png(pr_cm, out / plots[1], f"{pr_name} @ {t_pr:.3f}")
    curves_png(y, {base_name: p_base, pr_name: p_pr}, out / plots[2], {base_name: t_base, pr_name: t_pr})
    return plots


def data_changes(base: BaseSide, pr_report: dict | None, pr_quarantine, out: Path) -> dict:
    """Rows per source, class and month; quarantine counts; the new label conflicts and other newly
    quarantined rows (in full as CSV files in ``out``, the first few in review.json)."""
    return {"months": diffs.months_diff(base.report, pr_report),
            "base_has_months": bool((base.report or {}).get("sources")),
            "quarantine": diffs.quarantine_diff(base.quarantine, pr_quarantine),
            "base_has_quarantine": base.quarantine is not None, "pr_has_quarantine": pr_quarantine is not None,
            **diffs.write_url_lists(diffs.new_quarantine(base.quarantine, pr_quarantine), out)}


def future_facts(model, base: BaseSide, pr: PRSide, t_base: float, t_pr: float) -> dict:
    """Both models on the PR's future split, per first-seen month, each at its own threshold."""
    from pipeline.training.model import phishing_proba

    newest = int((pr.params.get("evaluate") or {}).get("newest_months", 3))
    frame = pr.future
    facts = {"pr_has_split": frame is not None, "base_has_split": base.has_future_split,
             "from": None if frame is None else future_split_start(frame), "newest_months": newest,
             "rows": 0 if frame is None else len(frame)}
    if not facts["rows"]:
        return facts
    log.info("report: scoring %s future URLs with the PR model ...", f"{len(frame):,}")
    y, first_seen = frame["label"].to_numpy(), frame["first_seen"].astype(str).to_numpy()
    facts["seen_by_base"] = int(frame["url"].isin(base.seen_urls).sum())
    facts["base"] = stats.future_rates(first_seen, y, base.p_future, t_base, newest)
    facts["pr"] = stats.future_rates(first_seen, y, phishing_proba(model, frame["url"]), t_pr, newest)
    return facts


def short_ref(ref: str) -> str:
    return ref.removeprefix("origin/")


def _pipeline_facts(root: Path, review: dict, pr_run) -> None:
    dvc_yaml = yaml.safe_load((root / paths.DVC_YAML).read_text())
    facts = review["pipeline"]
    facts["stages"] = list(dvc_yaml.get("stages") or {})
    committed = gather.git_show(root, "HEAD", paths.DVC_LOCK)
    reproduced = gather.read_text(root / paths.DVC_LOCK)
    facts["lock_checked"] = True
    facts["lock_mismatch"] = diffs.lock_mismatch(committed, reproduced)
    facts["files_to_commit"] = _outputs_to_commit(root, dvc_yaml) if facts["lock_mismatch"] else []
    facts["stale_stages"] = [] if pr_run else gather.status_stages(root)


def write_outputs(review: dict, out: Path) -> None:
    write_json(out / "review.json", review)
    (out / "report.md").write_text(render.render(review, images=True), encoding="utf-8")
    (out / "summary.md").write_text(render.render(review, images=False), encoding="utf-8")


def _annotate(kind: str, title: str, message: str = "") -> None:
    """A GitHub workflow command: text through :func:`terminal` (no newline, CR or ESC can start
    another command), then GitHub's own escapes (``%``, and ``:`` / ``,`` in a property)."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        data = terminal(message or title).replace("%", "%25")
        prop = terminal(title).replace("%", "%25").replace(":", "%3A").replace(",", "%2C")
        print(f"::{kind} title={prop}::{data}", flush=True)


def _fenced(text: str) -> str:
    """Text as a fenced code block that no line of it can close (the fence outruns any backtick run)."""
    text = terminal(text, newlines=True)
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}\n{text}\n{fence}"


def _fail_report(out: Path, text: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "summary.md"):
        (out / name).write_text(text, encoding="utf-8")


def run_report(args) -> int:
    try:
        root = repo_root()
    except ReviewError as exc:
        print(f"report: not in a git repository: {terminal(exc, newlines=True)}", file=sys.stderr)
        return ExitCode.ERROR
    out = resolve_out(args, root)
    try:
        review = build_review(args, root, out)
    except PullError as exc:
        _fail_report(out, exc.diagnosis.markdown())
        print(f"report: {terminal(exc.diagnosis.title)}\n{terminal(exc.output, newlines=True)}", file=sys.stderr)
        _annotate("error", exc.diagnosis.title)
        return ExitCode.PULL
    except ReviewError as exc:
        _fail_report(out, f"### ⚠️ The model review could not be completed\n\n{_fenced(str(exc))}\n")
        print(f"report: {terminal(exc, newlines=True)}", file=sys.stderr)
        _annotate("error", "model review failed", str(exc)[:500])
        return ExitCode.ERROR
    write_outputs(review, out)
    verdict = review["verdict"]
    print(terminal(render.verdict_section(review)[0]))
    print(f"report: wrote {terminal(out / 'report.md')}, {terminal(out / 'summary.md')}, {terminal(out / 'review.json')} and "
          f"{len(review['plots'])} plots")
    if verdict["fails_check"]:
        _annotate("error", "model got worse", "see the review comment; accept with the label or param it names")
        return ExitCode.WORSE
    return ExitCode.OK


def run_pull(args) -> int:
    root = repo_root()
    try:
        facts = gather.pull(root, args.base, True if args.fork else None)
    except PullError as exc:
        _fail_report(resolve_out(args, root), exc.diagnosis.markdown())
        print(terminal(exc.output, newlines=True), file=sys.stderr)
        print(f"\npull-data: {terminal(exc.diagnosis.title)}\n\n{terminal(exc.diagnosis.advice, newlines=True)}",
              file=sys.stderr)
        _annotate("error", exc.diagnosis.title, exc.diagnosis.advice[:800])
        return ExitCode.PULL
    write_json(resolve_out(args, root) / PULL_FACTS, facts)
    pulled = ", ".join(terminal(p) for p in facts["pulled"]) or "nothing (all data was in the DVC cache)"
    print(f"pull-data: {len(facts['pointers'])} .dvc pointers; pulled from the remote: {pulled}")
    restored = ", ".join(terminal(p) for p in facts["outputs_restored"]) or "nothing"
    print(f"pull-data: stored outputs restored (dvc.lock's bytes): {restored}")
    if facts["outputs_not_stored"]:
        print("pull-data: not in the DVC remote, so `dvc repro` computes them: "
              + ", ".join(terminal(p) for p in facts["outputs_not_stored"]))
    return ExitCode.OK


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="PR review: compare this working tree with a base revision, write report.md",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="git revision of the champion (e.g. main, origin/main)")
    p.add_argument("--out", help="output directory (default: params.yaml review.out)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--repro", action="store_true", help="run `dvc repro` on the working tree first")
    how.add_argument("--repro-log", help="output of the `dvc repro` that built the working tree")
    p.add_argument("--repro-seconds", type=float, help="wall time of that `dvc repro`")
    p.add_argument("--labels", default="", help="comma-separated PR labels (one may accept a regression)")
    p.add_argument("--head-name", help="how to call the challenger (default: the current branch)")
    p.add_argument("--keep-base", action="store_true", help="keep the base worktree (for debugging)")
    p.set_defaults(func=run_report)

    q = subparsers.add_parser(
        "pull-data", help="check out cached DVC outputs, `dvc pull` missing data, explain failures",
        description=gather.pull.__doc__)
    q.add_argument("--base", default="main", help="base branch (named in the advice on failure)")
    q.add_argument("--out", help="where report.md explains a failure (default: params.yaml review.out)")
    q.add_argument("--fork", action="store_true", help="the PR comes from a fork (or env PR_FROM_FORK=true)")
    q.set_defaults(func=run_pull)
