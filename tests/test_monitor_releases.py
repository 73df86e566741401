"""Thresholds of released versions for rows without a verdict: ``--release-dir``, then params
``monitor.releases``, then the client's fetch cache; every release verified (integrity and
provenance against the configured repository) before it is trusted.

The release directories are real: the small model of ``small_onnx``, a manifest.json with
version, threshold and contract, SHA256SUMS, and the Sigstore bundles of the ONNX file and
SHA256SUMS made by the test CA (tests/sigstore_testca.py) as REPO's release workflow on main would.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import monitor_synthetic as ms
import pandas as pd
import pytest
import test_client
from monitor_synthetic import run_cli, strict_json
from test_client import REPO, attest

from phishing_url_detector import provenance
from phishing_url_detector.fetch import REPOSITORY_RECORD, record_repository
from phishing_url_detector.releases import (
    MANIFEST_FILE,
    SUMS_FILE,
    model_asset_name,
    release_asset_names,
    write_sha256sums,
)
from pipeline.monitoring import config, render, thresholds

VERSION = "1.0.0"
MALLORY = "mallory/models"
trusted_root = test_client.trusted_root  # a fixture: pytest finds it by the name it has in this module


@pytest.fixture(autouse=True)
def configured_repo(monkeypatch, trusted_root) -> None:
    """The monitor is configured for REPO and trusts the test Sigstore (offline)."""
    monkeypatch.setenv("PHISHING_MODEL_REPO", REPO)
    monkeypatch.setenv("PHISHING_MODEL_TRUSTED_ROOT", str(trusted_root))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """The client's fetch cache, pointed at an empty directory of this test."""
    path = tmp_path / "fetch-cache"
    monkeypatch.setenv("PHISHING_MODEL_CACHE", str(path))
    return path


def sign(directory: Path, version: str = VERSION, repo: str = REPO) -> Path:
    """The provenance bundles of the ONNX file and SHA256SUMS, as ``repo``'s release workflow makes them."""
    for name in (model_asset_name(version), SUMS_FILE):
        attest(directory, name, repo=repo)
    return directory


def release(directory: Path, version: str, onnx: bytes, threshold: float, repo: str = REPO, **kw) -> Path:
    """A complete release signed by ``repo``'s release workflow."""
    return sign(ms.make_release(directory, version, onnx, threshold, **kw), version, repo)


def cached(cache: Path, version: str, onnx: bytes, threshold: float, repo: str = REPO,
           record: str | None = REPO) -> Path:
    """A signed release in the fetch cache, recording ``record`` as the repository it was fetched from."""
    entry = sign(ms.cache_release(cache, version, onnx, threshold), version, repo)
    if record is not None:
        record_repository(entry, record)
    return entry


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
    flag = release(tmp_path / "flag" / "model-v1.0.0", VERSION, small_onnx, 0.3)
    listed = release(tmp_path / "listed" / "release", VERSION, small_onnx, 0.5)
    in_cache = cached(cache, VERSION, small_onnx, 0.7)
    out = tmp_path / "out"
    expected = [(0.3, "--release-dir", flag, 0.123), (0.5, "monitor.releases", listed, 0.10),
                (0.7, "fetch cache", in_cache, 0.065)]
    with_listed, without = params_file(tmp_path, [listed], "listed.yaml"), params_file(tmp_path)
    runs = [(with_listed, [flag]), (with_listed, []), (without, [])]
    for (threshold, source, directory, ratio), (params, flags) in zip(expected, runs):
        assert monitor(no_verdict_log, out, params, *flags) == 0
        result = strict_json(out / "monitor.json")
        assert result["input"]["thresholds"] == {VERSION: {
            "threshold": threshold, "source": source, "release_dir": str(directory), "verified": True}}
        assert result["input"]["provenance"] == {"repository": REPO, "checked": True}
        assert result["input"]["rows_rejected"] == 0 and result["input"]["rows_valid"] == 6000
        assert flagged_ratio(result) == pytest.approx(ratio, abs=0.015)
        assert (f"Rows without a verdict were flagged at their release's threshold: "
                f"`{VERSION}` at {threshold:g} ({source} `{directory}`).") in (out / "report.md").read_text()


