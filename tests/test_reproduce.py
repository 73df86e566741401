"""`python -m pipeline reproduce`: the comparison and its verdicts (pure), the ONNX-against-ONNX scoring,
and two runs on a sample project: one byte-identical, one against a committed model that differs."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import commit, sample_project, sh

from pipeline.common import ExitCode
from pipeline.reproduce import compare, render
from pipeline.reproduce.compare import DIFFERS, IDENTICAL, UNVERIFIED, WITHIN, Side

MODEL, FINAL_MODEL, ONNX = "models/model.joblib", "models/final.joblib", "dist/phishing-url-detector.onnx"
METRICS = {"ensemble": {"f1": {"value": 0.91, "ci95_low": 0.90}, "rows": 1000, "threshold": 0.8,
                        "confusion": {"tp": 400, "fp": 5}},
           "fpr_points": [0.001, 0.01], "bootstrap": True, "name": "ensemble"}


def lock(model="m1", onnx="o1", data="d1.dir") -> dict:
    return {"schema": "2.0", "stages": {
        "prepare": {"outs": [{"path": "data/prepared", "md5": data}]},
        "train": {"outs": [{"path": MODEL, "md5": model}]},
        "final-fit": {"outs": [{"path": FINAL_MODEL, "md5": f"final-{model}"}]},
        "export": {"outs": [{"path": ONNX, "md5": onnx}, {"path": "reports/parity.json", "md5": "p1"}]}}}


def side(model="m1", onnx="o1", sha="s1", metrics=None, threshold=0.8) -> Side:
    return Side(lock(model, onnx), metrics or METRICS, {"ensemble": {"threshold": threshold}}, sha)


def parity(disagreements=0, max_diff=0.0, rows=1000) -> dict:
    return {"rows": rows, "label_agreement": 1 - disagreements / rows, "label_disagreements": disagreements,
            "example_disagreements": ["http://a.example/\x1b[2Kfake"][:disagreements], "max_abs_proba_diff": max_diff,
            "batch_sizes": [1024], "tolerance": 1e-4, "committed_onnx_from": "the DVC cache"}


def report(committed: Side, reproduced: Side, par=None, tolerance=1e-4) -> dict:
    result = compare.compare(committed, reproduced, par, tolerance)
    return {"rev": "HEAD", "commit": "0123456789abcdef", "machine": "x86_64",
            "repro": {"returncode": 0, "seconds": 42.0, "stages": {"prepare": "re-ran", "train": "re-ran"}}, **result}


# -- verdicts ----------------------------------------------------------------------------------------
def test_identical_bytes_are_reproduced_exactly_without_scoring():
    out = report(side(), side())
    assert out["identical"] and out["verdict"] == {"status": IDENTICAL, "exit_code": ExitCode.OK, "reasons": []}
    assert out["metric_deltas"] == [] and out["threshold"]["delta"] == 0
    assert all(r["identical"] for r in out["outputs"])
    text = "\n".join(render.terminal_summary(out))
    assert "byte-identical" in text and "label agreement" not in text
    assert "byte-identical" in render.markdown_summary(out)


def test_an_equal_md5_with_another_onnx_sha256_is_not_identical():
    released = compare.released_files(side(sha="s1"), side(sha="s2"))
    assert released[MODEL]["identical"] and not released[ONNX]["identical"]


def test_other_bytes_with_equal_labels_and_small_dp_are_within_tolerance():
    out = report(side(), side(model="m2", onnx="o2", sha="s2", threshold=0.80001), parity(max_diff=5e-5))
    assert not out["identical"]
    assert out["verdict"]["status"] == WITHIN and out["verdict"]["exit_code"] == ExitCode.OK
    text = "\n".join(render.terminal_summary(out))
    assert "reproduced within tolerance" in text and "label agreement 100.0000%" in text
    assert "DIFFERS" in text and "threshold: committed 0.800000, re-trained 0.800010" in text


def test_a_label_flip_fails_even_when_dp_is_tiny():
    out = report(side(), side(onnx="o2", sha="s2"), parity(disagreements=1, max_diff=1e-6))
    assert out["verdict"]["status"] == DIFFERS and out["verdict"]["exit_code"] == ExitCode.VERIFICATION
    assert out["verdict"]["reasons"] == ["1 of 1,000 test URLs get another label"]
    text = "\n".join(render.terminal_summary(out))
    assert "NOT reproduced" in text and "\x1b" not in text and "\\x1b[2Kfake" in text  # the URL shown inert


def test_dp_over_the_export_tolerance_fails():
    out = report(side(), side(onnx="o2", sha="s2"), parity(max_diff=3e-4), tolerance=1e-4)
    assert out["verdict"]["status"] == DIFFERS and "max |ΔP| 0.0003 > export.max_abs_proba_diff 0.0001" in \
        out["verdict"]["reasons"][0]


def test_other_bytes_without_the_committed_file_cannot_be_verified():
    out = report(side(), side(onnx="o2", sha="s2"), None)
    assert out["verdict"]["status"] == UNVERIFIED and out["verdict"]["exit_code"] == ExitCode.ERROR
    assert "could not verify" in render.conclusion(out)


def test_every_output_md5_is_compared_including_one_sided_outputs():
    new = lock(data="d2.dir")
    new["stages"]["backtest"] = {"outs": [{"path": "reports/backtest.json", "md5": "b1"}]}
    rows = {r["path"]: r for r in compare.output_rows(lock(), new)}
    assert not rows["data/prepared"]["identical"] and rows[MODEL]["identical"]
    assert rows["reports/backtest.json"] == {"path": "reports/backtest.json", "stage": "backtest",
                                             "committed_md5": None, "reproduced_md5": "b1", "identical": False}


def test_stages_not_rerun():
    assert compare.stages_not_rerun(["prepare", "train", "export"], ["prepare", "export"]) == ["train"]


def test_parity_summary_takes_the_worst_batch():
    runs = {"1": {"rows": 3, "label_agreement": 1.0, "label_disagreements": 0, "max_abs_proba_diff": 1e-7,
                  "example_disagreements": []},
            "64": {"rows": 3, "label_agreement": 2 / 3, "label_disagreements": 1, "max_abs_proba_diff": 2e-7,
                   "example_disagreements": ["http://x/"]}}
    summary = compare.parity_summary({"batch_sizes": runs, "label_agreement": 2 / 3, "max_abs_proba_diff": 2e-7,
                                      "rows": 3}, 1e-4, "the work tree")
    assert summary["label_disagreements"] == 1 and summary["example_disagreements"] == ["http://x/"]
    assert summary["batch_sizes"] == [1, 64] and summary["committed_onnx_from"] == "the work tree"


# -- metric deltas -----------------------------------------------------------------------------------
def test_metric_deltas_list_every_numeric_leaf_that_differs_largest_first():
    new = json.loads(json.dumps(METRICS))
    new["ensemble"]["f1"]["value"] = 0.93                    # +0.02
    new["ensemble"]["confusion"]["fp"] = 6                   # +1
    new["fpr_points"][1] = 0.02                              # +0.01 (a list element)
    new["bootstrap"], new["name"] = False, "other"           # not numbers: not listed
    del new["ensemble"]["rows"]                              # one side only: no delta
    new["ensemble"]["pr_auc"] = float("nan")
    rows = compare.metric_deltas(METRICS, new)
    assert [r["metric"] for r in rows] == ["ensemble.confusion.fp", "ensemble.f1.value", "fpr_points[1]",
                                           "ensemble.pr_auc", "ensemble.rows"]
    assert rows[1]["committed"] == 0.91 and rows[1]["reproduced"] == 0.93 and rows[1]["delta"] == pytest.approx(0.02)
    assert rows[4] == {"metric": "ensemble.rows", "committed": 1000, "reproduced": None, "delta": None}
    nan = {"a": float("nan")}
    assert compare.metric_deltas(nan, nan) == []


def test_metric_delta_table_in_the_terminal_and_in_markdown():
    rows = [{"metric": f"slices.m{i}", "committed": 0.5, "reproduced": 0.5 + i / 1e4, "delta": i / 1e4}
            for i in range(20, 0, -1)]
    rows.append({"metric": "slices.|evil`\x1b[31m", "committed": 1, "reproduced": None, "delta": None})
    lines = render.metric_table_lines(rows, limit=25)
    assert lines[0] == "  metrics.json: 21 numbers differ (largest |Δ| first)"
    assert lines[1].split() == ["metric", "committed", "re-trained", "Δ"]
    assert lines[2].split() == ["slices.m20", "0.5", "0.502", "+2.00e-03"]
    assert lines[-1].split() == ["slices.|evil`\\x1b[31m", "1", "—", "—"]
    assert "… and 11 more" in render.metric_table_lines(rows, limit=10)[-1]
    out = report(side(), side(onnx="o2", sha="s2", metrics={}), parity(max_diff=1e-6))
    out["metric_deltas"] = rows
    md = render.markdown_summary(out)
    assert "| `slices.m20` | 0.5 | 0.502 | +0.002 |" in md
    assert "`slices.\\|evil\\x60\\x1b[31m`" in md and "\x1b" not in md


# -- scoring: the committed ONNX file against the re-trained one -------------------------------------
def test_score_both_compares_the_two_onnx_files_at_each_threshold(tmp_path, small_model, small_onnx, sample_frame):
    from pipeline.reproduce.retrain import score_both
    from pipeline.training.onnx_export import to_onnx

    test = tmp_path / "test.parquet"
    sample_frame.head(600).to_parquet(test)
    (tmp_path / "a.onnx").write_bytes(small_onnx)
    (tmp_path / "same.onnx").write_bytes(to_onnx(small_model, 0.5).SerializeToString())
    (tmp_path / "higher.onnx").write_bytes(to_onnx(small_model, 0.6).SerializeToString())
    same = score_both(tmp_path / "a.onnx", tmp_path / "same.onnx", test, 0.5, 256)
    assert same["label_agreement"] == 1.0 and same["max_abs_proba_diff"] == 0.0 and same["rows"] == 600
    moved = compare.parity_summary(score_both(tmp_path / "a.onnx", tmp_path / "higher.onnx", test, 0.5, 256),
                                   1e-4, "test")
    p = small_model.predict_proba(np.asarray(sample_frame.head(600)["url"], dtype=object))[:, 1]
    assert moved["label_disagreements"] == int(((p >= 0.5) & (p < 0.6)).sum()) > 0
    assert moved["max_abs_proba_diff"] == 0.0
    assert compare.verdict(False, moved, 1e-4)["status"] == DIFFERS


# -- the scratch clone and the committed bytes --------------------------------------------------------
@pytest.mark.slow
def test_committed_bytes_come_from_the_work_tree_the_dvc_cache_or_the_remote(tmp_path):
    """A tiny DVC repository (one tracked file, pushed to an in-repo remote): the clone is made without
    touching it, and the committed file is found wherever it still is."""
    from pipeline.reproduce import scratch

    root = tmp_path / "repo"
    (root / "dist").mkdir(parents=True)
    for args in (("git", "init", "-q", "-b", "main"), ("git", "config", "user.email", "ci@example.invalid"),
                 ("git", "config", "user.name", "CI"), ("dvc", "init", "-q"),
                 ("dvc", "remote", "add", "-d", "local", "dvc-store")):
        sh(*args, cwd=root)
    (root / ONNX).write_bytes(b"committed model bytes")
    md5 = hashlib.md5(b"committed model bytes").hexdigest()
    sh("dvc", "add", "-q", ONNX, cwd=root)
    sh("dvc", "push", "-q", cwd=root)
    commit(root, "tracked file, pushed")
    cache = Path(sh("dvc", "cache", "dir", cwd=root).stdout.strip())
    found = []
    with scratch.scratch_clone(root, scratch.resolve_commit(root, "HEAD"), tmp_path / "work") as work:
        assert (work.tree / f"{ONNX}.dvc").is_file() and not (work.tree / ONNX).exists()
        found.append(scratch.fetch_committed(root, work, Path(ONNX), md5)[1])
        (root / ONNX).write_bytes(b"an uncommitted edit")
        found.append(scratch.fetch_committed(root, work, Path(ONNX), md5)[1])
        (cache / "files/md5" / md5[:2] / md5[2:]).unlink()
        copy, where = scratch.fetch_committed(root, work, Path(ONNX), md5)
        found.append(where)
        assert copy.read_bytes() == b"committed model bytes"
        assert scratch.fetch_committed(root, work, Path(ONNX), "0" * 32) == (None, None)
    assert found == ["the work tree", "the DVC cache", "the DVC remote"]
    assert list((tmp_path / "work").iterdir()) == []
    assert sh("git", "status", "--porcelain", cwd=root).stdout == ""  # the edited file is DVC's (git-ignored)


# -- end to end on a sample project ------------------------------------------------------------------
@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The sample project with its pipeline run and committed (once for both end-to-end tests)."""
    return sample_project(tmp_path_factory.mktemp("reproduce") / "repo")


