"""The comment's measurement sections: metrics and McNemar, future split, per source, confusion, slices."""
from __future__ import annotations

from pipeline.common import md_cell
from pipeline.formatting import count, interval, num, pct, signed
from pipeline.review.cells import collapsed, rate_cells
from pipeline.review.payloads import Review
from pipeline.review.stats import format_p, metric_label
from pipeline.training.metrics import fpr_key

HEADLINE = ("roc_auc", "pr_auc", "tpr_at_fpr_*", "precision", "recall", "f1", "fpr")


def headline_keys(fpr_points) -> list[str]:
    keys = []
    for key in HEADLINE:
        keys += [fpr_key(p) for p in fpr_points] if key == "tpr_at_fpr_*" else [key]
    return keys


# -- 3. metrics --------------------------------------------------------------------------------

def metrics_section(review: Review) -> list[str]:
    level = pct(review["interval_level"], 0)
    base, pr, deltas = review["base"]["metrics"], review["pr"]["metrics"], review["deltas"]
    out = [f"### Metrics on the PR's test split ({count(review['test_rows'])} URLs)", "",
           f"| metric | base | PR | Δ (PR − base) | Δ {level} interval (paired) | PR {level} interval |",
           "|---|---:|---:|---:|---:|---:|"]
    for key in headline_keys(review["fpr_points"]):
        p, d = pr[key], deltas[key]
        beyond = not (p["ci95_low"] <= base[key] <= p["ci95_high"])
        delta = f"**{signed(d['value'])}**" if beyond else signed(d["value"])
        out.append(f"| {metric_label(key)} | {num(base[key])} | {num(p['value'])} | {delta} | "
                   f"{interval(d['ci95_low'], d['ci95_high'], signed)} | {interval(p['ci95_low'], p['ci95_high'])} |")
    tb, tp = review["base"]["threshold"], review["pr"]["threshold"]
    out.append(f"| threshold | {num(tb)} | {num(tp)} | {signed(tp - tb)} | — | — |")
    m = review["mcnemar"]
    out += ["", (f"**Bold Δ**: the base value lies outside the PR's {level} interval. Precision, recall, F1 and "
            "FPR are at each model's own operating threshold (chosen on its validation split). The paired "
            f"interval resamples the test URLs jointly for both models ({review['bootstrap_resamples']} resamples); "
            "it excludes 0 when the change is significant."), "",
            (f"McNemar's test (paired decisions at each model's threshold{_scope_note(review)}): "
            f"p = {format_p(m['p_value'])}"), "",
            "| | PR right | PR wrong |", "|---|---:|---:|",
            f"| **base right** | {count(m['both_right'])} | {count(m['base_only'])} |",
            f"| **base wrong** | {count(m['pr_only'])} | {count(m['both_wrong'])} |", ""]
    return out


def _scope_note(review: Review) -> str:
    scope = review.get("verdict_scope") or {}
    return f", on the {count(scope['rows'])} test URLs the base never saw" if scope.get("restricted") else ""


# -- 3b. future split --------------------------------------------------------------------------

