"""``simulate-traffic``: dated phishing + held-out legitimate URLs through a released ONNX model.

Uses a release directory holding a tiny ONNX model with the product's I/O
contract (P(phishing) = 0.9 when the URL contains "login", else 0.1), the real
small model of ``small_onnx`` where scores must match the client's Detector,
and tiny synthetic inputs.
"""
from __future__ import annotations

import monitor_synthetic as ms
import numpy as np
import pandas as pd
import pytest
from monitor_synthetic import run_cli, strict_json

from phishing_url_detector.detector import Detector
from phishing_url_detector.releases import model_asset_name
from pipeline.monitoring import config, simulate


@pytest.fixture(autouse=True)
def empty_fetch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHISHING_MODEL_CACHE", str(tmp_path / "fetch-cache"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("simulate")
    release = ms.make_release(root / "model-v1.4.0", "1.4.0", ms.tiny_onnx_bytes(), 0.5)
    rng = np.random.default_rng(0)
    dates = pd.Timestamp("2021-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 120, 400), unit="D")
    # Half the phishing URLs only say "login" once HTML entities are decoded:
    # the model sees them as phishing only if normalise_url was applied.
    urls = [f"http://evil{i}.example/log&#105;n" if i % 2 else f"http://evil{i}.example/login?a=1&amp;b=2"
            for i in range(400)]
    phish = root / "phishtank_dated.csv.gz"
    pd.DataFrame({"url": urls, "label": 1, "date": dates.strftime("%Y-%m-%d %H:%M:%S+00:00"),
                  "target": "Other"}).to_csv(phish, index=False)
    legit = root / "test.parquet"
    pd.DataFrame({"url": [f"https://shop{i}.example/item/{i}" for i in range(300)] +
                  [f"http://heldout-phish{i}.example/login" for i in range(50)],
                  "label": [0] * 300 + [1] * 50}).to_parquet(legit)
    return {"model": release / model_asset_name("1.4.0"), "release": release,
            "phish": phish, "legit": legit, "root": root}


def _simulate(inputs, out, *extra, model=None) -> int:
    return run_cli("simulate-traffic", "--phish", inputs["phish"], "--legit", inputs["legit"],
                   "--model", model or inputs["model"], "--out", out,
                   "--start", "2021-01-01", "--months", "3", "--rows-per-day", "300",
                   "--prevalence", "0.2", "--label-share", "1.0", "--params", inputs["root"] / "none.yaml",
                   *extra)


def test_simulated_log_is_realistic_and_deterministic(inputs, tmp_path):
    out = tmp_path / "a.csv.gz"
    assert _simulate(inputs, out, "--seed", "7") == 0
    log = pd.read_csv(out)
    assert list(log.columns) == ["timestamp", "model_version", "score", "verdict", "url", "label"]
    assert set(log["model_version"]) == {"1.4.0"}  # the manifest's version
    ts = pd.to_datetime(log["timestamp"], utc=True, format="ISO8601")
    assert ts.min() >= pd.Timestamp("2021-01-01", tz="UTC")
    assert ts.max() < pd.Timestamp("2021-04-01", tz="UTC")
    assert ts.is_monotonic_increasing
    per_day = ts.dt.floor("D").value_counts()
    weekday = per_day[per_day.index.day_of_week < 5].mean()
    weekend = per_day[per_day.index.day_of_week >= 5].mean()
    assert weekday == pytest.approx(300, rel=0.05) and weekend == pytest.approx(180, rel=0.08)
    assert log["label"].mean() == pytest.approx(0.2, abs=0.02)  # the prevalence
    phish = log[log["label"] == 1]
    # Every phishing row is scored 0.9, including the entity-escaped ones: URLs were normalised.
    assert phish["url"].str.contains("&#105;").any()
    assert np.allclose(phish["score"], 0.9, atol=1e-6) and (phish["verdict"] == 1).all()
    legit = log[log["label"] == 0]
    assert np.allclose(legit["score"], 0.1, atol=1e-6) and not legit["url"].str.contains("heldout").any()
    # The same seed gives the same log; another seed does not.
    again = tmp_path / "b.csv.gz"
    assert _simulate(inputs, again, "--seed", "7") == 0
    assert pd.read_csv(again).equals(log)
    other = tmp_path / "c.csv.gz"
    assert _simulate(inputs, other, "--seed", "8") == 0
    assert not pd.read_csv(other).equals(log)


def test_phishing_is_replayed_around_its_report_date():
    reported = pd.to_datetime(["2021-01-05", "2021-02-20", "2021-03-25"] * 40, utc=True)
    phish = pd.DataFrame({"url": [f"p{i}-{d:%m%d}" for i, d in enumerate(reported)],
                          "reported": reported}).sort_values("reported", ignore_index=True)
    cfg = simulate.traffic_config(config.defaults().simulate, "1.0.0", start="2021-01-01", months=3,
                                  rows_per_day=50, prevalence=0.5, pool_days=15, min_pool=10, seed=3)
    plan = simulate.plan_traffic(phish, np.array(["legit"]), cfg)
    rows = plan[plan["label"] == 1]
    when = pd.to_datetime("2021-" + rows["url"].str[-4:].str[:2] + "-" + rows["url"].str[-2:], utc=True)
    gap = (rows["timestamp"] - when).abs()
    dense = gap <= pd.Timedelta(days=16)
    # Near a report the pool is the reports of +-15 days; in the gaps, the nearest reports.
    assert dense.mean() > 0.5 and gap.max() < pd.Timedelta(days=60)


def test_second_version_by_canary_or_shadow(inputs, tmp_path):
    canary = tmp_path / "canary.jsonl"
    assert _simulate(inputs, canary, "--version-b", "1.5.0", "--threshold-b", "0.05",
                     "--switch", "2021-03-01", "--rollout", "canary", "--overlap-days", "28",
                     "--canary-share", "0.3") == 0
    log = pd.read_json(canary, lines=True)
    ts = pd.to_datetime(log["timestamp"], utc=True)
    during = (ts >= pd.Timestamp("2021-02-01", tz="UTC")) & (ts < pd.Timestamp("2021-03-01", tz="UTC"))
    assert set(log.loc[ts < pd.Timestamp("2021-02-01", tz="UTC"), "model_version"]) == {"1.4.0"}
    assert set(log.loc[ts >= pd.Timestamp("2021-03-01", tz="UTC"), "model_version"]) == {"1.5.0"}
    assert (log.loc[during, "model_version"] == "1.5.0").mean() == pytest.approx(0.3, abs=0.03)
    assert (log.loc[log["model_version"] == "1.5.0", "verdict"] == 1).all()  # threshold 0.05

    shadow = tmp_path / "shadow.parquet"
    assert _simulate(inputs, shadow, "--version-b", "1.5.0", "--threshold-b", "0.05",
                     "--switch", "2021-03-01", "--rollout", "shadow", "--overlap-days", "28") == 0
    log = pd.read_parquet(shadow)
    ts = pd.to_datetime(log["timestamp"], utc=True)
    during = (ts >= pd.Timestamp("2021-02-01", tz="UTC")) & (ts < pd.Timestamp("2021-03-01", tz="UTC"))
    both = log[during].groupby("model_version")["url"].apply(list)
    assert both["1.4.0"] == both["1.5.0"]  # the shadow scores exactly the same traffic


def test_simulated_canary_is_caught_by_the_monitor(inputs, tmp_path):
    """End to end: a canary with a different threshold is a version alert, not drift."""
    log = tmp_path / "log.csv.gz"
    assert _simulate(inputs, log, "--version-b", "1.5.0", "--threshold-b", "0.05",
                     "--switch", "2021-03-01", "--rollout", "canary", "--canary-share", "0.3") == 0
    params = tmp_path / "params.yaml"
    params.write_text("monitor:\n  alert:\n    min_rows: 300\n")
    out = tmp_path / "out"
    assert run_cli("monitor", "--log", log, "--out", out, "--params", params) == 3
    result = strict_json(out / "monitor.json")
    alerts = [c for c in result["comparisons"] if c["alert"]]
    assert alerts and {c["kind"] for c in alerts} == {"version"}
    assert {c["model_version"] for c in alerts} == {"1.5.0"}
    labelled = [w for w in result["windows"] if w.get("labelled_rows")]
    assert labelled and all(w["recall"] == 1.0 for w in labelled)  # labels logged for every row


def test_scores_are_the_client_detectors(inputs, tmp_path, small_onnx):
    """One copy of the scoring code: the simulator's scores are Detector's, for a real model;
    a log without verdicts is then flagged by the monitor at the release's threshold."""
    release = ms.make_release(tmp_path / "model-v2.1.0", "2.1.0", small_onnx, 0.75)
    log_path = tmp_path / "log.csv"
    assert _simulate(inputs, log_path, "--no-verdict", model=release / model_asset_name("2.1.0")) == 0
    log = pd.read_csv(log_path, dtype={"model_version": str})
    assert "verdict" not in log.columns and set(log["model_version"]) == {"2.1.0"}
    urls = log["url"].tolist()
    detector = Detector.from_path(release / model_asset_name("2.1.0"), allow_unverified=True)
    expected = detector.predict_proba(urls)[:, 1].astype(float).round(6)
    assert np.array_equal(log["score"].to_numpy(), expected)
    assert np.array_equal(log["score"].to_numpy(),
                          np.round([s.p_phishing for s in detector.score(urls)], 6))
    assert log["score"].nunique() > 100 and 0 < (log["score"] >= 0.75).mean() < 1  # a real model
    out = tmp_path / "out"
    params = tmp_path / "params.yaml"
    params.write_text("monitor:\n  alert:\n    min_rows: 300\n")
    assert run_cli("monitor", "--log", log_path, "--out", out, "--params", params,
                   "--release-dir", release, "--allow-unverified") in (0, 3)  # a local, unsigned build
    result = strict_json(out / "monitor.json")
    assert result["input"]["rows_rejected"] == 0
    assert result["input"]["thresholds"] == {"2.1.0": {"threshold": 0.75, "source": "--release-dir",
                                                       "release_dir": str(release), "verified": False}}
    flagged = sum(w["flagged_ratio"] * w["rows"] for w in result["windows"]) / len(log)
    assert flagged == pytest.approx((log["score"] >= 0.75).mean())


def test_a_model_that_does_not_verify_is_not_simulated(inputs, tmp_path, capsys):
    release = tmp_path / "model-v1.4.0"
    ms.make_release(release, "1.4.0", ms.tiny_onnx_bytes(), 0.5)
    ms.tamper_threshold(release, 0.01)
    assert _simulate(inputs, tmp_path / "x.csv", model=release / model_asset_name("1.4.0")) == 1
    assert "manifest.json" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


def test_missing_inputs_are_reported(inputs, tmp_path, capsys):
    assert run_cli("simulate-traffic", "--model", tmp_path / "none.onnx",
                   "--phish", inputs["phish"], "--legit", inputs["legit"],
                   "--out", tmp_path / "x.csv") == 1
    assert "none.onnx not found" in capsys.readouterr().err
    bare = ms.tiny_onnx_model(tmp_path / "bare.onnx")  # no manifest beside it: no threshold
    assert run_cli("simulate-traffic", "--model", bare, "--phish", inputs["phish"],
                   "--legit", inputs["legit"], "--out", tmp_path / "x.csv") == 1
    err = capsys.readouterr().err
    assert "UNVERIFIED" in err and "no threshold for version A" in err
