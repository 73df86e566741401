"""Training data (per source and class, quarantine, splits) and Evaluation data and split method."""
from __future__ import annotations

from pipeline.common import md_cell, md_table
from pipeline.formatting import MISSING, count, pct
from pipeline.release.card.format import CLASS_ORDER, RIGHT, SPLIT_ORDER
from pipeline.release.card.sources import Sources, dig


def _reasons(counts: dict | None) -> str:
    """'duplicate: 107; control character: 1' (most frequent first), or 'none'."""
    items = sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return "; ".join(f"{md_cell(reason)}: {count(n)}" for reason, n in items) or "none"


def _span(entry: dict | None) -> str:
    low, high = dig(entry, "first_seen_min"), dig(entry, "first_seen_max")
    return MISSING if not low else md_cell(f"{low} to {high}")


def _source_rows(name: str, entry: dict) -> list[list[str]]:
    """Rows of the per-source table: one per class present, plus quarantined rows without a label."""
    rows = []
    for cls in CLASS_ORDER:
        c = dig(entry, "classes", cls)
        if c is None:
            continue
        rows.append([md_cell(name), cls, count(c.get("raw_rows")), count(c.get("clean_rows")),
                     count(c.get("dated_rows")), _span(c), pct(c.get("https")), pct(c.get("www")),
                     pct(c.get("html_entity_amp")), _reasons(c.get("quarantined"))])
    if entry.get("unlabelled_quarantined"):
        rows.append([md_cell(name), "no valid label"] + [MISSING] * 7 + [_reasons(entry["unlabelled_quarantined"])])
    return rows


def _split_row(name: str, s: dict) -> list[str]:
    by_source = "; ".join(f"{md_cell(k)}: {count(n)}" for k, n in (s.get("by_source") or {}).items()) or MISSING
    return [name, count(s.get("rows")), count(s.get("legitimate")), count(s.get("phishing")),
            pct(s.get("phishing_share")), count(s.get("registered_domains")), _span(s), by_source]


def training_data_fields(src: Sources) -> dict[str, str]:
    """Per source and class, quarantine, and the splits (from the data report)."""
    rep = src["data_report"]
    source_rows = [row for name, entry in rep.get("sources", {}).items() for row in _source_rows(name, entry)]
    splits = rep.get("splits", {})
    return {
        "source_table": md_table(
            ["source", "class", "raw rows", "clean rows", "dated rows", "first seen", "https", "`www.`",
             "`&amp;`", "quarantined (by reason)"],
            ["---", "---", RIGHT, RIGHT, RIGHT, "---", RIGHT, RIGHT, RIGHT, "---"], source_rows),
        "quarantined": count(rep["quarantined"]),
        "quarantine_reasons": _reasons(rep.get("quarantine_reasons")),
        "clean_rows": count(rep["clean_rows"]),
        "split_table": md_table(
            ["split", "URLs", "legitimate", "phishing", "phishing share", "registered domains", "first seen",
             "URLs per source"], ["---"] + [RIGHT] * 5 + ["---", "---"],
            [_split_row(name, splits[name]) for name in SPLIT_ORDER if name in splits]),
        "test_rows_of_groups_in_future": count(rep.get("test_rows_of_groups_in_future")),
    }


def evaluation_data_fields(src: Sources) -> dict[str, str]:
    """How the splits were made; the out-of-source stream; the bootstrap."""
    rep, params = src["data_report"], src["params"]
    oos = rep.get("out_of_source", {})
    years = sorted(int(y) for y in oos.get("years", {}))
    return {
        "group_by": rep["group_by"],
        "test_fraction": f"{params['split']['test_fraction']:g}",
        "validation_fraction": f"{params['split']['validation_fraction']:g}",
        "split_seed": str(params["split"]["seed"]),
        "validation_rows": count(src["operating_point"]["validation_rows"]),
        "test_registered_domains": count(dig(rep, "splits", "test", "registered_domains")),
        "oos_rows": count(oos.get("rows")),
        "oos_seen_in_training": count(oos.get("seen_in_training")),
        "oos_first_year": str(years[0]) if years else MISSING,
        "oos_last_year": str(years[-1]) if years else MISSING,
        "bootstrap_resamples": count(params["evaluate"]["bootstrap_resamples"]),
        "evaluate_seed": str(params["evaluate"]["seed"]),
    }
