"""Stage `export`: ONNX conversion with the operating threshold, the parity gate, the manifest."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import joblib
import pandas as pd
from tqdm import tqdm

from phishing_url_detector import contract
from pipeline import paths
from pipeline.common import PipelineError, read_json, sha256_file, write_json
from pipeline.stages import add_stage_command
from pipeline.training.features import FEATURE_NAMES
from pipeline.training.onnx_export import TARGET_OPSET, io_signature, parity_failures, parity_report, to_onnx
from pipeline.training.provenance import (MODEL_CODE, data_digest, data_pointers, files_digest, library_versions,
                                          params_digest)

log = logging.getLogger(__name__)

MIN_ONNXRUNTIME = "1.17"  # first release implementing ai.onnx opset 20 (RegexFullMatch)
HEADLINE = ("roc_auc", "pr_auc", "precision", "recall", "f1", "fpr", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01")


class ParityError(PipelineError):
    """The ONNX graph does not reproduce the sklearn model closely enough to ship."""


def build_manifest(onnx_path: Path, params: dict, operating: dict, metrics: dict, parity: dict,
                   signature: dict) -> dict:
    """Everything the product and an auditor need to know about the exported file."""
    pointers = data_pointers(params)
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
                     "char_ngram_range": [params["train"]["char_tfidf"]["ngram_min"],
                                          params["train"]["char_tfidf"]["ngram_max"]],
                     "char_vocabulary_max": {"host": params["train"]["char_tfidf"]["host_features"],
                                             "path": params["train"]["char_tfidf"]["path_features"]},
                     "ignored_prefixes": ["scheme://", "www."]},
        "provenance": {"model_code_digest": files_digest(MODEL_CODE), "params_digest": params_digest(params),
                       "data_digest": data_digest(pointers), "data": pointers},
        "metrics": {k: metrics["ensemble"][k] for k in HEADLINE},
        "test_rows": metrics["ensemble"]["rows"],
        "parity": {"rows": parity["rows"], "batch_sizes": sorted(int(b) for b in parity["batch_sizes"]),
                   "label_agreement": parity["label_agreement"],
                   "max_abs_proba_diff": parity["max_abs_proba_diff"]},
    }


def convert(model, threshold: float):
    """The ONNX graph, refused unless its inputs and outputs are exactly the contract's."""
    log.info("export: converting the ensemble to ONNX ...")
    onx = to_onnx(model, threshold)
    signature = io_signature(onx)
    expected = {k: [{f: d[f] for f in ("name", "type", "shape")} for d in contract.CONTRACT[k]]
                for k in ("inputs", "outputs")}
    if signature != expected:
        raise PipelineError(f"export: the ONNX graph's I/O {signature} does not match the contract {expected} "
                            "in phishing_url_detector/contract.py (client/)")
    return onx, signature


def parity_gate(model, onnx_bytes: bytes, threshold: float, params: dict) -> dict:
    """Score the test split with both engines; write reports/parity.json; raise unless they agree."""
    test = pd.read_parquet(paths.TEST)
    batches = params["export"]["parity_batch_sizes"]
    with tqdm(total=len(batches), desc="parity gate (batch sizes)", unit="batch size", file=sys.stdout) as bar:
        report = parity_report(model, onnx_bytes, test["url"], threshold, batches,
                               progress=lambda b: (bar.set_postfix(batch=b), bar.update(1)))
    report["tolerance"] = params["export"]["max_abs_proba_diff"]
    write_json(paths.PARITY, report)
    print(f"export: parity on {report['rows']:,} test URLs, batch sizes {batches}: label agreement "
          f"{report['label_agreement']:.2%}, max |dP| {report['max_abs_proba_diff']:.2e} "
          f"(tolerance {report['tolerance']:g})")
    problems = parity_failures(report, report["tolerance"])
    if problems:
        raise ParityError("parity gate failed, nothing exported:\n  " + "\n  ".join(problems))
    return report


def run(params: dict, onnx_path: Path = paths.ONNX, manifest_path: Path = paths.MANIFEST) -> dict:
    model = joblib.load(paths.MODEL)
    operating = read_json(paths.OPERATING_POINT)
    threshold = operating["ensemble"]["threshold"]
    onx, signature = convert(model, threshold)
    onnx_bytes = onx.SerializeToString()
    report = parity_gate(model, onnx_bytes, threshold, params)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx_path.write_bytes(onnx_bytes)
    manifest = build_manifest(onnx_path, params, operating, read_json(paths.METRICS), report, signature)
    write_json(manifest_path, manifest)
    print(f"export: wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB, sha256 "
          f"{manifest['model']['sha256'][:12]}...) and {manifest_path}")
    return manifest


def register(subparsers) -> None:
    add_stage_command(subparsers, "export",
                      "convert to ONNX, run the parity gate, write dist/ (DVC stage)", __doc__, run)
