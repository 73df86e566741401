"""Thresholds of released versions for rows without a verdict: ``--release-dir``, then params
``monitor.releases``, then the client's fetch cache; every release verified before it is trusted.

The release directories are real: the small model of ``small_onnx``, a manifest.json with
version, threshold and contract, and SHA256SUMS, exactly what ``verify_release_dir`` accepts.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

import monitor_synthetic as ms
from monitor_synthetic import run_cli, strict_json
from pipeline.monitoring import config, render, thresholds

VERSION = "1.0.0"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """The client's fetch cache, pointed at an empty directory of this test."""
    path = tmp_path / "fetch-cache"
    monkeypatch.setenv("PHISHING_MODEL_CACHE", str(path))
    return path


@pytest.fixture
def no_verdict_log(tmp_path) -> Path:
    """Six stable weeks of version 1.0.0, scores only: 10% score above 0.5."""
    rows = ms.synthetic_log(21, windows=6, rows_per_window=1000).drop(columns="verdict")
    return ms.to_csv_log(rows, tmp_path / "log.csv")


def params_file(tmp_path: Path, releases: list[Path] = (), name: str = "params.yaml") -> Path:
    path = tmp_path / name
    path.write_text("monitor:\n  window: 7D\n  releases: [" + ", ".join(f"'{r}'" for r in releases) + "]\n")
    return path


def monitor(log: Path, out: Path, params: Path, *release_dirs: Path, extra=()) -> int:
    flags = [arg for d in release_dirs for arg in ("--release-dir", d)]
    return run_cli("monitor", "--log", log, "--out", out, "--params", params, *flags, *extra)


def flagged_ratio(result: dict) -> float:
    windows = result["windows"]
    return sum(w["flagged_ratio"] * w["rows"] for w in windows) / sum(w["rows"] for w in windows)


def test_release_dir_wins_over_params_which_win_over_the_cache(tmp_path, cache, small_onnx,
                                                               no_verdict_log):
    flag = ms.make_release(tmp_path / "flag" / "model-v1.0.0", VERSION, small_onnx, 0.3)
    listed = ms.make_release(tmp_path / "listed" / "release", VERSION, small_onnx, 0.5)
    cached = ms.cache_release(cache, VERSION, small_onnx, 0.7)
    out = tmp_path / "out"
    expected = [(0.3, "--release-dir", flag, 0.123), (0.5, "monitor.releases", listed, 0.10),
                (0.7, "fetch cache", cached, 0.065)]
    with_listed, without = params_file(tmp_path, [listed], "listed.yaml"), params_file(tmp_path)
    runs = [(with_listed, [flag]), (with_listed, []), (without, [])]
    for (threshold, source, directory, ratio), (params, flags) in zip(expected, runs):
        assert monitor(no_verdict_log, out, params, *flags) == 0
        result = strict_json(out / "monitor.json")
        assert result["input"]["thresholds"] == {VERSION: {
            "threshold": threshold, "source": source, "release_dir": str(directory)}}
        assert result["input"]["rows_rejected"] == 0 and result["input"]["rows_valid"] == 6000
        assert flagged_ratio(result) == pytest.approx(ratio, abs=0.015)
        assert (f"Rows without a verdict were flagged at their release's threshold: "
                f"`{VERSION}` at {threshold:g} ({source} `{directory}`).") in (out / "report.md").read_text()


