"""Stage `export`: ONNX conversion with the operating threshold, and the parity gate.

It reads only the model, the threshold, the test URLs and params `export`, so a change to
evaluation, metrics or data pointers alone never re-converts (`manifest` describes the file).
"""
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
from pipeline.training.onnx_export import (
    io_signature,
    parity_failures,
    parity_report,
    to_onnx,
)

log = logging.getLogger(__name__)


class ParityError(PipelineError):
    """The ONNX graph does not reproduce the sklearn model closely enough to ship."""


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
    return onx


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


def run(params: dict, onnx_path: Path = paths.ONNX) -> dict:
    model = joblib.load(paths.FINAL_MODEL)  # the released model (stage final-fit), at its own threshold
    threshold = read_json(paths.OPERATING_POINT)["released"]["ensemble"]["threshold"]
    onx = convert(model, threshold)
    onnx_bytes = onx.SerializeToString()
    report = parity_gate(model, onnx_bytes, threshold, params)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx_path.write_bytes(onnx_bytes)
    print(f"export: wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB, sha256 "
          f"{sha256_file(onnx_path)[:12]}...)")
    return report


def register(subparsers) -> None:
    add_stage_command(subparsers, "export",
                      "convert to ONNX and run the parity gate (DVC stage)", __doc__, run)
