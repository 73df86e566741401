"""Pure comparisons of two revisions: params, data pointers, row counts, locks, repro logs, slices."""
from __future__ import annotations

import re

import yaml

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


def class_rows(report: dict | None) -> dict[str, dict[str, int | None]]:
    """Rows per class from reports/data_report.json: raw training sources, each split, out-of-source."""
    if not report:
        return {}
    out: dict[str, dict[str, int | None]] = {}
    artefacts = report.get("raw_artefacts", {})
    if artefacts:
        out["raw (training sources)"] = {"legitimate": artefacts.get("0", {}).get("rows", 0),
                                         "phishing": artefacts.get("1", {}).get("rows", 0)}
    for name in ("train", "validation", "test"):
        split = report.get("splits", {}).get(name)
        if split:
            out[name] = {"legitimate": split["legitimate"], "phishing": split["phishing"]}
    if "out_of_source" in report:
        out["out-of-source (evaluation only)"] = {"legitimate": 0, "phishing": report["out_of_source"]["rows"]}
    return out


def rows_diff(old_report: dict | None, new_report: dict | None) -> list[dict]:
    """Rows per class before (base) and after (PR), one row per scope present on either side."""
    a, b = class_rows(old_report), class_rows(new_report)
    out = []
    for scope in list(b) + [s for s in a if s not in b]:
        for cls in ("legitimate", "phishing"):
            before, after = a.get(scope, {}).get(cls), b.get(scope, {}).get(cls)
            if scope.startswith("out-of-source") and cls == "legitimate":
                continue
            out.append({"scope": scope, "class": cls, "old": before, "new": after})
    return out


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
            what += [f"{part[:-1] if part != 'params' else 'param'} `{k}`" for k in keys]
        if what:
            out.append({"stage": stage, "what": what})
    return out


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_REPRO_PATTERNS = (
    (re.compile(r"^Running stage '([^']+)':", re.M), "re-ran"),
    (re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs", re.M), "restored from run-cache"),
    (re.compile(r"^Stage '([^']+)' didn't change, skipping", re.M), "up to date"),
)
STATUS_ORDER = ("re-ran", "restored from run-cache", "up to date")


def parse_repro_log(text: str) -> dict[str, str]:
    """{stage: 're-ran' | 'restored from run-cache' | 'up to date'} from `dvc repro` output."""
    text = _ANSI.sub("", text.replace("\r", "\n"))
    found: dict[str, tuple[int, str]] = {}
    for pattern, status in _REPRO_PATTERNS:
        for match in pattern.finditer(text):
            found[match.group(1)] = (match.start(), status)
    return {stage: status for stage, (_, status) in sorted(found.items(), key=lambda kv: kv[1][0])}


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