@pytest.mark.parametrize("where", ["--release-dir", "monitor.releases"])
@pytest.mark.parametrize("damage", ["threshold", "onnx", "no manifest", "missing"])
def test_a_release_that_does_not_verify_is_refused(tmp_path, cache, small_onnx, no_verdict_log,
                                                   capsys, where, damage):
    release_dir = release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5)
    reason = {"threshold": "manifest.json: sha256", "onnx": "phishing-url-detector-1.0.0.onnx: sha256",
              "no manifest": "not a release directory", "missing": "not a release directory"}[damage]
    if damage == "threshold":  # the manifest edited after SHA256SUMS was written
        ms.tamper_threshold(release_dir, 0.01)
    elif damage == "onnx":
        path = release_dir / "phishing-url-detector-1.0.0.onnx"
        path.write_bytes(path.read_bytes()[:-1] + b"\0")
    elif damage == "no manifest":
        (release_dir / "manifest.json").unlink()
    else:
        shutil.rmtree(release_dir)
    out = tmp_path / "out"
    if where == "--release-dir":
        code = monitor(no_verdict_log, out, params_file(tmp_path), release_dir)
    else:
        code = monitor(no_verdict_log, out, params_file(tmp_path, [release_dir]))
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert f"monitor: error: {where} {release_dir}: " in err and reason in err


def test_a_cached_release_that_does_not_verify_is_skipped(tmp_path, cache, small_onnx,
                                                          no_verdict_log, caplog, capsys):
    entry = cached(cache, VERSION, small_onnx, 0.5)
    ms.tamper_threshold(entry, 0.01)
    with caplog.at_level(logging.WARNING, logger="pipeline.monitoring.thresholds"):
        assert monitor(no_verdict_log, tmp_path / "out", params_file(tmp_path)) == 1
    assert f"skipping a cached release: fetch cache {entry}: refused" in caplog.text
    assert f"  {VERSION}  6,000 rows" in capsys.readouterr().err


def test_a_linked_cache_entry_is_skipped_not_followed(tmp_path, cache, small_onnx, no_verdict_log, capsys,
                                                      caplog):
    """A version directory swapped for a link to a release elsewhere is not trusted, as fetch would not."""
    elsewhere = cached(tmp_path / "elsewhere", VERSION, small_onnx, 0.5)
    (cache / ("f" * 64)).mkdir(parents=True)
    (cache / ("f" * 64) / VERSION).symlink_to(elsewhere, target_is_directory=True)
    with caplog.at_level(logging.WARNING):
        assert monitor(no_verdict_log, tmp_path / "out", params_file(tmp_path)) == 1
    assert "skipping a cached release: cache entry" in caplog.text and "is a symbolic link" in caplog.text
    assert f"  {VERSION}  6,000 rows" in capsys.readouterr().err


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
                 f"phishing-url-detector fetch --repo {REPO} --tag model-v1.9.0",
                 f"phishing-url-detector fetch --repo {REPO} --tag model-v1.10.0"):
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
    release_dir = release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5)
    out = tmp_path / "out"
    assert monitor(log, out, params_file(tmp_path), release_dir, extra=["--threshold", "0.9"]) == 3
    result = strict_json(out / "monitor.json")
    assert result["input"]["thresholds"] == {
        "1.0.0": {"threshold": 0.5, "source": "--release-dir", "release_dir": str(release_dir), "verified": True},
        "2.0.0": {"threshold": 0.9, "source": "--threshold", "release_dir": None, "verified": None}}
    ratios = {w["model_version"]: w["flagged_ratio"] for w in result["windows"]}
    assert ratios["1.0.0"] == pytest.approx(0.1, abs=0.03) and ratios["2.0.0"] < 0.03
    assert {(c["kind"], c["model_version"]) for c in result["comparisons"] if c["alert"]} == {
        ("version", "2.0.0")}


def test_two_cached_copies_that_disagree_need_an_explicit_release(tmp_path, cache, small_onnx):
    trust = thresholds.trust_for()
    cached(cache, VERSION, small_onnx, 0.5)
    cached(cache, VERSION, ms.tiny_onnx_bytes(), 0.6)  # both signed by REPO, yet they disagree
    with pytest.raises(thresholds.ReleaseError, match="fetch cache gives two thresholds"):
        thresholds.resolve({VERSION: 10}, trust=trust)
    chosen = release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.55)
    named = thresholds.named_releases([chosen], trust=trust)
    assert thresholds.resolve({VERSION: 10}, named, trust=trust)[VERSION].threshold == 0.55


