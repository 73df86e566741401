"""The benchmark script still runs (tiny sizes) and writes the fields RESULTS.md is built from.

No timing thresholds here: numbers belong to `make bench` (benchmarks/RESULTS.md), not to unit tests.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from conftest import REPO, bench_smoke_section

sys.path.insert(0, str(REPO))  # benchmarks/ is the repository's folder of scripts, not an installed package

from benchmarks import bench
from benchmarks._batch_scoring import run_batch
from benchmarks._inputs import Inputs
from benchmarks._levers import run_candidates, run_levers
from benchmarks._profile import run_profile
from benchmarks._results import merge_results
from benchmarks._serving import run_serving
from benchmarks._smoke import smoke_train_params
from benchmarks.train_memory import phase_table, projections
from pipeline.common import load_params
from pipeline.training.model import build_model, fit
from pipeline.training.onnx_export import to_onnx


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and x > 0 and not math.isnan(x)


# Its tests are slow: the fixture trains a model and runs four benchmark sections (~20 s).
@pytest.fixture(scope="module")
def smoke_results(sample_frame, tmp_path_factory):
    """Every serving section on a smoke-sized model fitted on 1,500 URLs of the sample, tested on the rest."""
    frame = sample_frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = frame.iloc[:1500], frame.iloc[1500:]
    params = smoke_train_params(load_params(REPO / "params.yaml")["train"])
    model = fit(build_model(params), train["url"], train["label"].to_numpy())
    inputs = Inputs(model=model, onnx_bytes=to_onnx(model, 0.5).SerializeToString(),
                    urls=frame["url"].to_numpy(dtype=object)[:128], train=train, test=test, train_params=params)
    out = tmp_path_factory.mktemp("bench")
    cfg = dict(bench.SMOKE)
    for name, fn in (("serving", run_serving), ("levers", run_levers), ("candidates", run_candidates),
                     ("profile", run_profile)):
        merge_results(out, name, fn(inputs, cfg, log=lambda msg: None), smoke=True)
    return out


@pytest.mark.slow
def test_serving_numbers_are_complete_and_sane(smoke_results):
    doc = json.loads((smoke_results / "results.json").read_text())
    serving = doc["sections"]["serving"]
    assert serving["smoke"] is True and serving["machine"]["logical_cpus"] >= 1
    assert set(serving["engines"]) == {"ensemble", "char_tfidf_lr", "lexical_trees",
                                       "char_tfidf_lr: TF-IDF only (dense [N,V] output)", "lexical_trees: features only"}
    for name, e in serving["engines"].items():
        for key in ("onnx_b1", "sklearn_b1"):
            assert 0 < e[key]["p50_ms"] <= e[key]["p99_ms"], (name, key)
        for key in ("onnx_b1024_t1", "sklearn_b1024_t1"):
            assert _positive(e[key]["urls_per_s_best"]) and e[key]["urls_per_s_best"] >= e[key]["urls_per_s_median"]
    ens = serving["engines"]["ensemble"]
    assert _positive(ens["onnx_b1024_t2"]["urls_per_s_best"]) and _positive(ens["sklearn_b1024_t2"]["urls_per_s_best"])
    for engine in ("onnx", "sklearn"):
        mem = serving["load_and_memory"][engine]
        assert _positive(mem["load_s"]) and _positive(mem["file_mb"])
        assert mem["peak_rss_mb"] >= mem["rss_after_load_mb"] >= mem["rss_after_imports_mb"] > 0
    assert serving["parity_max_abs_diff"] < 1e-4
    assert set(serving["targets"]) >= {"onnx_b1_p50_ms", "speedup_b1_p50", "onnx_b1024_t1_urls_per_s",
                                       "independent_b1024_urls_per_cpu_s", "ratio_to_physical_limit"}
    # the independent harness ran in its own process, once per factor, and the reconciliation lists each
    runs = {r["variant"]: r for r in serving["independent"]["runs"]}
    assert set(runs) == {"default", "same-batch", "unicode-dtype", "proba-only", "bench-options", "sorted", "busy"}
    assert runs["default"]["outputs"] == ["label", "probabilities"] and runs["proba-only"]["outputs"] == ["probabilities"]
    assert all(_positive(r["b1024_urls_per_cpu_s"] if "b1024_urls_per_cpu_s" in r else r["b64_urls_per_cpu_s"])
               for r in runs.values())
    assert len(serving["reconciliation"]) == 1 + len(runs)
    assert serving["reconciliation"][1]["cpu_ratio_vs_independent"] == 1.0
    assert _positive(serving["detector_b1024"]["urls_per_cpu_s"])
    assert serving["graph"]["duplicate_nodes"] == 0


@pytest.mark.slow
def test_levers_report_speed_and_accuracy(smoke_results):
    levers = json.loads((smoke_results / "results.json").read_text())["sections"]["levers"]
    assert set(levers["ort_optimisation_level"]) == {"disable_all", "basic", "extended", "all"}
    rewrites = levers["graph_rewrites"]
    export = rewrites["export"]  # the rewrites are in the export: one URL split, nothing computed twice
    assert export["duplicate_nodes"] == 0 and export["ops"]["StringSplit"] == 2  # scheme and www., once each
    assert export["ops"]["LinearClassifier"] == 0 and export["ops"]["ReduceSumSquare"] == 0
    assert rewrites["max_abs_proba_diff_vs_sklearn"] < 1e-4  # the rewrites are exact
    variants = levers["model_variants"]
    assert len(variants) >= 5  # shipped, a vocabulary, a tree shape, TF-IDF alone, a combination
    assert any("host_features=" in v["variant"] and "max_iter=" in v["variant"] for v in variants)
    for v in variants:
        assert 0.5 < v["roc_auc"] <= 1 and 0 <= v["tpr_at_fpr_0.01"] <= 1
        assert _positive(v["b1_p50_ms"]) and _positive(v["b1024_urls_per_s"]) and _positive(v["onnx_mb"])


@pytest.mark.slow
def test_candidates_are_timed_alike_and_scored(smoke_results):
    cands = json.loads((smoke_results / "results.json").read_text())["sections"]["candidates"]["candidates"]
    assert [c["candidate"] for c in cands][:2] == ["shipped graph, shipped model", "rewritten graph, shipped model"]
    assert cands[0]["roc_auc"] == cands[1]["roc_auc"]  # the rewrite does not change the model
    for c in cands:
        assert _positive(c["b1_cpu_p50_ms"]) and _positive(c["b1024_urls_per_cpu_s"]) and 0.5 < c["roc_auc"] <= 1


@pytest.mark.slow
def test_profile_attributes_time_to_members(smoke_results):
    profile = json.loads((smoke_results / "results.json").read_text())["sections"]["profile"]
    for prof in profile["onnx"].values():
        shares = [p["share"] for p in prof["by_part"].values()]
        assert abs(sum(shares) - 1) < 0.01 and prof["top_nodes"]
        assert any(k.startswith("gradient-boosted trees") for k in prof["by_part"])
        assert any(k.startswith("char TF-IDF") for k in prof["by_part"])
    assert profile["train_stage"]["by_cumulative"] and _positive(profile["train_stage"]["wall_s"])


@pytest.mark.slow
def test_results_markdown_has_every_section(smoke_results):
    text = (smoke_results / "RESULTS.md").read_text()
    for heading in ("## 1. Serving", "Reconciliation: the two harnesses", "## 2. Speed levers", "Shortlist, interleaved",
                    "## 4. Profiles", "Smoke run"):
        assert heading in text
    assert "logical CPUs" in text  # machine facts


@pytest.mark.slow
def test_pipeline_sections_run_on_tiny_data(tmp_path):
    """scaling (1x, 2x) and ci through the CLI, in a scratch copy of the working tree.

    Marked slow: it runs `dvc repro` three times on a few hundred raw rows per source (a couple of
    minutes of CPU, mostly interpreter start-up and imports of the pipeline stages)."""
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(REPO / "benchmarks/bench.py"), "--smoke", "--sections", "scaling,ci",
                    "--out-dir", str(out), "--workdir", str(tmp_path / "work")], check=True, cwd=REPO,
                   capture_output=True, text=True, timeout=600)
    doc = json.loads((out / "results.json").read_text())
    scaling = doc["sections"]["scaling"]
    assert [r["factor"] for r in scaling["runs"]] == [1, 2]
    one, two = scaling["runs"]
    assert two["raw_rows"] == pytest.approx(2 * one["raw_rows"], rel=0.01)
    for run in scaling["runs"]:
        assert set(run["stages"]) >= {"prepare", "train", "leave-one-source-out", "backtest", "operating-point",
                                      "evaluate", "export"}
        # Stages that load the training stack are measured; model-card imports almost nothing now (about
        # 20 MB for 0.1 s), which the 0.1 s RSS sampler may not catch.
        heavy = {k: v for k, v in run["stages"].items() if k in ("prepare", "train", "evaluate", "export")}
        assert all(_positive(s["wall_s"]) and s["peak_rss_mb"] > 50 for s in heavy.values()), heavy
        assert all(s["wall_s"] is not None for s in run["stages"].values())
    assert scaling["exponent_time_vs_rows"]["total"] is not None
    ci = doc["sections"]["ci"]
    assert ci["noop_stages_run"] == [] and len(ci["noop_repro_s"]) == 1
    assert {"evaluate", "manifest"} <= set(ci["eval_params_change"]["stages_run"])
    assert not {"prepare", "train", "final-fit", "leave-one-source-out", "backtest", "operating-point", "export"} & set(
        ci["eval_params_change"]["stages_run"])
    assert "## 3a. Pipeline scaling" in (out / "RESULTS.md").read_text()


@pytest.mark.slow
def test_batch_section_runs_the_cli_on_generated_files(sample_frame, small_onnx, tmp_path):
    """Every parallel mode of `score --file --output` as a subprocess on a generated file, and the table.

    Marked slow: five subprocesses that each load onnxruntime (and spawn workers)."""
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(small_onnx)
    urls = sample_frame["url"].tolist()[:500]
    result = run_batch(onnx, urls, tmp_path / "work", {"batch_compare_urls": 700, "batch_urls": 1500},
                       log=lambda msg: None)
    generated = tmp_path / "work" / "urls-1500.txt"
    assert generated.read_text().splitlines() == (urls * 3)[:1500]  # the sample, cycled
    assert [(r["mode"], r["urls"]) for r in result["compare"]] == [
        ("processes", 700), ("threads", 700), ("intra-op", 700), ("single", 700)]
    assert result["compare"][-1]["workers"] == 1 and result["large"]["urls"] == 1500
    for run in [*result["compare"], result["large"]]:
        assert _positive(run["urls_per_s"]) and _positive(run["urls_per_cpu_s"]) and run["peak_rss_tree_mb"] > 50
        assert run["urls_per_s_per_core"] <= run["urls_per_s"]
    assert result["compare"][0]["processes"] > result["compare"][-1]["processes"]  # the pool's workers were seen
    assert not list((tmp_path / "work").glob("scores*"))  # scratch outputs removed
    merge_results(tmp_path / "out", "batch", result, smoke=True)
    text = (tmp_path / "out" / "RESULTS.md").read_text()
    pool = result["compare"][0]["workers"]
    assert "## 6. Batch scoring" in text and f"| processes (default) | {pool} | 700 |" in text
def test_train_memory_attributes_samples_to_phases_and_fits_lines():
    """Pure parts of the train-memory section: phase attribution and the fits it projects from."""
    marks = [(0.0, "other"), (1.0, "TF-IDF"), (3.0, "other"), (4.0, "exit")]
    table = phase_table(marks, [(0.5, 100 * 2**20), (1.5, 900 * 2**20), (2.5, 700 * 2**20), (3.5, 300 * 2**20)])
    assert table["TF-IDF"] == {"seconds": 2.0, "peak_rss_mb": 900.0, "samples": 2}
    assert table["other"]["seconds"] == 2.0 and table["other"]["peak_rss_mb"] == 300.0
    # peak = 200 MB + 1 KB per row exactly: the linear fit recovers it, the power law bends below 1
    runs = [{"factor": k, "rows": 1000 * k, "ru_maxrss_mb": 200 + 1000 * k / 1024, "cpu_s": 2.0 * k,
             "wall_s": 3.0 * k} for k in (1, 3, 10)]
    p = projections(runs)
    lin = p["fits"]["ru_maxrss_mb"]["linear"]
    assert lin["fixed"] == pytest.approx(200) and lin["per_row"] == pytest.approx(1 / 1024)
    assert p["fits"]["ru_maxrss_mb"]["power"]["b"] < 1 and p["fits"]["cpu_s"]["power"]["b"] == pytest.approx(1)
    assert p["projected"]["ru_maxrss_mb"]["100x"]["linear"] == pytest.approx(200 + 100_000 / 1024, abs=0.1)
    assert p["max_rows_for_ram"]["7 GB"] == int((7 * 1024 * 0.8 - 200) * 1024)


@pytest.mark.slow
def test_train_memory_section_runs_on_tiny_data(tmp_path):
    """The train-memory section through the CLI (1x, 2x of the smoke raw files; about a minute)."""
    section = bench_smoke_section(tmp_path, "train-memory", timeout=600)
    out = tmp_path / "out"
    one, two = section["runs"]
    assert (one["factor"], two["factor"]) == (1, 2) and two["rows"] > 1.5 * one["rows"]
    for run in section["runs"]:
        # ru_maxrss is read just before the child exits; the sampler may see the last few KB after it
        assert run["ru_maxrss_mb"] >= 0.95 * run["sampled_peak_rss_mb"] > 50 and _positive(run["cpu_s"])
        assert {"read train split", "TF-IDF transform (all rows)", "trees fit"} <= set(run["phases"])
        assert run["code"] == str(REPO / "pipeline")
    assert section["projections"]["fits"]["ru_maxrss_mb"]["linear"] is not None
    assert "## 3c. Training memory" in (out / "RESULTS.md").read_text()
