"""How far re-trained outputs are from the committed ones, in the parity gate's terms (pure).

Bytes first (DVC's md5 of every output, the manifest's sha256 of the ONNX file): equal bytes end the
question. Otherwise the two ONNX files' scores on the test split decide, with the tolerance the
export gate uses (params ``export.max_abs_proba_diff``) and no label allowed to change.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline import paths
from pipeline.common import ExitCode
from pipeline.store.outputs import lock_outputs

# What was reviewed and released: these bytes equal means reproduced exactly.
RELEASED = (paths.MODEL.as_posix(), paths.FINAL_MODEL.as_posix(), paths.ONNX.as_posix())
IDENTICAL, WITHIN, DIFFERS, UNVERIFIED = "identical", "within tolerance", "differs", "unverified"


@dataclass(frozen=True)
class Side:
    """One side's outputs, parsed (None where a file is absent)."""
    lock: dict
    metrics: dict | None
    operating_point: dict | None
    onnx_sha256: str | None  # committed: the manifest's record; re-trained: the file's digest


def output_rows(committed_lock: dict, reproduced_lock: dict) -> list[dict]:
    """Every output either dvc.lock records, its md5 on both sides (None: not recorded there)."""
    old, new = lock_outputs(committed_lock), lock_outputs(reproduced_lock)
    rows = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path), new.get(path)
        md5_a, md5_b = a.md5 if a else None, b.md5 if b else None
        either = b or a
        rows.append({"path": path, "stage": either.stage if either else None, "committed_md5": md5_a, "reproduced_md5": md5_b,
                     "identical": md5_a is not None and md5_a == md5_b})
    return rows


def released_files(committed: Side, reproduced: Side) -> dict[str, dict]:
    """The model and the ONNX file: identical when DVC's md5 agrees, and the sha256 too where recorded."""
    rows = {r["path"]: r for r in output_rows(committed.lock, reproduced.lock)}
    files = {}
    for path in RELEASED:
        row = rows.get(path, {"committed_md5": None, "reproduced_md5": None, "identical": False})
        entry = {k: row[k] for k in ("committed_md5", "reproduced_md5", "identical")}
        if path == paths.ONNX.as_posix():
            entry.update(committed_sha256=committed.onnx_sha256, reproduced_sha256=reproduced.onnx_sha256)
            entry["identical"] = entry["identical"] and committed.onnx_sha256 == reproduced.onnx_sha256
        files[path] = entry
    return files


def numeric_leaves(tree, name: str = "") -> dict[str, float]:
    """{'ensemble.f1.value': 0.914, 'fpr_points[0]': 0.001, ...}: every number in a JSON tree (not bools)."""
    if isinstance(tree, dict):
        return {k: v for key, child in tree.items()
                for k, v in numeric_leaves(child, f"{name}.{key}" if name else str(key)).items()}
    if isinstance(tree, list):
        return {k: v for i, child in enumerate(tree) for k, v in numeric_leaves(child, f"{name}[{i}]").items()}
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return {name: tree}
    return {}


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _delta(a, b) -> float | None:
    if a is None or b is None:
        return None
    delta = b - a
    return delta if math.isfinite(delta) else None


def metric_deltas(committed: dict | None, reproduced: dict | None) -> list[dict]:
    """Every numeric leaf that differs (or exists on one side only), largest |delta| first."""
    old, new = numeric_leaves(committed or {}), numeric_leaves(reproduced or {})
    rows = [{"metric": name, "committed": old.get(name), "reproduced": new.get(name),
             "delta": _delta(old.get(name), new.get(name))}
            for name in old.keys() | new.keys() if not _same(old.get(name), new.get(name))]
    return sorted(rows, key=lambda r: (r["delta"] is None, -abs(r["delta"] or 0.0), r["metric"]))


def threshold_change(committed_op: dict | None, reproduced_op: dict | None) -> dict:
    """The released threshold (reports/operating_point.json, ``released``) of each side, and its change."""
    a = ((committed_op or {}).get("ensemble") or {}).get("threshold")
    b = ((reproduced_op or {}).get("ensemble") or {}).get("threshold")
    return {"committed": a, "reproduced": b, "delta": _delta(a, b)}


def stages_not_rerun(stages, ran) -> list[str]:
    """The dvc.yaml stages `dvc repro` did not run: their outputs were restored, not re-trained."""
    ran = set(ran)
    return [s for s in stages if s not in ran]


def parity_summary(report: dict, tolerance: float, committed_from: str) -> dict:
    """:func:`~pipeline.training.onnx_export.parity_report` (committed file as the reference) in one
    line per measure: the worst batch counts."""
    worst = max(report["batch_sizes"].values(), key=lambda r: (r["label_disagreements"], r["max_abs_proba_diff"]))
    return {"rows": report["rows"], "label_agreement": report["label_agreement"],
            "label_disagreements": worst["label_disagreements"],
            "example_disagreements": worst["example_disagreements"],
            "max_abs_proba_diff": report["max_abs_proba_diff"], "batch_sizes": sorted(map(int, report["batch_sizes"])),
            "tolerance": tolerance, "committed_onnx_from": committed_from}


def parity_reasons(parity: dict, tolerance: float) -> list[str]:
    """Why the two models are not interchangeable (empty: within tolerance)."""
    reasons = []
    if parity["label_disagreements"]:
        reasons.append(f"{parity['label_disagreements']:,} of {parity['rows']:,} test URLs get another label")
    if not parity["max_abs_proba_diff"] <= tolerance:  # NaN fails too
        reasons.append(f"max |ΔP| {parity['max_abs_proba_diff']:.3g} > export.max_abs_proba_diff {tolerance:g}")
    return reasons


def verdict(identical: bool, parity: dict | None, tolerance: float) -> dict:
    """Identical bytes, or every label equal and max |ΔP| within tolerance: exit 0; else non-zero."""
    if identical:
        return {"status": IDENTICAL, "exit_code": ExitCode.OK, "reasons": []}
    if parity is None:
        return {"status": UNVERIFIED, "exit_code": ExitCode.ERROR,
                "reasons": [("the committed ONNX file is in neither the work tree, the DVC cache nor the DVC remote, "
                            "so the two models could not be scored")]}
    reasons = parity_reasons(parity, tolerance)
    return {"status": DIFFERS if reasons else WITHIN, "exit_code": ExitCode.VERIFICATION if reasons else ExitCode.OK,
            "reasons": reasons}


def compare(committed: Side, reproduced: Side, parity: dict | None, tolerance: float) -> dict:
    """The report's comparison: bytes, every output's md5, threshold, metric deltas, parity, verdict."""
    released = released_files(committed, reproduced)
    identical = all(f["identical"] for f in released.values())
    return {"identical": identical, "released": released,
            "outputs": output_rows(committed.lock, reproduced.lock),
            "threshold": threshold_change(committed.operating_point, reproduced.operating_point),
            "metric_deltas": metric_deltas(committed.metrics, reproduced.metrics),
            "parity": parity, "tolerance": tolerance, "verdict": verdict(identical, parity, tolerance)}
