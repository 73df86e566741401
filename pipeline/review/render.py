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

import json
import shlex

from pipeline import paths
from pipeline.common import MISSING, md_cell, terminal
from pipeline.review.diffs import LISTED
from pipeline.review.stats import BETTER, NO_CHANGE, WORSE, format_p, metric_label
from pipeline.store.dvc import RESTORED

ICON = {BETTER: "✅ Better", NO_CHANGE: "➖ No significant change", WORSE: "❌ Worse"}
HEADLINE = ("roc_auc", "pr_auc", "tpr_at_fpr_*", "precision", "recall", "f1", "fpr")
STATUS_TEXT = {"re-ran": "🔄 re-ran", "restored from run-cache": "♻️ restored from run-cache",
               "up to date": "✔️ up to date (outputs from the DVC cache)",
               RESTORED: "📦 restored from the DVC remote (dvc.lock's bytes)"}


def num(v) -> str:
    """A metric value: 4 decimals."""
    return MISSING if v is None else f"{v:.4f}"


def signed(v) -> str:
    return MISSING if v is None else f"{v:+.4f}"


def interval(low, high, sign: bool = False) -> str:
    f = signed if sign else num
    return MISSING if low is None else f"[{f(low)}, {f(high)}]"


def count(n) -> str:
    return MISSING if n is None else f"{n:,}"


def pct(x) -> str:
    return f"{x:.2%}"


CELL_CHARS = {"where": 60, "label": 20, "url": 120, "reason": 160}  # widest cells of the URL lists


def _short(digest, n: int) -> str:
    """The first ``n`` characters of a digest as code (a digest read from a PR's files is text too)."""
    return md_cell(str(digest or "—")[:n])


