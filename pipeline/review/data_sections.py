"""The comment's params, data and data-changes sections (data PRs: rows, months, quarantine, URL lists)."""
from __future__ import annotations

from pipeline.common import md_cell
from pipeline.formatting import count
from pipeline.review.cells import CELL_CHARS, cell, collapsed, delta_cell, short_digest
from pipeline.review.diffs import LISTED
from pipeline.review.payloads import Review

# -- 2. params and data ------------------------------------------------------------------------

def params_section(review: Review) -> list[str]:
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
        out += [f"| {md_cell(p['path'])} | {p['change']} | {short_digest(p['old_md5'], 10)} | {short_digest(p['new_md5'], 10)} "
                f"| {count(p['old_size'])} | {count(p['new_size'])} |" for p in pointers]
    else:
        out.append(f"**Data:** no `.dvc` pointer changed ({review['pointer_count']} pointers).")
    out.append("")
    if review["data_changed"]:
        out += ["Rows per class (from `reports/data_report.json`):", "",
                "| rows | class | base | PR | Δ |", "|---|---|---:|---:|---:|"]
        for r in review["rows_diff"]:
            scope = r["scope"] + (f" {md_cell(r['source'])}" if r.get("source") else "")
            out.append(f"| {scope} | {r['class']} | {count(r['old'])} | {count(r['new'])} | {delta_cell(r)} |")
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



# -- 2b. data changes (data PRs) ---------------------------------------------------------------

def data_changes_section(review: Review) -> list[str]:
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
              f"{count(r['new'])} | {delta_cell(r)} |" for r in rows[:LISTED]]
    more = [f"… and {count(len(rows) - LISTED)} more (all of them in `review.json`).", ""] \
        if len(rows) > LISTED else []
    return [title + ":", ""] + collapsed(f"{count(len(rows))} changed month counts", lines) + more


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
              f"{delta_cell(r)} |" for r in rows]
    return [title + ":", ""] + collapsed(f"{count(len(rows))} sources and reasons", lines)


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
        collapsed(f"{count(len(shown))} rows", lines)