def test_params_manifests_are_refused_with_a_pointer_to_releases():
    with pytest.raises(ValueError, match="monitor.releases"):
        config.from_mapping({"manifests": ["dist/manifest.json"]})
    assert config.from_mapping({"releases": ["a", Path("b")]}).releases == ("a", "b")


def test_the_report_names_each_models_data_age_beside_its_windows(tmp_path, cache, small_onnx):
    """On-call reads "the ratio fell while the model aged": the release's newest training month, and how
    many months before each window it lies, even when every row logged its own verdict."""
    log = ms.to_csv_log(ms.synthetic_log(4, windows=6, rows_per_window=1000), tmp_path / "log.csv")
    release_dir = release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5, data_through="2023-12")
    out = tmp_path / "out"
    assert monitor(log, out, params_file(tmp_path), release_dir) == 0
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
    release_dir = release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5)
    out = tmp_path / "out"
    assert monitor(log, out, params_file(tmp_path), release_dir) == 0
    assert strict_json(out / "monitor.json")["model_data_through"] == {}
    assert "unknown (no release names it)" in (out / "report.md").read_text()
    assert render.data_age_months("2023-12", "2024-03-04T00:00:00+00:00") == 3
    assert render.data_age_months(None, "2024-03-04") is None


# -- provenance of thresholds (issue 19, finding 1) --------------------------------------------------
@pytest.fixture(scope="module")
def year_log(tmp_path_factory) -> Path:
    """A year of weekly traffic without verdicts whose flagged share rises from 10% to 15% in week 40:
    at the real threshold (0.5) the monitor alerts; at 1.0 nothing is ever flagged."""
    rows = ms.synthetic_log(31, windows=52, rows_per_window=1000, shift=0.05, shift_from=40)
    return ms.to_csv_log(rows.drop(columns="verdict"), tmp_path_factory.mktemp("year") / "log.csv")


def silenced_copy(genuine: Path, target: Path) -> Path:
    """The attack: a copy of a genuine signed release with every threshold 1.0 and SHA256SUMS rewritten,
    so it agrees with itself (integrity passes); its provenance bundles are the genuine ones."""
    shutil.copytree(genuine, target)
    ms.tamper_threshold(target, 1.0)
    write_sha256sums(target, release_asset_names(VERSION)[:-1])
    return target


def alerts(out: Path) -> int:
    return strict_json(out / "monitor.json")["alerts"]


def test_a_self_consistent_copy_with_silenced_thresholds_is_refused(tmp_path, cache, small_onnx, year_log,
                                                                     capsys, caplog):
    genuine = release(tmp_path / "genuine" / "model-v1.0.0", VERSION, small_onnx, 0.5)
    forged = silenced_copy(genuine, tmp_path / "forged" / "model-v1.0.0")
    assert json.loads((forged / MANIFEST_FILE).read_text())["threshold"] == 1.0
    params = params_file(tmp_path)
    assert monitor(year_log, tmp_path / "real", params, genuine) == 3  # the real thresholds alert
    assert alerts(tmp_path / "real") == 9
    capsys.readouterr()

    for how in ("--release-dir", "monitor.releases"):
        out = tmp_path / how
        code = (monitor(year_log, out, params, forged) if how == "--release-dir"
                else monitor(year_log, out, params_file(tmp_path, [forged], "forged.yaml")))
        err = capsys.readouterr().err
        assert code == 1 and not out.exists()  # refused, not silently used
        assert f"monitor: error: {how} {forged}: refused, the release does not verify" in err
        assert f"{SUMS_FILE}: sha256" in err and f"is not a subject of {SUMS_FILE}.sigstore.json" in err

    silenced_copy(genuine, cache / ("e" * 64) / VERSION)  # the same copy planted in the fetch cache
    record_repository(cache / ("e" * 64) / VERSION, REPO)
    with caplog.at_level(logging.WARNING):
        assert monitor(year_log, tmp_path / "cache-out", params) == 1
    assert "skipping a cached release" in caplog.text and "is not a subject of" in caplog.text
    assert "no threshold for 1 model version(s)" in capsys.readouterr().err


