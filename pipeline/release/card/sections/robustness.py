"""How the model holds up on what it was not tuned for: Leave-one-source-out, Per-slice performance,
and the checks the Limitations quote (format artefacts per source, the format-stripped scores)."""
from __future__ import annotations

from pipeline.common import md_cell, md_table
from pipeline.formatting import MISSING, count, num, pct, small
from pipeline.release.card.format import (
    CLASS_ORDER,
    RIGHT,
    SLICE_TITLES,
    length_order,
    rates,
)
from pipeline.release.card.sources import Sources, dig


def loso_fields(src: Sources) -> dict[str, str]:
    """Leave-one-source-out refits (metrics.json ``leave_one_source_out``)."""
    loso = src["metrics"].get("leave_one_source_out") or {}
    folds = loso.get("folds") or {}
    rows = [[md_cell(name), count(f.get("train_rows")), count(f.get("rows")),
             count(f.get("excluded_seen_domain_rows")), *rates(f), num(f.get("threshold"), 6)]
            for name, f in folds.items()]
    return {
        "loso_max_train_rows": count(loso.get("max_train_rows")),
        "loso_max_test_rows": count(loso.get("max_test_rows")),
        "loso_table": md_table(["held-out source", "train rows", "test rows", "excluded (domain seen in training)",
                              "ROC AUC", "recall", "FPR", "threshold"], ["---"] + [RIGHT] * 7, rows),
        "loso_verdict": _loso_verdict(folds, src["metrics"]["target_fpr"]),
    }


def _loso_verdict(folds: dict, target: float) -> str:
    recall = {n: f["recall"] for n, f in folds.items() if f.get("recall") is not None}
    fpr = {n: f["fpr"] for n, f in folds.items() if f.get("fpr") is not None}
    parts = []
    if recall:
        worst = min(recall, key=lambda n: (recall[n], n))
        parts.append(f"the lowest recall is on {md_cell(worst)} ({num(recall[worst])})")
    if fpr:
        worst = max(fpr, key=lambda n: (fpr[n], n))
        above = sum(v > target for v in fpr.values())
        parts.append(f"the highest false-positive rate on {md_cell(worst)} ({num(fpr[worst])}); "
                     f"{above} of {len(fpr)} held-out sources with legitimate URLs exceed the target {target:g}")
    if not parts:
        return "No fold had enough rows to measure recall or a false-positive rate."
    return "With a source held out entirely, " + "; ".join(parts) + "."


def slice_fields(src: Sources) -> dict[str, str]:
    """Per-slice tables of the test split, and the slice numbers the limitations quote."""
    sl = src["metrics"].get("slices") or {}
    tables = []
    for family in sorted(sl, key=lambda f: list(SLICE_TITLES).index(f) if f in SLICE_TITLES else 99):
        slices = sl[family]
        names = sorted(slices, key=length_order) if family == "length" else sorted(slices)
        rows = [[md_cell(n), count(dig(slices, n, "rows")), pct(dig(slices, n, "phishing_share")),
                 *rates(slices[n], ("recall", "fpr", "precision", "roc_auc"))] for n in names]
        tables.append(f"### {SLICE_TITLES.get(family, md_cell(family))}\n\n" + md_table(
            ["slice", "URLs", "phishing share", "recall", "FPR", "precision", "ROC AUC"],
            ["---"] + [RIGHT] * 6, rows))
    lengths = {k: v["recall"] for k, v in (sl.get("length") or {}).items() if "recall" in v}
    hardest = min(lengths, key=lambda k: (lengths[k], length_order(k))) if lengths else None
    return {
        "slice_tables": "\n\n".join(tables),
        "https_recall": num(dig(sl, "scheme", "https", "recall")),
        "http_recall": num(dig(sl, "scheme", "http", "recall")),
        "no_www_fpr": num(dig(sl, "www", "no www.", "fpr")),
        "www_fpr": num(dig(sl, "www", "www.", "fpr")),
        "hardest_length_slice": md_cell(hardest or MISSING),
        "hardest_length_recall": num(dig(sl, "length", hardest, "recall")),
        "hardest_length_fpr": num(dig(sl, "length", hardest, "fpr")),
    }


def _shares(sources: dict, key: str) -> str:
    """'ebbu2017 36.2% vs 2.0%; jpcert 77.3% (phishing only)': legitimate vs phishing, per source."""
    parts = []
    for name, entry in sources.items():
        have = {c: dig(entry, "classes", c, key) for c in CLASS_ORDER if dig(entry, "classes", c) is not None}
        if len(have) == 2:
            parts.append(f"{md_cell(name)} {pct(have['legitimate'])} vs {pct(have['phishing'])}")
        elif have:
            (cls, share), = have.items()
            parts.append(f"{md_cell(name)} {pct(share)} ({cls} only)")
    return "; ".join(parts) or MISSING


def _class_share(sources: dict, source: str, cls: str) -> float | None:
    """``source``'s share of the clean rows of class ``cls`` over all sources."""
    total = sum(dig(e, "classes", cls, "clean_rows") or 0 for e in sources.values())
    mine = dig(sources, source, "classes", cls, "clean_rows")
    return mine / total if mine is not None and total else None


def limitation_fields(src: Sources) -> dict[str, str]:
    """Format artefacts per source, the format-stripped check, source composition."""
    m, sources = src["metrics"], src["data_report"].get("sources", {})
    stripped = m.get("format_stripped") or {}
    change = stripped.get("max_abs_score_change")
    return {
        "https_shares": _shares(sources, "https"),
        "www_shares": _shares(sources, "www"),
        "stripped_max_change": small(change),
        "stripped_verdict": _stripped_verdict(change, src["parity"]["tolerance"]),
        "stripped_recall": num(stripped.get("recall")),
        "stripped_fpr": num(stripped.get("fpr")),
        "jpcert_phishing_share": pct(_class_share(sources, "jpcert", "phishing"), 0),
        "citizenlab_legitimate_share": pct(_class_share(sources, "citizenlab", "legitimate"), 0),
    }


def _stripped_verdict(change: float | None, tolerance: float) -> str:
    if change is None:
        return "**Check: not run** (metrics.json has no format-stripped scores)."
    if change == 0:
        return ("**Check passed: the scores are identical**: the model cannot use the scheme or `www.` as evidence, "
                "so the differences between those slices come from what else differs between such URLs.")
    if change <= tolerance:
        return (f"**Check passed: the scores change by float round-off only** (at most {small(change)}, within the "
                f"export parity tolerance {tolerance:g}).")
    return (f"**Check failed: the scores change by up to {small(change)}**, so something in the model still sees the "
            f"scheme or `www.`.")