def _value(value) -> str:
    """A number as it is; anything else (a manifest field is the PR's text) through md_cell."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else md_cell(value)


def cell(value) -> str:
    """A params value in a table cell."""
    if value is None:
        return MISSING
    return md_cell(json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value)


def rate_cells(base: dict | None, pr: dict | None, key: str) -> list[str]:
    """[base, PR, Δ] of one rate; MISSING where a side lacks it (e.g. FPR of a month without legitimate rows)."""
    b, p = (base or {}).get(key), (pr or {}).get(key)
    return [num(b), num(p), MISSING if b is None or p is None else signed(p - b)]


def _collapsed(summary: str, lines: list[str], over: int = 12) -> list[str]:
    """A table, folded into <details> when it has more than ``over`` rows (``summary`` is our own text)."""
    if len(lines) - 2 <= over:
        return lines + [""]
    return [f"<details><summary>{summary}</summary>", ""] + lines + ["", "</details>", ""]


def headline_keys(fpr_points) -> list[str]:
    from pipeline.training.metrics import fpr_key

    keys = []
    for key in HEADLINE:
        keys += [fpr_key(p) for p in fpr_points] if key == "tpr_at_fpr_*" else [key]
    return keys


def short(sha: str | None) -> str:
    return (sha or "")[:7]


# -- 1. verdict --------------------------------------------------------------------------------

def evidence(finding: dict, review: dict) -> str:
    if finding["name"] == "mcnemar":
        m = review["mcnemar"]
        return (f"McNemar exact test p = {format_p(m['p_value'])} (α = {review['verdict']['alpha']:g}), "
                f"accuracy {m['effect'] * 100:+.2f} pp ({m['base_only']} URLs newly wrong, "
                f"{m['pr_only']} newly right)")
    return (f"paired bootstrap Δ{metric_label(finding['name'])} {signed(finding['value'])} "
            f"{interval(finding['ci_low'], finding['ci_high'], sign=True)}")


def verdict_section(review: dict) -> list[str]:
    v = review["verdict"]
    decisive = [f for f in v["findings"] if v["outcome"] == NO_CHANGE or f["direction"] == v["outcome"]]
    base, pr = review["base"], review["pr"]
    scope = review.get("verdict_scope") or {}
    where = (f"on the {count(scope['rows'])} of the PR's {count(review['test_rows'])} test URLs the base model never "
             "saw" if scope.get("restricted") else f"on the PR's {count(review['test_rows'])} test URLs")
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
        out += ["⚠️ The working tree's pipeline outputs are out of date (`dvc status`): the numbers describe the "
                "last `dvc repro`, not the current code. Run `dvc repro` (or pass `--repro`).", ""]
    conflicts = ((review.get("data_changes") or {}).get("label_conflicts") or {}).get("rows")
    if review.get("data_changed") and conflicts:
        out += [f"⚠️ {count(conflicts)} new label conflicts (the same URL with both labels): see **Data changes**.",
                ""]
    if review["onnx"].get("contract_changed"):
        out += ["**⚠️ Breaking change: the ONNX I/O contract changed** (see **ONNX model** below).", ""]
    return out


# -- 2. params and data ------------------------------------------------------------------------

def params_section(review: dict) -> list[str]:
    out = ["### Params and data", ""]
    diff = review["params_diff"]
    if diff:
        out += ["**Params** (`params.yaml`, only changed keys)", "", "| key | base | PR |", "|---|---|---|"]
        out += [f"| {md_cell(d['key'])} | {cell(d['old'])} | {cell(d['new'])} |" for d in diff]
    else:
        out.append("**Params:** no change.")
    out.append("")
    pointers = review["pointers_diff"]
    if pointers:
        out += ["**Data** (`.dvc` pointers that changed)", "", "| pointer | change | base md5 | PR md5 | base bytes | PR bytes |",
                "|---|---|---|---|---|---|"]
        out += [f"| {md_cell(p['path'])} | {p['change']} | {_short(p['old_md5'], 10)} | {_short(p['new_md5'], 10)} "
                f"| {count(p['old_size'])} | {count(p['new_size'])} |" for p in pointers]
    else:
        out.append(f"**Data:** no `.dvc` pointer changed ({review['pointer_count']} pointers).")
    out.append("")
    if review["data_changed"]:
        out += ["Rows per class (from `reports/data_report.json`):", "",
                "| rows | class | base | PR | Δ |", "|---|---|---:|---:|---:|"]
        for r in review["rows_diff"]:
            scope = r["scope"] + (f" {md_cell(r['source'])}" if r.get("source") else "")
            out.append(f"| {scope} | {r['class']} | {count(r['old'])} | {count(r['new'])} | {_delta(r)} |")
        out.append("")
        scope = review.get("verdict_scope") or {}
        note = "The base model is re-scored on the PR's test split."
        if scope.get("seen_by_base"):
            note += (f" ⚠️ {count(scope['seen_by_base'])} of its {count(review['test_rows'])} URLs were in the base "
                     "model's training or validation split, which flatters the base: ")
            note += (f"the verdict's tests use only the {count(scope['rows'])} URLs the base never saw (the "
                     "tables use all of them)." if scope["restricted"] else
                     "too few unseen URLs remain, so the verdict uses all of them. Read it with care.")
        out += [note, ""]
    return out


def _delta(row: dict) -> str:
    return MISSING if row["old"] is None or row["new"] is None else f"{row['new'] - row['old']:+,}"


# -- 2b. data changes (data PRs) ---------------------------------------------------------------

def data_changes_section(review: dict) -> list[str]:
    changes = review.get("data_changes")
    if not review["data_changed"] or not changes:
        return []
    return (["### Data changes", ""] + months_table(changes) + quarantine_table(changes)
            + url_list_table(changes.get("label_conflicts"), "New label conflicts",
                             "the same URL with both labels; every row of it is quarantined")
            + url_list_table(changes.get("new_quarantine"), "Other newly quarantined rows",
                             "rows the base did not quarantine with this reason"))


def months_table(changes: dict) -> list[str]:
    rows = changes.get("months") or []
    title = ("**Rows added or removed per source, class and month** (clean rows by first-seen month; undated rows "
             "have no month" + ("" if changes.get("base_has_months") else
                                "; the base's data report has no per-month counts, so every month counts as added")
             + ")")
    if not rows:
        return [title + ": no month changed.", ""]
    lines = ["| source | class | month | base | PR | Δ |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {md_cell(r['source'])} | {md_cell(r['class'])} | {md_cell(r['month'])} | {count(r['old'])} | "
              f"{count(r['new'])} | {_delta(r)} |" for r in rows[:LISTED]]
    more = [f"… and {count(len(rows) - LISTED)} more (all of them in `review.json`).", ""] \
        if len(rows) > LISTED else []
    return [title + ":", ""] + _collapsed(f"{count(len(rows))} changed month counts", lines) + more


def quarantine_table(changes: dict) -> list[str]:
    rows = changes.get("quarantine") or []
    title = "**Quarantined rows per source and reason** (`data/prepared/quarantine.csv`)"
    missing = [who for who, key in (("base", "base_has_quarantine"), ("PR", "pr_has_quarantine"))
               if not changes.get(key)]
    if missing:
        title += f"; no quarantine.csv on the {' or '.join(missing)} side"
    if not rows:
        return [title + ": none.", ""]
    lines = ["| source | reason | base | PR | Δ |", "|---|---|---:|---:|---:|"]
    lines += [f"| {md_cell(r['source'])} | {md_cell(r['reason'])} | {count(r['old'])} | {count(r['new'])} | "
              f"{_delta(r)} |" for r in rows]
    return [title + ":", ""] + _collapsed(f"{count(len(rows))} sources and reasons", lines)


def url_list_table(listing: dict | None, title: str, what: str) -> list[str]:
    """The first LISTED rows of a URL list, every text cell through md_cell; the CSV has them all."""
    if not listing:
        return []
    n = listing["rows"]
    if not n:
        return [f"**{title}:** none.", ""]
    shown = listing["shown"][:LISTED]
    where = (f"all of them in `{listing['csv']}`" if n <= LISTED else
             f"the first {count(len(shown))} below; all of them in `{listing['csv']}`")
    lines = ["| where | label | URL | reason |", "|---|---|---|---|"]
    lines += [f"| {md_cell(str(r.get('source', '')) + ':' + str(r.get('line', '')), CELL_CHARS['where'])} | "
              f"{md_cell(r.get('label'), CELL_CHARS['label'])} | {md_cell(r.get('url'), CELL_CHARS['url'])} | "
              f"{md_cell(r.get('reason'), CELL_CHARS['reason'])} |" for r in shown]
    return [f"**{title}: {count(n)}** ({what}; {where}, in the run's `review` artifact):", ""] + \
        _collapsed(f"{count(len(shown))} rows", lines)


# -- 3. metrics --------------------------------------------------------------------------------

def metrics_section(review: dict) -> list[str]:
    level = f"{review['interval_level']:.0%}"
    base, pr, deltas = review["base"]["metrics"], review["pr"]["metrics"], review["deltas"]
    out = [f"### Metrics on the PR's test split ({count(review['test_rows'])} URLs)", "",
           f"| metric | base | PR | Δ (PR − base) | Δ {level} interval (paired) | PR {level} interval |",
           "|---|---:|---:|---:|---:|---:|"]
    for key in headline_keys(review["fpr_points"]):
        p, d = pr[key], deltas[key]
        beyond = not (p["ci95_low"] <= base[key] <= p["ci95_high"])
        delta = f"**{signed(d['value'])}**" if beyond else signed(d["value"])
        out.append(f"| {metric_label(key)} | {num(base[key])} | {num(p['value'])} | {delta} | "
                   f"{interval(d['ci95_low'], d['ci95_high'], sign=True)} | {interval(p['ci95_low'], p['ci95_high'])} |")
    tb, tp = review["base"]["threshold"], review["pr"]["threshold"]
    out.append(f"| threshold | {num(tb)} | {num(tp)} | {signed(tp - tb)} | — | — |")
    m = review["mcnemar"]
    out += ["", f"**Bold Δ**: the base value lies outside the PR's {level} interval. Precision, recall, F1 and "
            "FPR are at each model's own operating threshold (chosen on its validation split). The paired "
            f"interval resamples the test URLs jointly for both models ({review['bootstrap_resamples']} resamples); "
            "it excludes 0 when the change is significant.", "",
            f"McNemar's test (paired decisions at each model's threshold{_scope_note(review)}): "
            f"p = {format_p(m['p_value'])}", "",
            "| | PR right | PR wrong |", "|---|---:|---:|",
            f"| **base right** | {count(m['both_right'])} | {count(m['base_only'])} |",
            f"| **base wrong** | {count(m['pr_only'])} | {count(m['both_wrong'])} |", ""]
    return out


def _scope_note(review: dict) -> str:
    scope = review.get("verdict_scope") or {}
    return f", on the {count(scope['rows'])} test URLs the base never saw" if scope.get("restricted") else ""


# -- 3b. future split --------------------------------------------------------------------------

def future_section(review: dict) -> list[str]:
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
    return out + _collapsed(f"{count(len(pr_months))} months", lines)


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


def per_source_section(review: dict) -> list[str]:
    sources = review.get("per_source")
    if not sources:
        return []
    base, pr = sources["base"], sources["pr"]
    out = ["### Per source (the PR's test split)", "",
           "ROC AUC where a source has both classes, recall where it has phishing URLs, FPR where it has "
           "legitimate ones; each model at its own threshold.", "",
           "| source | phishing | legitimate | metric | base | PR | Δ |", "|---|---:|---:|---|---:|---:|---:|"]
    for name in sorted(pr):
        p, b = pr[name], base.get(name)
        for key in SOURCE_METRICS:
            if key in p or key in (b or {}):
                out.append(f"| {md_cell(name)} | {count(p.get('phishing'))} | {count(p.get('legitimate'))} | "
                           f"{metric_label(key)} | " + " | ".join(rate_cells(b, p, key)) + " |")
    return out + [""]


# -- 4. confusion ------------------------------------------------------------------------------

def confusion_section(review: dict, images: bool) -> list[str]:
    b, p = review["base"]["confusion"], review["pr"]["confusion"]

    def pair(cm, actual):
        row = (cm["tn"], cm["fp"]) if actual == 0 else (cm["fn"], cm["tp"])
        total = max(sum(row), 1)
        return [f"{count(n)} ({pct(n / total)})" for n in row]

    neg, pos = b["tn"] + b["fp"], b["fn"] + b["tp"]
    out = ["### Confusion matrices", "",
           f"Counts and row rates; base @ threshold {num(review['base']['threshold'])}, PR @ threshold "
           f"{num(review['pr']['threshold'])}.", "",
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

def slices_section(review: dict) -> list[str]:
    movers = review["slice_movers"]
    out = ["### Slices that moved most", ""]
    if not movers:
        return out + ["No slice metric changed.", ""]
    out += ["| slice | rows | metric | base | PR | Δ |", "|---|---:|---|---:|---:|---:|"]
    out += [f"| {md_cell(m['family'])}: {md_cell(m['slice'])} | {count(m['rows'])} | {metric_label(m['metric'])} | {num(m['base'])} | "
            f"{num(m['pr'])} | {signed(m['delta'])} |" for m in movers]
    return out + [""]


# -- 6. pipeline -------------------------------------------------------------------------------

def base_sentence(pulled: dict, base_run: dict) -> str:
    """Whether the base is the model its dvc.lock names (restored) or a re-training (the fallback)."""
    model, took = paths.MODEL.as_posix(), _seconds(base_run["seconds"])
    ran = [s for s, status in base_run["stages"].items() if status == "re-ran"]
    if model in (pulled.get("outputs_not_stored") or []):
        return (f"⚠️ **The base was trained again here** ({took}; re-ran {_names(ran)}): its outputs are not in "
                f"the DVC remote, so the base numbers come from a re-training, not from the stored model.")
    where = "restored from the DVC remote" if model in (pulled.get("outputs_restored") or []) else "in the DVC cache"
    return (f"Base: the model, ONNX file and plots its `dvc.lock` names were **{where}**, not trained again; "
            f"its worktree re-ran {_names(ran)} ({took}).")


def pipeline_section(review: dict) -> list[str]:
    facts = review["pipeline"]
    pr_run, base_run = facts.get("pr"), facts.get("base")
    out = ["### Pipeline", ""]
    stages = facts["stages"]
    if pr_run or base_run:
        out += ["| stage | PR (this run) | base |", "|---|---|---|"]
        stale = set(facts.get("stale_stages") or [])
        for stage in stages:
            if pr_run:
                a = STATUS_TEXT.get(pr_run["stages"].get(stage), MISSING)
            else:
                a = "⚠️ out of date (`dvc status`)" if stage in stale else "✔️ up to date (`dvc status`)"
            b = STATUS_TEXT.get((base_run or {}).get("stages", {}).get(stage), MISSING)
            out.append(f"| {md_cell(stage)} | {a} | {b} |")
        out.append("")
    if pr_run:
        reused = [s for s in stages if pr_run["stages"].get(s) in ("restored from run-cache", "up to date", RESTORED)]
        ran = [s for s in stages if pr_run["stages"].get(s) == "re-ran"]
        out.append(f"`dvc repro` of the PR: {_seconds(pr_run['seconds'])}; re-ran {_names(ran)}; reused from "
                   f"the DVC cache {_names(reused)}.")
    else:
        stale = facts.get("stale_stages") or []
        out.append("No `dvc repro` log was given (`--repro` or `--repro-log`). "
                   + (f"`dvc status`: **outputs are out of date** for {_names(stale)}; run `dvc repro` first."
                      if stale else "`dvc status`: outputs are up to date with code, params and data."))
    if base_run:
        out.append(base_sentence(facts.get("base_outputs") or {}, base_run))
    out.append(f"Whole review: {_seconds(facts.get('review_seconds'))}.")
    out.append("")
    mismatch = facts.get("lock_mismatch")
    if mismatch:
        files = " ".join(shlex.quote(terminal(f)) for f in facts.get("files_to_commit") or [str(paths.DVC_LOCK)])
        if pr_run:
            out.append("**⚠️ The committed `dvc.lock` does not match what was reproduced here.** The numbers in "
                       "this comment come from the reproduction, not from the committed outputs. Stages that differ:")
        else:
            out.append("**⚠️ The committed `dvc.lock` does not match the working tree's.** Stages that differ:")
        out.append("")
        # each entry of "what" is markdown already: lock_mismatch passes its keys through md_cell
        out += [f"- {md_cell(m['stage'])}: " + ", ".join(m["what"][:6]) + (" …" if len(m["what"]) > 6 else "")
                for m in mismatch]
        out += ["", "To fix it, reproduce on your branch (merge the base branch first if it moved) and commit "
                "the lock and the small outputs:", "",
                f"```bash\ndvc repro && git add {files} && git commit -m \"dvc repro\"\n```", ""]
    elif facts.get("lock_checked"):
        out += ["✅ The committed `dvc.lock` matches " + ("what was reproduced." if pr_run else "the working tree's."),
                ""]
    if not facts.get("metrics_consistent", True):
        out += ["⚠️ `metrics.json` does not match the PR model's scores on the test split: the outputs are "
                "stale. Run `dvc repro`.", ""]
    return out


def _seconds(s) -> str:
    if s is None:
        return "time not recorded"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _names(names) -> str:
    return ", ".join(md_cell(n) for n in names) if names else "none"


# -- 7. onnx -----------------------------------------------------------------------------------

def onnx_section(review: dict) -> list[str]:
    o = review["onnx"]
    b, p = o["base"], o["pr"]
    out = ["### ONNX model", ""]
    if o.get("contract_changed"):
        out += [f"**⚠️ The I/O contract changed (digest {_short(b.get('contract_digest'), 12)} → "
                f"{_short(p.get('contract_digest'), 12)}, contract major {_value(b.get('contract_major'))} → "
                f"{_value(p.get('contract_major'))}). This is a breaking change for the product: every consumer must be "
                "updated, and the release gets a new MAJOR version.**", ""]
    else:
        out += ["I/O contract unchanged.", ""]
    out += ["| | base | PR |", "|---|---:|---:|",
            f"| file size (bytes) | {count(b.get('size_bytes'))} | {count(p.get('size_bytes'))} |",
            f"| sha256 | {_short(b.get('sha256'), 12)} | {_short(p.get('sha256'), 12)} |",
            f"| parity rows | {count(b.get('parity_rows'))} | {count(p.get('parity_rows'))} |",
            f"| parity batch sizes | {_batches(b)} | {_batches(p)} |",
            f"| label agreement | {_agree(b)} | {_agree(p)} |",
            f"| max \\|P_sklearn − P_onnx\\| | {_sci(b.get('max_abs_proba_diff'))} | {_sci(p.get('max_abs_proba_diff'))} |",
            f"| parity tolerance | {_sci(b.get('tolerance'))} | {_sci(p.get('tolerance'))} |",
            f"| contract digest | {_short(b.get('contract_digest'), 12)} | {_short(p.get('contract_digest'), 12)} |",
            ""]
    return out


def _batches(side: dict) -> str:
    return ", ".join(_value(x) for x in side.get("batch_sizes") or []) or MISSING


def _agree(side: dict) -> str:
    return MISSING if side.get("label_agreement") is None else pct(side["label_agreement"])


def _sci(x) -> str:
    return MISSING if x is None else f"{x:.2e}"


def released_section(review: dict) -> list[str]:
    """The model the release ships, apart from the held-out model every other section measures."""
    released = review.get("released") or {}
    b, p = released.get("base") or {}, released.get("pr") or {}
    if not p:
        return []
    rows = [("trained on (train + future splits)", "rows", count), ("newest phishing month in its data",
            "newest_phishing_month", cell), ("threshold (chosen on validation)", "threshold", num),
            ("test rows (its own test split)", "test_rows", count), ("test ROC AUC", "roc_auc", num),
            ("test recall", "recall", num), ("test FPR", "fpr", num)]
    out = ["### Released model (final fit)", "",
           "The verdict and every section below measure the **held-out model**, trained without the future split, "
           "so that the future split can measure it. The release ships the **final fit**: the same recipe on the "
           "train and future splits, with its own threshold chosen on the validation split. Its numbers:", "",
           "| | base | PR |", "|---|---:|---:|"]
    for label, key, fmt in rows:
        out.append(f"| {label} | {fmt(b[key]) if key in b else MISSING} | {fmt(p[key]) if key in p else MISSING} |")
    return out + [""]


def render(review: dict, images: bool = True) -> str:
    """The whole comment body."""
    lines = (verdict_section(review) + released_section(review) + params_section(review) + data_changes_section(review)
             + metrics_section(review) + future_section(review) + per_source_section(review)
             + confusion_section(review, images) + slices_section(review) + pipeline_section(review)
             + onnx_section(review))
    lines.append(f"<sub>{md_cell('python -m pipeline report --base ' + str(review['base']['ref']))} · thresholds from "
                 f"{md_cell(review['review_params_source'], code=False)} · numbers in `review.json`</sub>")
    return "\n".join(lines).rstrip() + "\n"