def test_allow_unverified_uses_it_but_warns_every_run_and_the_report_says_so(tmp_path, small_onnx, year_log,
                                                                              caplog):
    genuine = release(tmp_path / "genuine" / "model-v1.0.0", VERSION, small_onnx, 0.5)
    forged = silenced_copy(genuine, tmp_path / "forged" / "model-v1.0.0")
    for run in range(2):
        out = tmp_path / f"out{run}"
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert monitor(year_log, out, params_file(tmp_path), forged, extra=["--allow-unverified"]) == 0
        assert "--allow-unverified: the provenance of release thresholds is NOT checked" in caplog.text
        assert f"--allow-unverified: provenance of {forged / model_asset_name(VERSION)} NOT checked" in caplog.text
        result = strict_json(out / "monitor.json")
        assert alerts(out) == 0  # what the flag allows: named loudly below
        assert result["input"]["provenance"] == {"repository": REPO, "checked": False}
        assert result["input"]["thresholds"][VERSION]["verified"] is False
        report = (out / "report.md").read_text()
        assert "**Thresholds unverified**: `--allow-unverified` was given" in report and "`1.0.0`" in report
        assert f"`{VERSION}` at 1 (--release-dir `{forged}`, **unverified**)" in report


def test_a_cache_entry_of_another_repository_is_never_used(tmp_path, cache, small_onnx, no_verdict_log,
                                                           capsys, caplog):
    entry = cached(cache, VERSION, small_onnx, 0.5, repo=MALLORY, record=MALLORY)  # valid, for mallory
    for extra in ([], ["--allow-unverified"]):  # not even when provenance is skipped
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert monitor(no_verdict_log, tmp_path / "out", params_file(tmp_path), extra=extra) == 1
        assert f"cache entry {entry} was fetched from '{MALLORY}', not {REPO}" in caplog.text
        assert "no threshold for 1 model version(s)" in capsys.readouterr().err
    # mallory's release recorded as ours (the record is a file anyone with cache access can write):
    record_repository(entry, REPO)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert monitor(no_verdict_log, tmp_path / "out", params_file(tmp_path)) == 1
    assert "provenance does not verify against the policy" in caplog.text and MALLORY in caplog.text
    (entry / REPOSITORY_RECORD).unlink()  # cached by an older client: not used, with a warning
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert monitor(no_verdict_log, tmp_path / "out", params_file(tmp_path)) == 1
    assert f"cache entry {entry} records no repository" in caplog.text
    assert f"phishing-url-detector fetch --repo {REPO} --tag model-v{VERSION}" in caplog.text
    record_repository(entry, MALLORY)  # the monitor configured for mallory does use it
    assert monitor(no_verdict_log, tmp_path / "m", params_file(tmp_path), extra=["--repo", MALLORY]) == 0
    assert strict_json(tmp_path / "m" / "monitor.json")["input"]["thresholds"][VERSION]["source"] == "fetch cache"


def test_the_repository_comes_from_flag_env_or_params(tmp_path, small_onnx, no_verdict_log, monkeypatch, capsys):
    signed = release(tmp_path / "model-v1.0.0", VERSION, small_onnx, 0.5)
    monkeypatch.delenv("PHISHING_MODEL_REPO")
    out = tmp_path / "out"
    assert monitor(no_verdict_log, out, params_file(tmp_path), signed) == 1
    err = capsys.readouterr().err
    assert "cannot check whose release it is: no repository is configured" in err
    assert "--repo OWNER/NAME" in err and "$PHISHING_MODEL_REPO" in err and "monitor.repo" in err
    with_repo = tmp_path / "repo.yaml"
    with_repo.write_text(f"monitor:\n  repo: {REPO}\n")
    assert config.load(with_repo).repo == REPO
    assert monitor(no_verdict_log, out, with_repo, signed) == 0
    monkeypatch.setenv("PHISHING_MODEL_REPO", MALLORY)  # the environment wins over params, the flag over both
    assert monitor(no_verdict_log, out, with_repo, signed) == 1
    assert f"{MALLORY}" in capsys.readouterr().err
    assert monitor(no_verdict_log, out, with_repo, signed, extra=["--repo", REPO]) == 0
    assert monitor(no_verdict_log, out, with_repo, signed, extra=["--repo", "not a repo"]) == 1
    assert "must look like OWNER/NAME" in capsys.readouterr().err


def test_trust_is_the_clients_policy():
    trust = thresholds.trust_for(REPO, None, None)
    assert trust.policy == provenance.policy_for(REPO) and trust.as_dict() == {"repository": REPO, "checked": True}
