"""The comparison: the PR model scores the PR's test split, and every number of review.json is put
together from both sides (metrics, paired tests, the verdict, data changes, future split, plots)."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import joblib
import numpy as np
import pandas as pd

from pipeline import paths
from pipeline.common import read_json
from pipeline.review import diffs, gather, stats
from pipeline.review.comment import PLOTS
from pipeline.review.facts import (
    contract_changed,
    json_or_none,
    onnx_facts,
    released_facts,
    released_model_of,
)
from pipeline.review.payloads import Review
from pipeline.review.settings import ReviewParams, review_params
from pipeline.review.sides import BaseSide, PRSide
from pipeline.training.evaluation import rates_by, slice_metrics
from pipeline.training.metrics import (
    confusion,
    headline_metrics,
    paired_bootstrap_delta,
)
from pipeline.training.model import phishing_proba
from pipeline.training.plots import confusion_png, curves_png
from pipeline.training.splitting import future_split_start

log = logging.getLogger(__name__)


def compare(root: Path, out: Path, base_ref: str, labels: str, base: BaseSide, pr: PRSide) -> Review:
    """Score the PR's test split with the PR model, then put every comparison with the base together."""
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
    decision = _decide(y, p_base, p_pr, (t_base, t_pr), seen, deltas, bootstrap, fpr_points, rparams, labels)
    base_cm = confusion(y, p_base >= t_base)
    base_slices = slice_metrics(y, p_base, test["url"], t_base, pr.params["evaluate"]["length_bins"])
    slices = rparams["slices"]
    pr_onnx = onnx_facts(json_or_none(root / paths.MANIFEST), json_or_none(root / paths.PARITY))
    review: dict[str, Any] = {
        "base": {"ref": base_ref, "sha": base.sha, "threshold": t_base,
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
        "plots": _plots(out, base_ref, pr.head_name, y, (p_base, p_pr), (t_base, t_pr), base_cm,
                        metrics["ensemble"]["confusion"]),
    }
    return cast(Review, review)


def _changes(root: Path, out: Path, base: BaseSide, pr_params: dict) -> dict[str, Any]:
    """What the PR changed in params, data pointers and the prepared data, and whether data changed at all."""
    pr_pointers = gather.tracked_pointers(root)
    pointers = diffs.pointers_diff(base.pointers, pr_pointers)
    params_diff = diffs.params_diff(base.params, pr_params)
    pr_report = json_or_none(root / paths.DATA_REPORT)
    rows = diffs.rows_diff(base.report, pr_report)
    changes = data_changes(base, pr_report, diffs.read_quarantine(root / paths.QUARANTINE), out)
    data_changed = bool(pointers) or any(d["key"].split(".")[0] in ("data", "split") for d in params_diff) \
        or any(r["old"] != r["new"] for r in rows) or bool(changes["months"]) \
        or any(r["old"] != r["new"] for r in changes["quarantine"])
    return {"params_diff": params_diff, "pointers_diff": pointers, "pointer_count": len(pr_pointers),
            "rows_diff": rows, "data_changed": data_changed, "data_changes": changes}


Bootstrap = Callable[..., dict]


def _decide(y: np.ndarray, p_base: np.ndarray, p_pr: np.ndarray, thresholds: tuple[float, float],
            seen: np.ndarray, deltas: dict, bootstrap: Bootstrap, fpr_points: list[float], rparams: ReviewParams,
            labels_arg: str) -> dict[str, Any]:
    """The verdict: McNemar and the bootstrap intervals on the rows neither model has seen, then labels."""
    t_base, t_pr = thresholds
    scope = stats.verdict_scope(y, seen, int(rparams["min_verdict_rows"]))
    mask = scope.pop("mask")
    verdict_deltas = None
    if mask is not None:
        y, p_base, p_pr = y[mask], p_base[mask], p_pr[mask]
        verdict_deltas = bootstrap(y, p_pr, p_base, t_pr, t_base)
    mc = stats.mcnemar(y, p_base >= t_base, p_pr >= t_pr)
    verdict = stats.decide(mc, deltas if verdict_deltas is None else verdict_deltas, fpr_points, rparams)
    labels = [s for s in (labels_arg or "").split(",") if s.strip()]
    verdict.accepted_by = (stats.acceptance(labels, rparams.get("accept_label"), rparams.get("accept_regression"))
                           if verdict.outcome == stats.WORSE else None)
    return {"verdict_scope": scope, "verdict_deltas": verdict_deltas, "mcnemar": mc,
            "mcnemar_by_class": stats.mcnemar_by_class(y, p_base >= t_base, p_pr >= t_pr),
            "verdict": verdict.to_dict(), "labels": labels}


def _plots(out: Path, base_ref: str, head_name: str, y: np.ndarray, scores: tuple[np.ndarray, np.ndarray],
           thresholds: tuple[float, float], base_cm: dict, pr_cm: dict) -> list[str]:
    (p_base, p_pr), (t_base, t_pr) = scores, thresholds
    base_name, pr_name = f"base ({short_ref(base_ref)})", f"PR ({head_name})"
    plots = list(PLOTS)  # the names the comment job's gate turns into text (pipeline/review/comment.py)
    confusion_png(base_cm, out / plots[0], f"{base_name} @ {t_base:.3f}")
    confusion_png(pr_cm, out / plots[1], f"{pr_name} @ {t_pr:.3f}")
    curves_png(y, {base_name: p_base, pr_name: p_pr}, out / plots[2], {base_name: t_base, pr_name: t_pr})
    return plots


def data_changes(base: BaseSide, pr_report: dict | None, pr_quarantine: pd.DataFrame | None,
                 out: Path) -> dict[str, Any]:
    """Rows per source, class and month; quarantine counts; the new label conflicts and other newly
    quarantined rows (in full as CSV files in ``out``, the first few in review.json)."""
    return {"months": diffs.months_diff(base.report, pr_report),
            "base_has_months": bool((base.report or {}).get("sources")),
            "quarantine": diffs.quarantine_diff(base.quarantine, pr_quarantine),
            "base_has_quarantine": base.quarantine is not None, "pr_has_quarantine": pr_quarantine is not None,
            **diffs.write_url_lists(diffs.new_quarantine(base.quarantine, pr_quarantine), out)}


def future_facts(model: Any, base: BaseSide, pr: PRSide, t_base: float, t_pr: float) -> dict[str, Any]:
    """Both models on the PR's future split, per first-seen month, each at its own threshold."""
    newest = int(pr.params["evaluate"]["newest_months"])
    frame = pr.future
    facts: dict[str, Any] = {"pr_has_split": frame is not None, "base_has_split": base.has_future_split,
                             "from": None if frame is None else future_split_start(frame), "newest_months": newest,
                             "rows": 0 if frame is None else len(frame)}
    if frame is None or not facts["rows"]:
        return facts
    log.info("report: scoring %s future URLs with the PR model ...", f"{len(frame):,}")
    y, first_seen = frame["label"].to_numpy(), frame["first_seen"].astype(str).to_numpy()
    facts["seen_by_base"] = int(frame["url"].isin(base.seen_urls).sum())
    facts["base"] = stats.future_rates(first_seen, y, base.p_future, t_base, newest)
    facts["pr"] = stats.future_rates(first_seen, y, phishing_proba(model, frame["url"]), t_pr, newest)
    return facts


def short_ref(ref: str) -> str:
    return ref.removeprefix("origin/")
