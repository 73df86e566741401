"""Digests that tie a model to the exact code, params and data that produced it."""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

import yaml

from pipeline.training.sources import raw_files

# The modules that decide what the exported model computes. dvc.yaml lists them
# as dependencies of the model stages (a test keeps the two in step).
MODEL_CODE = ("client/src/phishing_url_detector/contract.py", "pipeline/training/features.py", "pipeline/training/model.py",
              "pipeline/training/onnx_export.py", "pipeline/training/metrics.py")
LIBRARIES = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "scipy", "pandas", "dvc")


def files_digest(paths, root: Path = Path(".")) -> str:
    """sha256 over (relative path, bytes) pairs in sorted order."""
    digest = hashlib.sha256()
    for rel in sorted(paths):
        digest.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return digest.hexdigest()


# params.yaml sections that shape the exported model and its reported numbers.
MODEL_PARAM_SECTIONS = ("data", "split", "train", "operating_point", "evaluate", "export")


def params_digest(params: dict) -> str:
    relevant = {k: params[k] for k in MODEL_PARAM_SECTIONS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def data_pointers(params: dict, root: Path = Path(".")) -> dict:
    """{raw file: md5 recorded in its .dvc pointer} for every raw input."""
    paths = raw_files(params)
    out = {}
    for path in paths:
        pointer = yaml.safe_load((root / f"{path}.dvc").read_text())
        out[path] = pointer["outs"][0]["md5"]
    return out


def data_digest(pointers: dict) -> str:
    return hashlib.sha256(json.dumps(pointers, sort_keys=True).encode()).hexdigest()


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        versions[name] = metadata.version(name)
    return versions