def snapshot(root) -> dict:
    """(mtime, md5) of every tracked file and every DVC output in the work tree."""
    tracked = sh("git", "ls-files", cwd=root).stdout.split()
    outs = [p.relative_to(root).as_posix() for d in ("models", "dist", "data/prepared", "plots")
            for p in (root / d).rglob("*") if p.is_file()]
    return {rel: ((root / rel).stat().st_mtime_ns, hashlib.md5((root / rel).read_bytes()).hexdigest())
            for rel in sorted({*tracked, *outs}) if (root / rel).is_file()}


def reproduce(root, *args) -> tuple[subprocess.CompletedProcess, dict, float]:
    started = time.perf_counter()
    result = sh(sys.executable, "-m", "pipeline", "reproduce", "--workdir", root.parent / "scratch", *args,
                cwd=root, check=False, timeout=600)
    seconds = time.perf_counter() - started
    report_file = root / "build" / "reproduce" / "reproduce.json"
    assert report_file.is_file(), f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result, json.loads(report_file.read_text()), seconds


@pytest.mark.slow
@pytest.mark.xdist_group("reproduce")
def test_reproduce_retrains_byte_identical_and_leaves_the_work_tree_alone(project):
    before, status = snapshot(project), sh("git", "status", "--porcelain", cwd=project).stdout
    result, out, seconds = reproduce(project)
    print(f"reproduce on the sample project: {seconds:.1f}s")
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert out["repro"]["stages"] == {name: "re-ran" for name in stages}          # re-trained, nothing restored
    assert out["identical"] and out["verdict"]["status"] == IDENTICAL and out["parity"] is None
    assert out["released"][ONNX]["reproduced_sha256"] == json.loads(
        (project / "dist/manifest.json").read_text())["model"]["sha256"]
    assert [r["path"] for r in out["outputs"] if not r["identical"]] == []
    assert "byte-identical" in result.stdout and "Running stage 'train'" in result.stderr  # progress streamed
    assert sh("git", "status", "--porcelain", cwd=project).stdout == status == ""
    assert snapshot(project) == before
    assert list((project.parent / "scratch").iterdir()) == []                    # the scratch clone is gone


