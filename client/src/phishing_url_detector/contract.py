"""The product contract: what the shipped ONNX model takes and returns.

This module is the single source of truth for the model's name, its I/O
signature and the input normalisation the product applies before scoring.
The export stage writes these facts into the ONNX graph and the manifest; the
release tooling derives the MAJOR version from them; the loader checks them.
Changing anything here is a breaking change for the product.
"""
from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping
from typing import Any

MODEL_NAME = "phishing-url-detector"
MODEL_FILE = f"{MODEL_NAME}.onnx"
GRAPH_NAME = "phishing_url_detector"  # fixed so conversions are byte-identical
CONTRACT_MAJOR = 1  # bump together with any change to CONTRACT below

INPUT_NAME = "url"
LABEL_OUTPUT = "label"
PROBA_OUTPUT = "probabilities"

# The input's "meaning" names normalise_url's first home (pipeline.contract); it is part of the
# contract digest, so renaming it would be a MAJOR release. It now lives in this module.
CONTRACT: dict[str, Any] = {
    "inputs": [
        {"name": INPUT_NAME, "type": "tensor(string)", "shape": ["N", 1],
         "meaning": "one URL per row, normalised with pipeline.contract.normalise_url"},
    ],
    "outputs": [
        {"name": LABEL_OUTPUT, "type": "tensor(int64)", "shape": ["N"],
         "meaning": "1 = phishing, 0 = legitimate, at the operating threshold in the manifest"},
        {"name": PROBA_OUTPUT, "type": "tensor(float)", "shape": ["N", 2],
         "meaning": "column 0 = P(legitimate), column 1 = P(phishing)"},
    ],
    "preprocessing": "strip surrounding whitespace, then decode HTML entities once (html.unescape)",
}


def contract_digest(contract: Mapping[str, Any] = CONTRACT) -> str:
    """Stable digest of the I/O contract; a different digest means a breaking change."""
    canonical = json.dumps(contract, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def normalise_url(url: str) -> str:
    """Undo the publishing artefacts both in training and in serving.

    PhishTank-derived URLs carry HTML-escaped ``&amp;`` that legitimate URLs
    never do; a model trained on the raw text learns that artefact, so the
    entities are decoded once here, for training rows and product inputs alike.
    """
    return html.unescape(url.strip())