def future_section(review: Review) -> list[str]:
    f = review.get("future")
    if not f:
        return []
    since = f" (URLs first seen on or after {md_cell(f['from'])})" if f.get("from") else ""
    out = [f"### Future split{since}", ""]
    if not f.get("pr_has_split"):
        return out + ["The PR has no future split (`data/prepared/future.parquet`): nothing to compare.", ""]
    if not f.get("rows"):
        return out + ["The PR's future split is empty: nothing to compare.", ""]
    out += _future_notes(f) + [newest_line(f), ""]
    lines = ["| month | phishing | legitimate | base recall | PR recall | Δ recall | base FPR | PR FPR | Δ FPR |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines.append(_month_row("**all months**", f["base"]["overall"], f["pr"]["overall"]))
    pr_months = f["pr"]["by_month"]
    lines += [_month_row(md_cell(m), f["base"]["by_month"].get(m), pr_months[m]) for m in sorted(pr_months)]
    return out + collapsed(f"{count(len(pr_months))} months", lines)


def _future_notes(f: dict) -> list[str]:
    notes = [f"Both models score the PR's {count(f['rows'])} future URLs, each at its own threshold."]
    if not f.get("base_has_split"):
        notes.append("The base has no future split (`data/prepared/future.parquet`): its model was not held "
                     "out from these months by design.")
    if f.get("seen_by_base"):
        notes.append(f"⚠️ {count(f['seen_by_base'])} of these URLs were in the base model's training or "
                     "validation split, which flatters the base.")
    return [" ".join(notes), ""]


def newest_line(f: dict) -> str:
    n, b, p = f["newest_months"], f["base"]["newest"], f["pr"]["newest"]
    if not p["months"]:
        return f"**Recall on the newest {n} months:** no month of the future split holds phishing URLs."
    months = md_cell(p["months"][0]) + ("" if len(p["months"]) == 1 else f" … {md_cell(p['months'][-1])}")
    base, pr, delta = rate_cells(b, p, "recall")
    return (f"**Recall on the newest {n} months** ({months}, {count(p['phishing'])} phishing URLs): "
            f"base {base}, PR {pr}, Δ {delta}.")


def _month_row(label: str, base: dict | None, pr: dict) -> str:
    return " | ".join([f"| {label}", count(pr.get("phishing")), count(pr.get("legitimate")),
                       *rate_cells(base, pr, "recall"), *rate_cells(base, pr, "fpr")]) + " |"


# -- 3c. per source ----------------------------------------------------------------------------

SOURCE_METRICS = ("roc_auc", "recall", "fpr")


def per_source_section(review: Review) -> list[str]:
    sources = review.get("per_source")
    if not sources:
        return []
    base, pr = sources["base"], sources["pr"]
    out = ["### Per source (the PR's test split)", "",
           ("ROC AUC where a source has both classes, recall where it has phishing URLs, FPR where it has "
           "legitimate ones; each model at its own threshold."), "",
           "| source | phishing | legitimate | metric | base | PR | Δ |", "|---|---:|---:|---|---:|---:|---:|"]
    for name in sorted(pr):
        p, b = pr[name], base.get(name)
        for key in SOURCE_METRICS:
            if key in p or key in (b or {}):
                out.append(f"| {md_cell(name)} | {count(p.get('phishing'))} | {count(p.get('legitimate'))} | "
                           f"{metric_label(key)} | " + " | ".join(rate_cells(b, p, key)) + " |")
    return out + [""]


# -- 4. confusion ------------------------------------------------------------------------------

def confusion_section(review: Review, images: bool) -> list[str]:
    b, p = review["base"]["confusion"], review["pr"]["confusion"]

    def pair(cm, actual):
        row = (cm["tn"], cm["fp"]) if actual == 0 else (cm["fn"], cm["tp"])
        total = max(sum(row), 1)
        return [f"{count(n)} ({pct(n / total, 2)})" for n in row]

    neg, pos = b["tn"] + b["fp"], b["fn"] + b["tp"]
    out = ["### Confusion matrices", "",
           (f"Counts and row rates; base @ threshold {num(review['base']['threshold'])}, PR @ threshold "
           f"{num(review['pr']['threshold'])}."), "",
           "| actual | base: predicted legitimate | base: predicted phishing | PR: predicted legitimate | PR: predicted phishing |",
           "|---|---:|---:|---:|---:|",
           f"| legitimate ({count(neg)}) | " + " | ".join(pair(b, 0) + pair(p, 0)) + " |",
           f"| phishing ({count(pos)}) | " + " | ".join(pair(b, 1) + pair(p, 1)) + " |", ""]
    if images and review.get("plots"):
        out += [f"![{name.removesuffix('.png')}]({name})" for name in review["plots"]] + [""]
    elif review.get("plots"):
        out += ["Plots (" + ", ".join(f"`{n}`" for n in review["plots"]) + ") are in the run's `review` artifact.", ""]
    return out


# -- 5. slices ---------------------------------------------------------------------------------

def slices_section(review: Review) -> list[str]:
    movers = review["slice_movers"]
    out = ["### Slices that moved most", ""]
    if not movers:
        return out + ["No slice metric changed.", ""]
    out += ["| slice | rows | metric | base | PR | Δ |", "|---|---:|---|---:|---:|---:|"]
    out += [f"| {md_cell(m['family'])}: {md_cell(m['slice'])} | {count(m['rows'])} | {metric_label(m['metric'])} | {num(m['base'])} | "
            f"{num(m['pr'])} | {signed(m['delta'])} |" for m in movers]
    return out + [""]
