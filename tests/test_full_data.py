"""Checks on the real pipeline outputs of this checkout (after `make run`).

Deselected by default (see pyproject); run with `pytest -m full_data` once
`make run` has produced the outputs.
"""
import hashlib
import json

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

    from pipeline.training.onnx_export import parity_failures, parity_report

    model = joblib.load(outputs / "models/final.joblib")  # the released ONNX file is the final fit's
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
    # Stratified: train and validation have the same phishing share. The test split also holds the
    # older rows of domains that recur in the future split (not stratified), so it may differ a little.
    assert abs(splits["train"]["label"].mean() - splits["validation"]["label"].mean()) < 0.01
    assert abs(splits["train"]["label"].mean() - splits["test"]["label"].mean()) < 0.05


def test_future_split_holds_the_newest_rows_and_no_training_domain(outputs):
    cut = json.loads((outputs / "reports/data_report.json").read_text())["future_from"]
    assert cut == "2023-10-01"  # the newest 3 months that hold phishing (split.future_months)
    future = pd.read_parquet(outputs / "data/prepared/future.parquet")
    assert len(future) and (future["first_seen"] >= cut).all()
    for name in ("train", "validation"):
        part = pd.read_parquet(outputs / f"data/prepared/{name}.parquet")
        assert (part.loc[part["first_seen"] != "", "first_seen"] < cut).all()
        assert not set(part["registered_domain"]) & set(future["registered_domain"])
    metrics = json.loads((outputs / "metrics.json").read_text())
    assert sum(m["rows"] for m in metrics["future"]["by_month"].values()) == len(future)


def test_shipped_quarantine_has_no_cell_the_csv_escaping_changes(outputs):
    """data/prepared/quarantine.csv (a DVC output) is byte-for-byte what write_csv writes: no text
    cell starts with a character the CSV-injection escaping would prefix."""
    frame = pd.read_csv(outputs / "data/prepared/quarantine.csv", dtype=str, keep_default_na=False)
    assert not any(frame[c].str.startswith(("=", "+", "-", "@", "\t", "\r", "'")).any() for c in frame)


def test_the_shipped_raw_data_passes_the_ingest_caps_with_headroom(outputs):
    from pipeline import paths
    from pipeline.bounded_io import check_capped
    from pipeline.common import load_params
    from pipeline.training.ingest import ingest_caps

    params = load_params(outputs / paths.PARAMS)
    caps = ingest_caps(params)
    files = [outputs / f for s in params["data"]["sources"] for f in s["files"]]
    files += [outputs / f for f in params["data"]["out_of_source"]["files"]]
    pointers = [f for f in files if not f.exists() or f.stat().st_size <= 200]
    assert not pointers, f"run `make run` (dvc pull) first; not checked out: {pointers}"
    for path in files:
        size, rows = check_capped(path, caps, header_lines=1)
        assert size * 5 < caps.max_bytes and rows * 5 < caps.max_rows, path