@pytest.mark.slow
@pytest.mark.xdist_group("reproduce")
def test_reproduce_reports_a_committed_model_that_differs(project):
    """Commit an ONNX file exported at a higher threshold (and edited metrics): the re-trained model
    matches the committed model.joblib, but the product file's labels do not."""
    from pipeline.training.onnx_export import to_onnx

    op = json.loads((project / "reports/operating_point.json").read_text())
    committed_threshold = op["released"]["ensemble"]["threshold"] + 0.05
    op["released"]["ensemble"]["threshold"] = committed_threshold
    (project / "reports/operating_point.json").write_text(json.dumps(op))
    metrics = json.loads((project / "metrics.json").read_text())
    metrics["ensemble"]["f1"]["value"] -= 0.01
    (project / "metrics.json").write_text(json.dumps(metrics))
    onnx = to_onnx(joblib.load(project / FINAL_MODEL), committed_threshold).SerializeToString()
    (project / ONNX).write_bytes(onnx)
    manifest = json.loads((project / "dist/manifest.json").read_text())
    manifest["model"]["sha256"] = hashlib.sha256(onnx).hexdigest()
    (project / "dist/manifest.json").write_text(json.dumps(manifest))
    sh("dvc", "commit", "-f", "-q", cwd=project)
    commit(project, "a committed model that the code does not reproduce")
    try:
        result, out, _ = reproduce(project)
    finally:
        sh("git", "reset", "-q", "--hard", "HEAD~1", cwd=project)
    print(result.stdout)
    assert result.returncode == ExitCode.VERIFICATION, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert out["released"][MODEL]["identical"] and not out["released"][ONNX]["identical"]
    assert out["released"][ONNX]["committed_sha256"] == hashlib.sha256(onnx).hexdigest()
    parity = out["parity"]
    assert parity["committed_onnx_from"] == "the work tree" and parity["label_disagreements"] > 0
    assert parity["max_abs_proba_diff"] <= parity["tolerance"]                   # same model, other threshold
    assert out["threshold"]["delta"] == pytest.approx(-0.05)
    f1 = next(r for r in out["metric_deltas"] if r["metric"] == "ensemble.f1.value")
    assert f1["delta"] == pytest.approx(0.01)
    assert out["verdict"]["status"] == DIFFERS
    assert "NOT reproduced" in result.stdout and "label agreement" in result.stdout
    assert "ensemble.f1.value" in result.stdout
    assert pd.notna(parity["label_agreement"]) and parity["label_agreement"] < 1
