"""Stage `manifest`: what the product and an auditor need to know about the exported file.

Its own stage, apart from `export`, because it reads what changes often and costs nothing
(metrics, every params section, the raw-data pointers): an evaluation-only change re-writes the
manifest in seconds instead of re-converting the model and re-running the parity gate.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import onnx

from phishing_url_detector import contract
from pipeline import paths
from pipeline.common import PipelineError, read_json, sha256_file, write_json
from pipeline.stages import add_stage_command
from pipeline.training.features import FEATURE_NAMES
from pipeline.training.final import released_model
from pipeline.training.onnx_export import TARGET_OPSET, io_signature
from pipeline.training.provenance import (
    MODEL_CODE,
    data_digest,
    data_pointers,
    files_digest,
    library_versions,
    params_digest,
)

log = logging.getLogger(__name__)

MIN_ONNXRUNTIME = "1.17"  # first release implementing ai.onnx opset 20 (RegexFullMatch)
HEADLINE = ("roc_auc", "pr_auc", "precision", "recall", "f1", "fpr", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01")


def held_out_estimate(metrics: dict) -> dict:
    """What the held-out model (never trained on the future split) measured on the newest months: the
    estimate of how the released model does on the months after its data."""
    future = metrics.get("future") or {}
    newest: dict[str, Any] = next((v for k, v in future.items() if k.startswith("newest_")), {})
    return {"model": "held-out: the same recipe on the train split only (stage train)",
            "future_newest_months": newest.get("months"), "future_newest_recall": newest.get("recall"),
            "test_roc_auc": metrics["ensemble"]["roc_auc"]["value"]}


def build_manifest(onnx_path: Path, params: dict, released: dict, metrics: dict, parity: dict,
                   signature: dict) -> dict:
    """Everything the product and an auditor need to know about the exported file.

    ``released`` is :func:`pipeline.training.final.released_model`: ``threshold``, ``metrics`` and
    ``training_data`` describe the released model (the final fit);
    ``held_out_estimate`` is the held-out model's measurement on months neither saw, named as such."""
    pointers = data_pointers(params)
    tfidf = params["train"]["char_tfidf"]
    operating, trained_on = released["operating_point"], released["trained_on"]
    return {
        "name": contract.MODEL_NAME,
        "model": {"file": onnx_path.name, "sha256": sha256_file(onnx_path),
                  "size_bytes": onnx_path.stat().st_size},
        "contract": contract.CONTRACT,
        "contract_digest": contract.contract_digest(),
        "contract_major": contract.CONTRACT_MAJOR,
        "io_signature": signature,
        "threshold": operating["ensemble"]["threshold"],
        "target_fpr": operating["target_fpr"],
        "opset": {**{k or "ai.onnx": v for k, v in TARGET_OPSET.items()}, "com.microsoft": 1},
        "min_onnxruntime": MIN_ONNXRUNTIME,
        "libraries": library_versions(),
        "features": {"lexical": FEATURE_NAMES,
                     "char_ngram_range": [tfidf["ngram_min"], tfidf["ngram_max"]],
                     "char_vocabulary_max": {"host": tfidf["host_features"], "path": tfidf["path_features"]},
                     "ignored_prefixes": ["scheme://", "www."]},
        "provenance": {"model_code_digest": files_digest(MODEL_CODE), "params_digest": params_digest(params),
                       "data_digest": data_digest(pointers), "data": pointers},
        "training_data": {"splits": trained_on["splits"], "rows": trained_on["rows"],
                          "newest_first_seen_month": trained_on["newest_phishing_month"],
                          "newest_month_by_source": trained_on["newest_month_by_source"]},
        "metrics": {k: released["test"][k] for k in HEADLINE},
        "test_rows": released["test"]["rows"],
        "held_out_estimate": held_out_estimate(metrics),
        "parity": {"rows": parity["rows"], "batch_sizes": sorted(int(b) for b in parity["batch_sizes"]),
                   "label_agreement": parity["label_agreement"],
                   "max_abs_proba_diff": parity["max_abs_proba_diff"]},
    }


def run(params: dict, onnx_path: Path = paths.ONNX, manifest_path: Path = paths.MANIFEST) -> dict:
    signature = io_signature(onnx.load(str(onnx_path), load_external_data=False))
    metrics = read_json(paths.METRICS)
    released = released_model(read_json(paths.FINAL_FIT), read_json(paths.OPERATING_POINT), metrics)
    if released is None:
        raise PipelineError(f"manifest: {paths.FINAL_FIT}, {paths.OPERATING_POINT} and {paths.METRICS} describe no "
                            "released model (the final-fit, operating-point and evaluate stages write it)")
    manifest = build_manifest(onnx_path, params, released, metrics,
                              read_json(paths.PARITY), signature)
    write_json(manifest_path, manifest)
    print(f"manifest: wrote {manifest_path} for {onnx_path} (sha256 {manifest['model']['sha256'][:12]}...)")
    return manifest


def register(subparsers) -> None:
    add_stage_command(subparsers, "manifest",
                      "write dist/manifest.json: contract, provenance, metrics (DVC stage)", __doc__, run)
