"""The whole DVC pipeline on a small real sample of every source, in a throwaway repository."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import sample_project, sh

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]
STAGES = ("prepare", "train", "final-fit", "operating-point", "leave-one-source-out", "backtest", "evaluate", "export", "manifest",
          "model-card")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = sample_project(tmp_path_factory.mktemp("e2e") / "project", repro=False)
    run = sh("dvc", "repro", cwd=root)
    return root, run.stdout


def test_every_stage_ran_and_wrote_its_outputs(project):
    root, log = project
    for stage in STAGES:
        assert f"Running stage '{stage}'" in log
    for out in ("data/prepared/train.parquet", "data/prepared/quarantine.csv", "reports/data_report.json",
                "data/prepared/future.parquet", "reports/backtest.json", "reports/backtest.csv",
                "plots/backtest.png", "plots/future_by_month.png", "reports/leave_one_source_out.json",
                "models/model.joblib", "models/final.joblib", "reports/final_fit.json", "reports/operating_point.json", "metrics.json", "plots/confusion.png",
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
    final = json.loads((root / "reports/final_fit.json").read_text())
    metrics = json.loads((root / "metrics.json").read_text())
    # the release carries the final fit's threshold and test metrics; the held-out model's are named as such
    assert manifest["threshold"] == operating["released"]["ensemble"]["threshold"] \
        == metrics["released_model"]["threshold"]
    assert operating["ensemble"]["threshold"] == metrics["threshold"]
    assert manifest["metrics"]["roc_auc"] == metrics["released_model"]["test"]["roc_auc"]
    assert manifest["held_out_estimate"]["test_roc_auc"] == metrics["ensemble"]["roc_auc"]["value"]
    assert manifest["training_data"]["newest_first_seen_month"] == final["trained_on"]["newest_phishing_month"]
    assert final["trained_on"]["rows"] == sum(
        len(pd.read_parquet(root / f"data/prepared/{s}.parquet")) for s in ("train", "future"))
    assert manifest["parity"]["label_agreement"] == 1.0
    assert manifest["parity"]["max_abs_proba_diff"] <= 1e-4
    params = yaml.safe_load((root / "params.yaml").read_text())
    from pipeline.training.sources import raw_files

    assert set(manifest["provenance"]["data"]) == set(raw_files(params)) and len(raw_files(params)) == 6


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
    assert set(metrics["per_source"]) == {"ebbu2017", "phishstorm", "esdaung2021", "citizenlab", "jpcert"}
    assert metrics["format_stripped"]["max_abs_score_change"] == 0.0  # scheme and www. are invisible


def test_future_split_is_newest_and_domain_disjoint(project):
    root, _ = project
    params = yaml.safe_load((root / "params.yaml").read_text())
    cut = json.loads((root / "reports/data_report.json").read_text())["future_from"]
    assert cut and params["split"]["future_months"] >= 1
    splits = {n: pd.read_parquet(root / f"data/prepared/{n}.parquet")
              for n in ("train", "validation", "test", "future")}
    assert len(splits["future"]) and (splits["future"]["first_seen"] >= cut).all()
    for name in ("train", "validation"):
        dated = splits[name].loc[splits[name]["first_seen"] != "", "first_seen"]
        assert (dated < cut).all()
        assert not set(splits[name]["registered_domain"]) & set(splits["future"]["registered_domain"])
    metrics = json.loads((root / "metrics.json").read_text())
    months = metrics["future"]["by_month"]
    assert sum(m["rows"] for m in months.values()) == len(splits["future"])
    newest = metrics["future"]["newest_3_months"]
    assert newest["months"] == [m for m in sorted(months) if months[m]["phishing"]][-3:]


def test_refits_cover_every_source_and_cutoff(project):
    root, _ = project
    params = yaml.safe_load((root / "params.yaml").read_text())
    loso = json.loads((root / "metrics.json").read_text())["leave_one_source_out"]["folds"]
    assert set(loso) == {s["name"] for s in params["data"]["sources"]}
    backtest = json.loads((root / "reports/backtest.json").read_text())
    assert sorted({r["cutoff"] for r in backtest["rows"]}) == params["backtest"]["cutoffs"]
    assert {r["age_months"] for r in backtest["rows"]} == {1, 2, 3}


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