@pytest.mark.parametrize("where", ["--release-dir", "monitor.releases"])
@pytest.mark.parametrize("damage", ["threshold", "onnx", "no manifest", "missing"])
def test_a_release_that_does_not_verify_is_refused(tmp_path, cache, small_onnx, no_verdict_log,
                                                   capsys, where, damage):
    release = ms.make_release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5)
    reason = {"threshold": "manifest.json: sha256", "onnx": "phishing-url-detector-1.0.0.onnx: sha256",
              "no manifest": "not a release directory", "missing": "not a release directory"}[damage]
    if damage == "threshold":  # the manifest edited after SHA256SUMS was written
        ms.tamper_threshold(release, 0.01)
    elif damage == "onnx":
        path = release / "phishing-url-detector-1.0.0.onnx"
        path.write_bytes(path.read_bytes()[:-1] + b"\0")
    elif damage == "no manifest":
        (release / "manifest.json").unlink()
    else:
        shutil.rmtree(release)
    out = tmp_path / "out"
    if where == "--release-dir":
        code = monitor(no_verdict_log, out, params_file(tmp_path), release)
    else:
        code = monitor(no_verdict_log, out, params_file(tmp_path, [release]))
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert f"monitor: error: {where} {release}: " in err and reason in err


def test_a_cached_release_that_does_not_verify_is_skipped(tmp_path, cache, small_onnx,
                                                          no_verdict_log, caplog, capsys):
    cached = ms.cache_release(cache, VERSION, small_onnx, 0.5)
    ms.tamper_threshold(cached, 0.01)
    with caplog.at_level(logging.WARNING, logger="pipeline.monitoring.thresholds"):
        assert monitor(no_verdict_log, tmp_path / "out", params_file(tmp_path)) == 1
    assert f"skipping a cached release: fetch cache {cached}: refused" in caplog.text
    assert f"  {VERSION}  6,000 rows" in capsys.readouterr().err


