"""Stage `operating-point`: choose decision thresholds on the validation split.

The threshold is a product decision (how many legitimate URLs may be flagged),
so it is chosen once, on data the model never trained on and the test split
never sees, and every later stage reads it from ``reports/operating_point.json``.
"""
from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd

from pipeline.metrics import choose_threshold, threshold_metrics
from pipeline.model import member_proba, phishing_proba
from pipeline.stages import add_stage_command
from pipeline.params import write_json

VALIDATION = Path("data/prepared/validation.parquet")
MODEL = Path("models/model.joblib")
OUT = Path("reports/operating_point.json")


def operating_points(y, ensemble_p, members: dict, target_fpr: float) -> dict:
    """Threshold and validation rates for the ensemble and for each member alone."""
    def point(p):
        t = choose_threshold(y, p, target_fpr)
        rates = threshold_metrics(y, p, t)
        return {"threshold": t, "validation_fpr": rates["fpr"], "validation_recall": rates["recall"]}

    return {"target_fpr": target_fpr, "ensemble": point(ensemble_p),
            "members": {name: point(p) for name, p in members.items()}}


def run(params: dict, validation_path: Path = VALIDATION, model_path: Path = MODEL, out: Path = OUT) -> dict:
    validation = pd.read_parquet(validation_path)
    model = joblib.load(model_path)
    y = validation["label"].to_numpy()
    result = operating_points(y, phishing_proba(model, validation["url"]),
                              member_proba(model, validation["url"]),
                              params["operating_point"]["target_fpr"])
    result["validation_rows"] = int(len(validation))
    write_json(out, result)
    e = result["ensemble"]
    print(f"operating-point: threshold {e['threshold']:.6f} -> validation FPR {e['validation_fpr']:.4f}, "
          f"recall {e['validation_recall']:.4f} (target FPR {result['target_fpr']})")
    return result


def register(subparsers) -> None:
    add_stage_command(subparsers, "operating-point",
                      "choose the decision threshold on validation (DVC stage)", __doc__, run)
