"""Checks on the real pipeline outputs of this checkout (after `make run`).

Deselected by default (see pyproject); run with `pytest -m full_data` once
`make run` has produced the outputs.
"""
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO

pytestmark = pytest.mark.full_data


@pytest.fixture(scope="module")
def outputs():
    needed = ["models/model.joblib", "dist/phishing-url-detector.onnx", "data/prepared/test.parquet"]
    missing = [p for p in needed if not (REPO / p).exists()]
    if missing:
        pytest.fail(f"run `make run` first; missing {missing}")
    return REPO


def test_committed_manifest_describes_the_reproduced_onnx(outputs):
    manifest = json.loads((outputs / "dist/manifest.json").read_text())
    data = (outputs / "dist/phishing-url-detector.onnx").read_bytes()
    assert manifest["model"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_real_model_parity_on_a_test_sample(outputs):
    import joblib

    from pipeline.onnx_export import parity_failures, parity_report

    model = joblib.load(outputs / "models/model.joblib")
    manifest = json.loads((outputs / "dist/manifest.json").read_text())
    test = pd.read_parquet(outputs / "data/prepared/test.parquet").sample(2000, random_state=0)
    report = parity_report(model, (outputs / "dist/phishing-url-detector.onnx").read_bytes(), test["url"],
                           manifest["threshold"], [1, 2000])
    assert parity_failures(report, 1e-4) == []


def test_split_has_no_domain_leakage(outputs):
    splits = {n: pd.read_parquet(outputs / f"data/prepared/{n}.parquet") for n in ("train", "validation", "test")}
    for a in splits:
        for b in splits:
            if a < b:
                assert not set(splits[a]["registered_domain"]) & set(splits[b]["registered_domain"])
                assert not set(splits[a]["host"]) & set(splits[b]["host"])
    shares = [s["label"].mean() for s in splits.values()]
    assert np.ptp(shares) < 0.01
