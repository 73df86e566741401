"""Shared helpers for the monitoring tests: synthetic logs of known shape, a tiny ONNX model,
real release directories, the CLI.

Kept out of ``test_*`` names so pytest does not collect it; the test modules
import it (pytest puts ``tests/`` on ``sys.path``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from onnx import TensorProto, helper

from phishing_url_detector import contract as C
from phishing_url_detector.releases import (
    CARD_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    model_asset_name,
    release_asset_names,
    write_sha256sums,
)
from pipeline.commands import fetch_logs, monitor, simulate_traffic

START = pd.Timestamp("2024-01-01", tz="UTC")  # a Monday: 7D windows are whole ISO weeks


def tiny_onnx_model(path: Path, pattern: str = "(?s).*login.*") -> Path:
    """Same I/O contract as the released model: P(phishing) = 0.9 if the URL matches, else 0.1."""
    path.write_bytes(tiny_onnx_bytes(pattern))
    return path


def tiny_onnx_bytes(pattern: str = "(?s).*login.*") -> bytes:
    """The serialised model of :func:`tiny_onnx_model`."""
    url = helper.make_tensor_value_info("url", TensorProto.STRING, ["N", 1])
    label = helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])
    proba = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])

    def const(name: str, dtype: int, dims: list[int], value: list) -> object:
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, dims, value))

    consts = [const("scale", TensorProto.FLOAT, [], [0.8]), const("offset", TensorProto.FLOAT, [], [0.1]),
              const("one", TensorProto.FLOAT, [], [1.0]), const("flat", TensorProto.INT64, [1], [-1])]
    nodes = consts + [
        helper.make_node("RegexFullMatch", ["url"], ["match"], pattern=pattern),
        helper.make_node("Cast", ["match"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["m", "scale"], ["ms"]),
        helper.make_node("Add", ["ms", "offset"], ["p"]),
        helper.make_node("Sub", ["one", "p"], ["q"]),
        helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1),
        helper.make_node("Cast", ["match"], ["label2d"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["label2d", "flat"], ["label"]),
    ]
    graph = helper.make_graph(nodes, "tiny_phishing_url_detector", [url], [label, proba])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    return model.SerializeToString()


def make_release(directory: Path, version: str, onnx_bytes: bytes, threshold: float,
                 data_through: str | None = None) -> Path:
    """A complete model release in ``directory``, as ``python -m pipeline release`` writes it and
    ``verify_release_dir`` accepts: the versioned ONNX file, manifest.json (version, threshold,
    contract, model digest), MODEL_CARD.md, metrics.json and SHA256SUMS over the four."""
    directory.mkdir(parents=True)
    onnx_name = model_asset_name(version)
    (directory / onnx_name).write_bytes(onnx_bytes)
    manifest = {"version": version, "threshold": threshold, "target_fpr": 0.01,
                "model": {"file": onnx_name, "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
                          "size_bytes": len(onnx_bytes)},
                "contract": C.CONTRACT, "contract_digest": C.contract_digest(),
                "contract_major": C.CONTRACT_MAJOR}
    if data_through:
        manifest["training_data"] = {"newest_first_seen_month": data_through}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    (directory / CARD_FILE).write_text(f"# Model card {version}\n")
    (directory / METRICS_FILE).write_text('{"roc_auc": 0.99}\n')
    write_sha256sums(directory, release_asset_names(version)[:-1])
    return directory


def cache_release(cache: Path, version: str, onnx_bytes: bytes, threshold: float) -> Path:
    """A release in the client's fetch cache layout, ``<cache>/<sha256 of the onnx>/<version>/``."""
    return make_release(cache / hashlib.sha256(onnx_bytes).hexdigest() / version, version,
                        onnx_bytes, threshold)


def tamper_threshold(directory: Path, threshold: float) -> None:
    """Rewrite the threshold in a release's manifest after SHA256SUMS was written."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    (directory / MANIFEST_FILE).write_text(json.dumps({**manifest, "threshold": threshold}, indent=2))


def synthetic_log(seed: int, *, windows: int = 26, rows_per_window: int = 2000,
                  ratio: float = 0.10, shift: float = 0.0, shift_from: int | None = None,
                  version: str = "1.0.0", start: pd.Timestamp = START,
                  window_days: int = 7) -> pd.DataFrame:
    """Validated-shape log rows: flagged share ``ratio`` (``ratio + shift`` from window ``shift_from``).

    Scores come from two beta distributions (flagged above 0.5, the others
    below), so a ratio shift also moves the score distribution, as it would
    in production.
    """
    rng = np.random.default_rng(seed)
    n = windows * rows_per_window
    window = np.repeat(np.arange(windows), rows_per_window)
    p = np.where(window >= shift_from, ratio + shift, ratio) if shift_from is not None else ratio
    verdict = rng.random(n) < p
    score = np.where(verdict, 0.5 + 0.5 * rng.beta(2, 2, n), 0.5 * rng.beta(1, 4, n))
    seconds = window * window_days * 86400 + rng.uniform(0, window_days * 86400, n)
    order = np.argsort(seconds, kind="stable")
    return pd.DataFrame({
        "timestamp": start + pd.to_timedelta(seconds[order], unit="s"),
        "model_version": version,
        "score": score[order],
        "verdict": verdict[order].astype(np.int8),
        "label": np.nan,
    })


def to_csv_log(rows: pd.DataFrame, path: Path) -> Path:
    """Write log rows as the product would: ISO timestamps with a zone, CSV."""
    out = rows.copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    out["label"] = out["label"].astype("Int8")
    out.to_csv(path, index=False)
    return path


def run_cli(*argv: str) -> int:
    """The monitoring sub-commands exactly as ``python -m pipeline`` registers them."""
    parser = argparse.ArgumentParser(prog="python -m pipeline")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in (monitor, simulate_traffic, fetch_logs):
        command.register(subparsers)
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def strict_json(path: Path) -> dict:
    def no_constants(name):
        raise ValueError(f"{path} contains {name}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=no_constants)
