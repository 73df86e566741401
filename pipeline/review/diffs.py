"""Comparisons of two revisions: params, data pointers, row counts, quarantine, locks, repro logs, slices."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline.common import md_cell, read_csv, write_csv
from pipeline.training.dataset import reason_kind

_MISSING = object()


# -- params -----------------------------------------------------------------------------------

def flatten(tree, prefix: str = "") -> dict:
    """{'train.lexical_forest.n_estimators': 120, ...}; lists are leaves (compared whole)."""
    if isinstance(tree, dict) and tree:
        out = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree} if prefix else {}


def params_diff(old: dict | None, new: dict | None) -> list[dict]:
    """Changed, added and removed keys (dotted), in the new file's order, removed ones last."""
    a, b = flatten(old or {}), flatten(new or {})
    out = []
    for key, value in b.items():
        before = a.get(key, _MISSING)
        if before is _MISSING:
            out.append({"key": key, "change": "added", "old": None, "new": value})
        elif before != value:
            out.append({"key": key, "change": "changed", "old": before, "new": value})
    out += [{"key": k, "change": "removed", "old": v, "new": None} for k, v in a.items() if k not in b]
    return out


# -- data -------------------------------------------------------------------------------------

def pointer_facts(text: str | None) -> dict | None:
    """md5/size/nfiles of a .dvc pointer file's single output (None if the file does not exist)."""
    if text is None:
        return None
    doc = yaml.safe_load(text) or {}
    out = (doc.get("outs") or [{}])[0]
    return {k: out.get(k) for k in ("md5", "size", "nfiles")}


def pointers_diff(old: dict[str, str | None], new: dict[str, str | None]) -> list[dict]:
    """Which .dvc pointers were added, removed or changed: {path: file text} on each side."""
    out = []
    for path in sorted(set(old) | set(new)):
        a, b = pointer_facts(old.get(path)), pointer_facts(new.get(path))
        if a == b:
            continue
        change = "added" if a is None else "removed" if b is None else "changed"
        out.append({"path": path, "change": change,
                    "old_md5": (a or {}).get("md5"), "new_md5": (b or {}).get("md5"),
                    "old_size": (a or {}).get("size"), "new_size": (b or {}).get("size")})
    return out


CLASSES = ("legitimate", "phishing")
SPLIT_NAMES = ("train", "validation", "test", "future")
POOLED = "raw (training sources)"
OUT_OF_SOURCE = "out-of-source (evaluation only)"


def class_rows(report: dict | None) -> dict[tuple[str, str | None], dict[str, int]]:
    """Rows per class from reports/data_report.json, keyed by (scope, source).

    Scopes: the raw training sources pooled, each source's raw rows (source set), each split
    (future included) and the out-of-source stream. A report written before per-source classes
    (``raw_artefacts``) yields only the pooled raw rows, so both formats compare there.
    """
    if not report:
        return {}
    out: dict[tuple[str, str | None], dict[str, int]] = {}
    sources = report.get("sources") or {}
    if sources:
        per_source: dict[tuple[str, str | None], dict[str, int]] = {("raw", str(name)): {c: facts["raw_rows"] for c, facts in (entry.get("classes") or {}).items()
                                          if c in CLASSES}
                      for name, entry in sources.items()}
        out[(POOLED, None)] = {c: sum(rows.get(c, 0) for rows in per_source.values()) for c in CLASSES}
        out.update(per_source)
    elif report.get("raw_artefacts"):
        artefacts = report["raw_artefacts"]
        out[(POOLED, None)] = {"legitimate": artefacts.get("0", {}).get("rows", 0),
                               "phishing": artefacts.get("1", {}).get("rows", 0)}
    for name in SPLIT_NAMES:
        split = (report.get("splits") or {}).get(name)
        if split:
            out[(name, None)] = {c: split[c] for c in CLASSES}
    if "out_of_source" in report:
        out[(OUT_OF_SOURCE, None)] = {"phishing": report["out_of_source"]["rows"]}
    return out


def rows_diff(old_report: dict | None, new_report: dict | None) -> list[dict]:
    """Rows per class before (base) and after (PR): one row per scope and class present on either side."""
    a, b = class_rows(old_report), class_rows(new_report)
    out = []
    for scope, source in list(b) + [k for k in a if k not in b]:
        for cls in CLASSES:
            before, after = a.get((scope, source), {}).get(cls), b.get((scope, source), {}).get(cls)
            if before is not None or after is not None:
                out.append({"scope": scope, "source": source, "class": cls, "old": before, "new": after})
    return out


def month_rows(report: dict | None) -> dict[tuple[str, str, str], int]:
    """{(source, class, 'YYYY-MM'): clean rows first seen that month} (undated rows have no month)."""
    out = {}
    for source, entry in ((report or {}).get("sources") or {}).items():
        for cls, facts in (entry.get("classes") or {}).items():
            for month, n in (facts.get("clean_rows_by_month") or {}).items():
                out[(str(source), str(cls), str(month))] = int(n)
    return out


def months_diff(old_report: dict | None, new_report: dict | None) -> list[dict]:
    """The (source, class, month) clean-row counts that changed, by source, class and month; absent = 0."""
    a, b = month_rows(old_report), month_rows(new_report)
    return [{"source": s, "class": c, "month": m, "old": a.get((s, c, m), 0), "new": b.get((s, c, m), 0)}
            for s, c, m in sorted(set(a) | set(b)) if a.get((s, c, m), 0) != b.get((s, c, m), 0)]


