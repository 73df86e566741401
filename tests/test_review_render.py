"""report.md from a review document: order, highlighting, warnings (pure, fast)."""
from __future__ import annotations

import copy
import re

import pytest

from pipeline.review import render, stats

KEYS = ("roc_auc", "pr_auc", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01", "precision", "recall", "f1", "fpr")
SECTIONS = ["### Params and data", "### Metrics on the PR's test split (1,000 URLs)", "### Confusion matrices",
            "### Slices that moved most", "### Pipeline", "### ONNX model"]


def metric(value, half=0.01):
    return {"value": value, "ci95_low": value - half, "ci95_high": value + half}


@pytest.fixture
def review():
    base = {k: 0.9 for k in KEYS} | {"fpr": 0.01}
    pr = {k: metric(0.88) for k in KEYS} | {"fpr": metric(0.01, 0.002), "roc_auc": metric(0.95, 0.01)}
    deltas = {k: {"value": pr[k]["value"] - base[k], "ci95_low": -0.03, "ci95_high": -0.01} for k in KEYS}
    mc = {"p_value": 2.1e-05, "effect": -0.02, "both_right": 850, "base_only": 30, "pr_only": 10, "both_wrong": 110,
          "rows": 1000, "discordant": 40}
    verdict = stats.decide(mc, deltas, [0.001, 0.01], {"alpha": 0.05, "min_effect": {
        "accuracy": 0.002, "roc_auc": 0.002, "tpr_at_fpr": 0.01}})
    onnx = {"size_bytes": 123456, "sha256": "ab" * 32, "contract_digest": "c" * 64, "contract_major": 1,
            "parity_rows": 1000, "batch_sizes": [1, 256], "label_agreement": 1.0, "max_abs_proba_diff": 3e-7,
            "tolerance": 1e-4}
    return {
        "base": {"ref": "main", "sha": "a" * 40, "threshold": 0.7, "metrics": base,
                 "confusion": {"tn": 490, "fp": 10, "fn": 60, "tp": 440}},
        "pr": {"ref": "my-branch", "sha": "b" * 40, "threshold": 0.75, "metrics": pr,
               "confusion": {"tn": 495, "fp": 5, "fn": 80, "tp": 420}},
        "test_rows": 1000, "fpr_points": [0.001, 0.01], "interval_level": 0.95, "bootstrap_resamples": 400,
        "deltas": deltas, "mcnemar": mc, "verdict": verdict.to_dict(),
        "review_params": {"accept_label": "accept-regression"}, "review_params_source": "the base's params.yaml",
        "params_diff": [{"key": "train.lexical_forest.n_estimators", "change": "changed", "old": 120, "new": 5}],
        "pointers_diff": [], "pointer_count": 3, "rows_diff": [], "data_changed": False,
        "verdict_scope": {"rows": 1000, "seen_by_base": 0, "restricted": False},
        "slice_movers": [{"family": "tld", "slice": "com", "rows": 300, "metric": "recall", "base": 0.8, "pr": 0.7,
                          "delta": -0.1}],
        "pipeline": {"stages": ["prepare", "train", "evaluate"],
                     "pr": {"seconds": 75.0, "stages": {"prepare": "up to date", "train": "re-ran",
                                                        "evaluate": "re-ran"}},
                     "base": {"seconds": 3.0, "stages": {"prepare": "up to date", "train": "restored from run-cache",
                                                         "evaluate": "up to date"}},
                     "lock_checked": True, "lock_mismatch": [], "files_to_commit": [], "metrics_consistent": True,
                     "review_seconds": 130.0},
        "onnx": {"base": onnx, "pr": dict(onnx, size_bytes=100000), "contract_changed": False},
        "plots": ["confusion_base.png", "confusion_pr.png", "curves.png"],
    }


def test_sections_in_order_and_verdict_first(review):
    text = render.render(review)
    first = text.splitlines()[0]
    assert first.startswith("**❌ Worse**: challenger `my-branch` (bbbbbbb) vs champion `main` (aaaaaaa)")
    assert "McNemar exact test p = 2.10e-05" in first and "30 URLs newly wrong, 10 newly right" in first
    assert "paired bootstrap ΔROC AUC +0.0500 [-0.0300, -0.0100]" not in first  # only decisive tests
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert "**This fails the check.**" in text and "`accept-regression`" in text


def test_metrics_table_highlights_deltas_beyond_the_pr_interval(review):
    text = render.render(review)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "**-0.0200**" in rows["PR AUC"]           # base 0.9 outside [0.87, 0.89]
    assert "**+0.0500**" in rows["ROC AUC"]
    assert "| +0.0000 |" in rows["FPR"]              # base 0.01 inside the PR interval: not bold
    assert rows["threshold"].split("|")[2:5] == [" 0.7000 ", " 0.7500 ", " +0.0500 "]


def test_confusion_tables_have_counts_and_rates(review):
    text = render.render(review)
    assert "| legitimate (500) | 490 (98.00%) | 10 (2.00%) | 495 (99.00%) | 5 (1.00%) |" in text
    assert "| phishing (500) | 60 (12.00%) | 440 (88.00%) | 80 (16.00%) | 420 (84.00%) |" in text


def test_images_only_in_the_comment_not_in_the_summary(review):
    assert "![curves](curves.png)" in render.render(review, images=True)
    summary = render.render(review, images=False)
    assert "![" not in summary and "`curves.png`" in summary


def test_pipeline_facts_and_lock_warning(review):
    text = render.render(review)
    assert "| train | 🔄 re-ran | ♻️ restored from run-cache |" in text
    assert "re-ran `train`, `evaluate`; reused from the DVC cache `prepare`" in text
    assert "✅ The committed `dvc.lock` matches" in text and "does not match" not in text
    stale = copy.deepcopy(review)
    stale["pipeline"]["lock_mismatch"] = [{"stage": "evaluate", "what": ["param `evaluate.seed`"]}]
    stale["pipeline"]["files_to_commit"] = ["dvc.lock", "metrics.json"]
    text = render.render(stale)
    assert "**⚠️ The committed `dvc.lock` does not match what was reproduced here.**" in text
    assert "- `evaluate`: param `evaluate.seed`" in text
    assert 'dvc repro && git add dvc.lock metrics.json && git commit -m "dvc repro"' in text
    assert text.index("⚠️ The committed `dvc.lock` is stale") < text.index("### Params and data")
    stale["pipeline"]["pr"] = None
    assert "**⚠️ The committed `dvc.lock` does not match the working tree's.**" in render.render(stale)


def test_without_a_repro_log_dvc_status_speaks(review):
    review["pipeline"]["pr"] = None
    review["pipeline"]["stale_stages"] = ["train"]
    text = render.render(review)
    assert "| train | ⚠️ out of date (`dvc status`) | ♻️ restored from run-cache |" in text
    assert "| prepare | ✔️ up to date (`dvc status`) |" in text
    assert "⚠️ The working tree's pipeline outputs are out of date" in text.split("### Params")[0]
    assert "✅ The committed `dvc.lock` matches the working tree's." in text


def test_contract_change_is_called_out_in_bold(review):
    assert "I/O contract unchanged." in render.render(review)
    changed = copy.deepcopy(review)
    changed["onnx"]["pr"]["contract_digest"] = "d" * 64
    changed["onnx"]["pr"]["contract_major"] = 2
    changed["onnx"]["contract_changed"] = True
    text = render.render(changed)
    assert re.search(r"\*\*⚠️ The I/O contract changed .*contract major 1 → 2\).*MAJOR version\.\*\*", text)
    assert "**⚠️ Breaking change: the ONNX I/O contract changed**" in text.split("### Params")[0]


def test_accepted_regression_and_other_outcomes(review):
    accepted = copy.deepcopy(review)
    accepted["verdict"]["accepted_by"] = "label `accept-regression`"
    text = render.render(accepted)
    assert "accepted by label `accept-regression`, so the check passes" in text and "fails the check" not in text
    same = copy.deepcopy(review)
    same["verdict"] = {**review["verdict"], "outcome": stats.NO_CHANGE}
    first = render.render(same).splitlines()[0]
    assert first.startswith("**➖ No significant change**") and "ΔTPR@FPR 0.01" in first


def test_params_and_data_sections(review):
    text = render.render(review)
    assert "| `train.lexical_forest.n_estimators` | `120` | `5` |" in text
    assert "no `.dvc` pointer changed (3 pointers)" in text
    data = copy.deepcopy(review)
    data["pointers_diff"] = [{"path": "data/raw/a.csv.gz.dvc", "change": "changed", "old_md5": "1" * 32,
                              "new_md5": "2" * 32, "old_size": 1000, "new_size": 900}]
    data["rows_diff"] = [{"scope": "test", "class": "phishing", "old": 100, "new": 90}]
    data["data_changed"] = True
    data["verdict_scope"] = {"rows": 988, "seen_by_base": 12, "restricted": True}
    text = render.render(data)
    assert "| `data/raw/a.csv.gz.dvc` | changed | `1111111111` | `2222222222` | 1,000 | 900 |" in text
    assert "| test | phishing | 100 | 90 | -10 |" in text
    assert "12 of its 1,000 URLs were in the base model's training or validation split" in text
    assert "the verdict's tests use only the 988 URLs the base never saw" in text
    assert "on the 988 of the PR's 1,000 test URLs the base model never saw —" in text.splitlines()[0]
    assert "McNemar's test (paired decisions at each model's threshold, on the 988 test URLs" in text
    data["verdict_scope"]["restricted"] = False
    assert "too few unseen URLs remain" in render.render(data)