def test_a_linked_cache_entry_is_skipped_not_followed(tmp_path, cache, small_onnx, no_verdict_log, capsys):
    """A version directory swapped for a link to a release elsewhere is not trusted, as fetch would not."""
    elsewhere = ms.cache_release(tmp_path / "elsewhere", VERSION, small_onnx, 0.5)
    (cache / ("f" * 64)).mkdir(parents=True)
    (cache / ("f" * 64) / VERSION).symlink_to(elsewhere, target_is_directory=True)
    assert monitor(no_verdict_log, tmp_path / "out", params_file(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "skipping a cached release: cache entry" in err and "is a symbolic link" in err
    assert f"  {VERSION}  6,000 rows" in err


def test_unknown_versions_fail_at_once_with_the_listing(tmp_path, cache, capsys):
    parts = [ms.synthetic_log(1, windows=4, rows_per_window=300, version="1.10.0"),
             ms.synthetic_log(2, windows=4, rows_per_window=100, version="1.9.0"),
             ms.synthetic_log(3, windows=4, rows_per_window=500, version="3.0.0")]
    rows = pd.concat(parts, ignore_index=True).astype({"verdict": "Int8"})
    rows.loc[rows["model_version"] != "3.0.0", "verdict"] = pd.NA  # 3.0.0 logs its verdicts
    rows.loc[rows.index[:7], "model_version"] = ""                  # rejected anyway, needs nothing
    log = ms.to_csv_log(rows, tmp_path / "log.csv")
    out = tmp_path / "out"
    assert monitor(log, out, params_file(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.count("error") == 1 and "rejected" not in err and not out.exists()
    listing = err.splitlines()[:3]
    assert listing == ["monitor: error: no threshold for 2 model version(s) whose rows carry no verdict:",
                       "  1.9.0     400 rows", "  1.10.0  1,193 rows"]
    for hint in ("--release-dir DIR", "monitor.releases: [DIR]", f"fetch cache ({cache};",
                 "phishing-url-detector fetch --tag model-v1.9.0",
                 "phishing-url-detector fetch --tag model-v1.10.0"):
        assert hint in err
    assert "3.0.0" not in err


def test_rows_with_a_verdict_need_no_threshold(tmp_path, cache):
    log = ms.to_csv_log(ms.synthetic_log(4, windows=6, rows_per_window=1000, version="7.0.0"),
                        tmp_path / "log.csv")
    out = tmp_path / "out"
    assert monitor(log, out, params_file(tmp_path)) == 0
    result = strict_json(out / "monitor.json")
    assert result["input"]["thresholds"] == {} and result["input"]["rows_rejected"] == 0
    assert "Rows without a verdict" not in (out / "report.md").read_text()


def test_threshold_flag_only_covers_versions_without_a_release(tmp_path, cache, small_onnx):
    rows = ms.synthetic_log(5, windows=6, rows_per_window=600)
    rows = pd.concat([rows, rows.assign(model_version="2.0.0")], ignore_index=True)
    log = ms.to_csv_log(rows.drop(columns="verdict"), tmp_path / "log.csv")
    release = ms.make_release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5)
    out = tmp_path / "out"
    assert monitor(log, out, params_file(tmp_path), release, extra=["--threshold", "0.9"]) == 3
    result = strict_json(out / "monitor.json")
    assert result["input"]["thresholds"] == {
        "1.0.0": {"threshold": 0.5, "source": "--release-dir", "release_dir": str(release)},
        "2.0.0": {"threshold": 0.9, "source": "--threshold", "release_dir": None}}
    ratios = {w["model_version"]: w["flagged_ratio"] for w in result["windows"]}
    assert ratios["1.0.0"] == pytest.approx(0.1, abs=0.03) and ratios["2.0.0"] < 0.03
    assert {(c["kind"], c["model_version"]) for c in result["comparisons"] if c["alert"]} == {
        ("version", "2.0.0")}


def test_two_cached_copies_that_disagree_need_an_explicit_release(tmp_path, cache, small_onnx):
    ms.cache_release(cache, VERSION, small_onnx, 0.5)
    ms.cache_release(cache, VERSION, ms.tiny_onnx_bytes(), 0.6)  # another repository's 1.0.0
    with pytest.raises(thresholds.ReleaseError, match="fetch cache gives two thresholds"):
        thresholds.resolve({VERSION: 10})
    chosen = ms.make_release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.55)
    assert thresholds.resolve({VERSION: 10}, thresholds.named_releases([chosen]))[VERSION].threshold == 0.55


def test_params_manifests_are_refused_with_a_pointer_to_releases():
    with pytest.raises(ValueError, match="monitor.releases"):
        config.from_mapping({"manifests": ["dist/manifest.json"]})
    assert config.from_mapping({"releases": ["a", Path("b")]}).releases == ("a", "b")


def test_the_report_names_each_models_data_age_beside_its_windows(tmp_path, cache, small_onnx):
    """On-call reads "the ratio fell while the model aged": the release's newest training month, and how
    many months before each window it lies, even when every row logged its own verdict."""
    log = ms.to_csv_log(ms.synthetic_log(4, windows=6, rows_per_window=1000), tmp_path / "log.csv")
    release = ms.make_release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5, data_through="2023-12")
    out = tmp_path / "out"
    assert monitor(log, out, params_file(tmp_path), release) == 0
    result = strict_json(out / "monitor.json")
    assert result["input"]["thresholds"] == {} and result["model_data_through"] == {VERSION: "2023-12"}
    latest = [w for w in result["windows"] if w["model_version"] == VERSION][-1]
    age = render.data_age_months("2023-12", latest["window_start"])
    assert age == (pd.Timestamp(latest["window_start"]).tz_convert(None).to_period("M")
                   - pd.Period("2023-12", freq="M")).n
    table = (out / "report.md").read_text()
    assert "| model data up to |" in table and f"| 2023-12 ({age} months before) |" in table
    assert (out / "ratio.png").stat().st_size > 0


def test_a_release_without_a_data_month_leaves_the_age_unknown(tmp_path, cache, small_onnx):
    log = ms.to_csv_log(ms.synthetic_log(4, windows=6, rows_per_window=1000), tmp_path / "log.csv")
    release = ms.make_release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5)
    out = tmp_path / "out"
    assert monitor(log, out, params_file(tmp_path), release) == 0
    assert strict_json(out / "monitor.json")["model_data_through"] == {}
    assert "unknown (no release names it)" in (out / "report.md").read_text()
    assert render.data_age_months("2023-12", "2024-03-04T00:00:00+00:00") == 3
    assert render.data_age_months(None, "2024-03-04") is None
