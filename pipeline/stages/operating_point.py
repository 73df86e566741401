"""Stage `operating-point`: choose decision thresholds on the validation split, for both models.

The threshold is a product decision (how many legitimate URLs may be flagged),
so it is chosen once, on data the model never trained on and the test split
never sees, and every later stage reads it from ``reports/operating_point.json``.
"""
from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd

from pipeline import paths
from pipeline.common import terminal, write_json
from pipeline.stages import add_stage_command
from pipeline.training.metrics import source_safe_threshold, threshold_metrics
from pipeline.training.model import scores


def operating_points(y, ensemble_p, members: dict, sources, target_fpr: float, min_legitimate: int) -> dict:
    """Threshold and validation rates for the ensemble and for each member alone.

    The threshold keeps the validation FPR at or below the target on every
    source with at least ``min_legitimate`` legitimate rows, not only on the
    pooled mix: a promise made on the mix can break on the source that is
    hardest to tell apart.
    """
    def point(p):
        t, binding = source_safe_threshold(y, p, sources, target_fpr, min_legitimate)
        rates = threshold_metrics(y, p, t)
        per_source = {}
        for source in sorted(set(sources)):
            mask = sources == source
            r = threshold_metrics(y[mask], p[mask], t)
            entry = {"rows": int(mask.sum()), "legitimate": int((y[mask] == 0).sum())}
            entry.update({"fpr": r["fpr"]} if entry["legitimate"] else {})
            entry.update({"recall": r["recall"]} if entry["legitimate"] < entry["rows"] else {})
            per_source[str(source)] = entry
        return {"threshold": t, "binding_source": binding, "validation_fpr": rates["fpr"],
                "validation_recall": rates["recall"], "per_source": per_source}

    return {"target_fpr": target_fpr, "min_legitimate_per_source": min_legitimate,
            "ensemble": point(ensemble_p), "members": {name: point(p) for name, p in members.items()}}


def run(params: dict, validation_path: Path = paths.VALIDATION, model_path: Path = paths.MODEL,
        final_path: Path = paths.FINAL_MODEL, out: Path = paths.OPERATING_POINT) -> dict:
    """The held-out model's points at the top level (the evaluation reads them); the released
    model's (the final fit, the same rule on the same rows) under ``released`` (export reads it)."""
    validation = pd.read_parquet(validation_path)
    y, sources = validation["label"].to_numpy(), validation["source"].to_numpy()
    settings = params["operating_point"]

    def points(path: Path) -> dict:
        p, members = scores(joblib.load(path), validation["url"])
        return operating_points(y, p, members, sources, settings["target_fpr"],
                                settings["min_legitimate_per_source"])

    result = points(model_path)
    result["validation_rows"] = len(validation)
    result["released"] = {**points(final_path), "validation_rows": len(validation)}
    write_json(out, result)
    print(f"operating-point: released model (final fit): threshold "
          f"{result['released']['ensemble']['threshold']:.6f} -> validation FPR "
          f"{result['released']['ensemble']['validation_fpr']:.4f}; held-out model below")
    e = result["ensemble"]
    print(f"operating-point: threshold {e['threshold']:.6f} -> validation FPR {e['validation_fpr']:.4f}, "
          f"recall {e['validation_recall']:.4f} (target FPR {result['target_fpr']} on every source; "
          f"binding: {terminal(e['binding_source'])})")
    for source, r in e["per_source"].items():
        rates = "  ".join(f"{k} {r[k]:.4f}" for k in ("fpr", "recall") if k in r)
        print(f"  {terminal(source):<14} {r['rows']:>7,} rows  {rates}")
    return result


def register(subparsers) -> None:
    add_stage_command(subparsers, "operating-point",
                      "choose the decision threshold on validation (DVC stage)", __doc__, run)
