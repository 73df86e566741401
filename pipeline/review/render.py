"""review.json -> report.md: the PR comment, readable with no image host.

Section order is fixed (reviewers learn where to look): verdict, params and
data, data changes (data PRs), metrics, future split, per source, confusion
matrices, slices, pipeline facts, ONNX facts. Every number printed comes from
review.json or from the PR's metrics files, with the formats below, so a test
can check each one against its source.

Text that comes from data or from the PR (URLs, quarantine reasons, source
names, months, params keys and values, paths) goes through :func:`md_cell` and
nothing else: it cannot open HTML, links, emphasis, a mention or a new row.
"""
from __future__ import annotations

from typing import Any

from pipeline.common import MISSING, md_cell
from pipeline.formatting import count, general, interval, num, signed
from pipeline.review.cells import cell, short
from pipeline.review.data_sections import data_changes_section, params_section
from pipeline.review.metric_sections import (
    confusion_section,
    future_section,
    metrics_section,
    per_source_section,
    slices_section,
)
from pipeline.review.payloads import Review
from pipeline.review.pipeline_sections import onnx_section, pipeline_section
from pipeline.review.stats import (
    BETTER,
    NO_CHANGE,
    WORSE,
    FindingPayload,
    format_p,
    metric_label,
)

ICON = {BETTER: "✅ Better", NO_CHANGE: "➖ No significant change", WORSE: "❌ Worse"}


# -- 1. verdict --------------------------------------------------------------------------------

def evidence(finding: FindingPayload, review: Review) -> str:
    if finding["name"] == "mcnemar":
        m = review["mcnemar"]
        return (f"McNemar exact test p = {format_p(m['p_value'])} (α = {general(review['verdict']['alpha'])}), "
                f"accuracy {signed(m['effect'] * 100, 2)} pp ({m['base_only']} URLs newly wrong, "
                f"{m['pr_only']} newly right)")
    return (f"paired bootstrap Δ{metric_label(finding['name'])} {signed(finding['value'])} "
            f"{interval(finding['ci_low'], finding['ci_high'], signed)}")


def verdict_section(review: Review) -> list[str]:
    v = review["verdict"]
    decisive = [f for f in v["findings"] if v["outcome"] == NO_CHANGE or f["direction"] == v["outcome"]]
    base, pr = review["base"], review["pr"]
    scope = review.get("verdict_scope") or {}
    where = ((f"on the {count(scope['rows'])} of the PR's {count(review['test_rows'])} test URLs the base model never "
              "saw") if scope.get("restricted") else f"on the PR's {count(review['test_rows'])} test URLs")
    line = (f"**{ICON[v['outcome']]}**: challenger {md_cell(pr['ref'])} ({short(pr['sha'])}) vs champion "
            f"{md_cell(base['ref'])} ({short(base['sha'])}) {where} — "
            + "; ".join(evidence(f, review) for f in decisive) + ".")
    out = [line, ""]
    if v["outcome"] == WORSE:
        if v["accepted_by"]:
            out.append(f"The regression is accepted by {v['accepted_by']}, so the check passes.")
        else:
            accept = review["review_params"]
            out.append(f"**This fails the check.** To accept the regression, add the label "
                       f"{md_cell(accept.get('accept_label') or 'accept-regression')} to the PR, or set "
                       f"`review.accept_regression: \"<why>\"` in params.yaml.")
        out.append("")
    if review["pipeline"].get("lock_mismatch"):
        out += ["⚠️ The committed `dvc.lock` is stale: see **Pipeline** below.", ""]
    if not review["pipeline"].get("pr") and review["pipeline"].get("stale_stages"):
        out += [("⚠️ The working tree's pipeline outputs are out of date (`dvc status`): the numbers describe the "
                "last `dvc repro`, not the current code. Run `dvc repro` (or pass `--repro`)."), ""]
    conflicts = ((review.get("data_changes") or {}).get("label_conflicts") or {}).get("rows")
    if review.get("data_changed") and conflicts:
        out += [f"⚠️ {count(conflicts)} new label conflicts (the same URL with both labels): see **Data changes**.",
                ""]
    if review["onnx"].get("contract_changed"):
        out += ["**⚠️ Breaking change: the ONNX I/O contract changed** (see **ONNX model** below).", ""]
    return out


def released_section(review: Review) -> list[str]:
    """The model the release ships, apart from the held-out model every other section measures."""
    released = review.get("released") or {}
    b: dict[str, Any] = dict(released.get("base") or {})
    p: dict[str, Any] = dict(released.get("pr") or {})
    if not p:
        return []
    rows = [("trained on (train + future splits)", "rows", count), ("newest phishing month in its data",
            "newest_phishing_month", cell), ("threshold (chosen on validation)", "threshold", num),
            ("test rows (its own test split)", "test_rows", count), ("test ROC AUC", "roc_auc", num),
            ("test recall", "recall", num), ("test FPR", "fpr", num)]
    out = ["### Released model (final fit)", "",
           ("The verdict and every section below measure the **held-out model**, trained without the future split, "
           "so that the future split can measure it. The release ships the **final fit**: the same recipe on the "
           "train and future splits, with its own threshold chosen on the validation split. Its numbers:"), "",
           "| | base | PR |", "|---|---:|---:|"]
    for label, key, fmt in rows:
        out.append(f"| {label} | {fmt(b[key]) if key in b else MISSING} | {fmt(p[key]) if key in p else MISSING} |")
    return out + [""]


def render(review: Review, images: bool = True) -> str:
    """The whole comment body."""
    lines = (verdict_section(review) + released_section(review) + params_section(review) + data_changes_section(review)
             + metrics_section(review) + future_section(review) + per_source_section(review)
             + confusion_section(review, images) + slices_section(review) + pipeline_section(review)
             + onnx_section(review))
    lines.append(f"<sub>{md_cell('python -m pipeline report --base ' + str(review['base']['ref']))} · thresholds from "
                 f"{md_cell(review['review_params_source'], code=False)} · numbers in `review.json`</sub>")
    return "\n".join(lines).rstrip() + "\n"