# -- quarantine.csv ---------------------------------------------------------------------------

QUARANTINE_COLUMNS = ["source", "file", "line", "url", "label", "first_seen", "reason"]
CONFLICT = "conflicting labels"
LISTED = 50  # rows of each URL list in the comment: a constant, so a PR cannot shorten what it shows


def read_quarantine(path: Path):
    """data/prepared/quarantine.csv as text columns (a URL "NA" stays "NA"), None if there is none."""
    if not path.is_file():
        return None
    frame = read_csv(path, encoding="utf-8", encoding_errors="backslashreplace")  # write_csv's cells, unescaped
    for column in QUARANTINE_COLUMNS:
        if column not in frame:
            frame[column] = ""
    return frame[QUARANTINE_COLUMNS]


def quarantine_counts(frame) -> dict[tuple[str, str], int]:
    """{(source, reason kind): rows}; the kind is the reason without its row-specific detail."""
    if frame is None or not len(frame):
        return {}
    kinds = frame.assign(kind=frame["reason"].map(reason_kind)).groupby(["source", "kind"]).size()
    return {(str(s), str(k)): int(n) for (s, k), n in kinds.items()}


def quarantine_diff(old, new) -> list[dict]:
    """Quarantined rows per source and reason kind, base and PR (None where that side has no file)."""
    a, b = quarantine_counts(old), quarantine_counts(new)
    return [{"source": s, "reason": k, "old": None if old is None else a.get((s, k), 0),
             "new": None if new is None else b.get((s, k), 0)} for s, k in sorted(set(a) | set(b))]


def new_quarantine(old, new) -> dict:
    """The PR's quarantined rows whose (url, reason) the base's quarantine.csv lacks, split into
    ``label_conflicts`` (reason starts with "conflicting labels") and ``new_quarantine`` (the rest)."""
    if new is None:
        new = _empty_quarantine()
    known = set() if old is None else set(zip(old["url"], old["reason"]))
    fresh = new[np.array([(u, r) not in known for u, r in zip(new["url"], new["reason"])], dtype=bool)]
    conflict = fresh["reason"].str.startswith(CONFLICT)
    return {"label_conflicts": fresh[conflict], "new_quarantine": fresh[~conflict]}


def _empty_quarantine():
    return pd.DataFrame({c: pd.Series(dtype=str) for c in QUARANTINE_COLUMNS})


def write_url_lists(lists: dict, out: Path) -> dict:
    """Each list in full as ``out/<name>.csv``; for review.json its row count, file and first LISTED rows."""
    summary = {}
    for name, frame in lists.items():
        write_csv(frame, out / f"{name}.csv", encoding="utf-8")
        summary[name] = {"rows": len(frame), "csv": f"{name}.csv",
                         "shown": frame.head(LISTED).to_dict("records")}
    return summary


# -- dvc.lock and the repro log ---------------------------------------------------------------

def _lock_stage_facts(entry: dict) -> dict:
    params = {}
    for file_params in (entry.get("params") or {}).values():
        params.update(flatten(file_params))
    return {"cmd": entry.get("cmd"),
            "deps": {d["path"]: d.get("md5") for d in entry.get("deps", [])},
            "params": params,
            "outs": {o["path"]: o.get("md5") for o in entry.get("outs", [])}}


def lock_mismatch(committed: str | None, reproduced: str | None) -> list[dict]:
    """Stages whose committed dvc.lock entry differs from the reproduced one, with what differs."""
    a = (yaml.safe_load(committed) or {}).get("stages", {}) if committed else {}
    b = (yaml.safe_load(reproduced) or {}).get("stages", {}) if reproduced else {}
    out = []
    for stage in list(b) + [s for s in a if s not in b]:
        if stage not in a:
            out.append({"stage": stage, "what": ["not in the committed dvc.lock"]})
            continue
        if stage not in b:
            out.append({"stage": stage, "what": ["no longer in the pipeline"]})
            continue
        fa, fb = _lock_stage_facts(a[stage]), _lock_stage_facts(b[stage])
        what = []
        if fa["cmd"] != fb["cmd"]:
            what.append("cmd")
        for part in ("deps", "params", "outs"):
            keys = sorted(k for k in set(fa[part]) | set(fb[part]) if fa[part].get(k, _MISSING) != fb[part].get(k, _MISSING))
            what += [f"{part[:-1] if part != 'params' else 'param'} {md_cell(k)}" for k in keys]  # markdown
        if what:
            out.append({"stage": stage, "what": what})
    return out


# -- slices -----------------------------------------------------------------------------------

SLICE_METRICS = ("recall", "fpr", "precision", "roc_auc")


def slice_movers(base: dict, pr: dict, min_rows: int, top: int) -> list[dict]:
    """The (slice, metric) pairs whose value moved most between base and PR, largest |Δ| first."""
    rows = []
    for family, slices in pr.items():
        for name, m in slices.items():
            b = base.get(family, {}).get(name)
            if b is None or m["rows"] < min_rows:
                continue
            for metric in SLICE_METRICS:
                if metric in m and metric in b and m[metric] != b[metric]:
                    rows.append({"family": family, "slice": name, "rows": m["rows"], "metric": metric,
                                 "base": b[metric], "pr": m[metric], "delta": m[metric] - b[metric]})
    rows.sort(key=lambda r: (-abs(r["delta"]), r["family"], r["slice"], r["metric"]))
    return rows[:top]
