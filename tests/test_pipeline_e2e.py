"""The whole DVC pipeline on a small real sample, in a throwaway repository."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SAMPLES, SMALL_TRAIN_PARAMS, gzip_copy

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


def small_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"] = SMALL_TRAIN_PARAMS
    params["evaluate"]["bootstrap_resamples"] = 50
    params["export"]["parity_batch_sizes"] = [1, 256]
    return {k: params[k] for k in ("data", "split", "train", "operating_point", "evaluate", "export")}


def sh(*args, cwd, check=True):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def make_project(root: Path) -> Path:
    """A minimal copy of this repository: code, dvc.yaml, small params, sampled raw data under DVC."""
    shutil.copytree(REPO / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    (root / "model_card").mkdir()
    shutil.copy(REPO / "model_card" / "template.md", root / "model_card" / "template.md")
    (root / "params.yaml").write_text(yaml.safe_dump(small_params(), sort_keys=False))
    for name in ("ebbu2017", "phishstorm", "phishtank_dated"):
        gzip_copy(SAMPLES / f"{name}_sample.csv", root / "data" / "raw" / f"{name}.csv.gz")
    sh("git", "init", "-q", "-b", "main", cwd=root)
    sh("git", "config", "user.email", "ci@example.invalid", cwd=root)
    sh("git", "config", "user.name", "CI", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    sh("dvc", "config", "core.analytics", "false", cwd=root)
    sh("dvc", "add", "-q", *[f"data/raw/{n}.csv.gz" for n in ("ebbu2017", "phishstorm", "phishtank_dated")],
       cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "sample project", cwd=root)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("e2e"))
    run = sh("dvc", "repro", cwd=root)
    return root, run.stdout


def test_every_stage_ran_and_wrote_its_outputs(project):
    root, log = project
    for stage in ("prepare", "train", "operating-point", "evaluate", "export", "model-card"):
        assert f"Running stage '{stage}'" in log
    for out in ("data/prepared/train.parquet", "data/prepared/quarantine.csv", "reports/data_report.json",
                "models/model.joblib", "reports/operating_point.json", "metrics.json", "plots/confusion.png",
                "plots/curves.png", "plots/confusion.csv", "dist/phishing-url-detector.onnx",
                "dist/manifest.json", "reports/parity.json", "model_card/MODEL_CARD.md", "dvc.lock"):
        assert (root / out).exists(), out
    assert "label agreement 100.00%" in log


def test_manifest_tells_the_truth(project):
    root, _ = project
    import hashlib

    manifest = json.loads((root / "dist/manifest.json").read_text())
    onnx_bytes = (root / "dist/phishing-url-detector.onnx").read_bytes()
    assert manifest["model"]["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
    assert manifest["model"]["size_bytes"] == len(onnx_bytes)
    operating = json.loads((root / "reports/operating_point.json").read_text())
    metrics = json.loads((root / "metrics.json").read_text())
    assert manifest["threshold"] == operating["ensemble"]["threshold"] == metrics["threshold"]
    assert manifest["metrics"]["roc_auc"] == metrics["ensemble"]["roc_auc"]
    assert manifest["parity"]["label_agreement"] == 1.0
    assert manifest["parity"]["max_abs_proba_diff"] <= 1e-4
    assert set(manifest["provenance"]["data"]) == {"data/raw/ebbu2017.csv.gz", "data/raw/phishstorm.csv.gz",
                                                   "data/raw/phishtank_dated.csv.gz"}


def test_metrics_cover_members_slices_and_out_of_source(project):
    root, _ = project
    metrics = json.loads((root / "metrics.json").read_text())
    assert set(metrics["members"]) == {"char_tfidf_lr", "lexical_trees"}
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01"):
        m = metrics["ensemble"][key]
        assert m["ci95_low"] <= m["value"] <= m["ci95_high"]
    assert set(metrics["slices"]) == {"scheme", "www", "tld", "length"}
    assert metrics["out_of_source"]["rows"] > 0 and metrics["out_of_source"]["recall_by_year"]
    cm = metrics["ensemble"]["confusion"]
    report = json.loads((root / "reports/data_report.json").read_text())
    assert sum(cm.values()) == report["splits"]["test"]["rows"]


def test_forced_rerun_is_byte_identical(project):
    """Same commit, same data -> same model, same ONNX bytes, same dvc.lock."""
    root, _ = project
    before_lock = (root / "dvc.lock").read_text()
    before_onnx = (root / "dist/phishing-url-detector.onnx").read_bytes()
    sh("dvc", "repro", "--force", cwd=root)
    assert (root / "dist/phishing-url-detector.onnx").read_bytes() == before_onnx
    assert (root / "dvc.lock").read_text() == before_lock


def test_unchanged_pipeline_is_a_no_op(project):
    root, _ = project
    log = sh("dvc", "repro", cwd=root).stdout
    assert "Running stage" not in log
