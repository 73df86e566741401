"""Windowing, comparisons and alerts on synthetic logs of known shape.

The statistical claims are checked by simulation over fixed seeds, so every
run gives the same numbers; the measured false-alarm rate and detection
delay are printed (``pytest -s``) and recorded as test properties.
"""
from __future__ import annotations

import copy
import math

import monitor_synthetic as ms
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pipeline.monitoring import analysis, config, windows
from pipeline.monitoring.config import MonitorParams

WEEK = pd.Timedelta(days=7)


def _alerts(result: dict, kind: str | None = None) -> list[dict]:
    return [c for c in result["comparisons"] if c["alert"] and (kind is None or c["kind"] == kind)]


def _redecide(result: dict, params: MonitorParams) -> bool:
    """Apply another alert rule to the same tests (BH does not depend on the gates)."""
    comparisons = copy.deepcopy(result["comparisons"])
    for c in comparisons:
        c["alert"], c["alert_reasons"] = False, []
    analysis.decide(comparisons, params)
    return any(c["alert"] for c in comparisons)


# -- windows and references -----------------------------------------------------------------
def test_windows_are_days_iso_weeks_or_calendar_months():
    ts = pd.Series(pd.to_datetime(["2024-02-29T23:59:59Z", "2024-03-03T12:00:00Z",
                                   "2024-03-04T00:00:00Z"], utc=True))
    weeks = windows.parse_window("7D").floor(ts)
    assert weeks.dt.strftime("%Y-%m-%d").tolist() == ["2024-02-26", "2024-02-26", "2024-03-04"]
    assert (weeks.dt.day_of_week == 0).all()  # Mondays
    months = windows.parse_window("1M")
    assert months.floor(ts).dt.strftime("%Y-%m-%d").tolist() == ["2024-02-01", "2024-03-01", "2024-03-01"]
    assert months.end(pd.Timestamp("2024-02-01", tz="UTC")) == pd.Timestamp("2024-03-01", tz="UTC")
    days = windows.parse_window("1d").floor(ts)
    assert days.dt.strftime("%Y-%m-%d").tolist() == ["2024-02-29", "2024-03-03", "2024-03-04"]
    assert windows.parse_window("2W") == windows.WindowSpec(14, "D")
    for bad in ("", "7", "0D", "1Y", "D7"):
        with pytest.raises(ValueError):
            windows.parse_window(bad)


def test_reference_range_end_date_is_inclusive():
    lo, hi = windows.parse_reference("2024-01-01..2024-01-31")
    assert lo == pd.Timestamp("2024-01-01", tz="UTC")
    assert hi == pd.Timestamp("2024-02-01", tz="UTC")
    assert windows.parse_reference("..2024-01-31T12:00:00+02:00") == (
        None, pd.Timestamp("2024-01-31T10:00:00", tz="UTC"))
    for bad in ("2024-01-01", "2024-02-01..2024-01-01"):
        with pytest.raises(ValueError):
            windows.parse_reference(bad)


def test_version_order_is_numeric():
    assert sorted(["1.10.0", "1.9.0", "1.9.0-rc1", "2.0.0"], key=analysis.version_key) == [
        "1.9.0", "1.9.0-rc1", "1.10.0", "2.0.0"]


def test_reference_range_selects_windows_and_others_are_compared():
    rows = ms.synthetic_log(3, windows=12, rows_per_window=800)
    result = analysis.analyse(rows, config.defaults(), reference_range=windows.parse_reference(
        "2024-01-15..2024-01-28"))
    ref = result["reference"]["per_version"]["1.0.0"]
    assert ref["windows"] == ["2024-01-15", "2024-01-22"] and ref["rows"] == 1600
    compared = [c["window"] for c in result["comparisons"]]
    assert len(compared) == 10 and "2024-01-08" in compared and "2024-01-15" not in compared
    assert sum(w["in_reference"] for w in result["windows"]) == 2


# -- false alarms ---------------------------------------------------------------------------
FA_SEEDS = 120
FA_WINDOWS = 16


@pytest.mark.slow  # a statistical simulation: 120 runs of the monitor
def test_stable_stream_false_alarm_rate_is_near_alpha(record_property):
    """With no change anywhere, the chance a run raises any alert is about alpha.

    ``pure`` switches off the effect-size gates so that only the statistics
    decide: Benjamini-Hochberg over the 2 x 12 p-values of a run should then
    fire in about ``alpha`` of the runs (at most alpha; the tests share a
    reference, which makes BH slightly conservative). With the default gates
    the operational rate can only be lower.
    """
    pure = config.defaults().replace(min_ratio_change=0.0, psi_alert=0.0)
    default = config.defaults()
    pure_alarms = default_alarms = windows_tested = 0
    for seed in range(FA_SEEDS):
        rows = ms.synthetic_log(seed, windows=FA_WINDOWS, rows_per_window=600)
        result = analysis.analyse(rows, pure)
        windows_tested += sum(c["status"] == "tested" for c in result["comparisons"])
        pure_alarms += result["alert"]
        default_alarms += _redecide(result, default)
    assert windows_tested == FA_SEEDS * (FA_WINDOWS - default.reference_windows)
    pure_rate, default_rate = pure_alarms / FA_SEEDS, default_alarms / FA_SEEDS
    record_property("false_alarm_rate_pure", pure_rate)
    record_property("false_alarm_rate_default", default_rate)
    print(f"\nfalse-alarm rate over {FA_SEEDS} stable runs of {FA_WINDOWS} weekly windows: "
          f"{pure_rate:.3f} (statistics only, alpha={pure.alpha}), {default_rate:.3f} (default gates)")
    sigma = math.sqrt(pure.alpha * (1 - pure.alpha) / FA_SEEDS)
    assert pure_rate <= pure.alpha + 3 * sigma
    assert pure_rate >= 0.01  # calibrated, not a test that can never fire
    assert default_rate <= pure_rate


# -- detection ------------------------------------------------------------------------------
DET_SEEDS = 24
SHIFT_FROM = 8
BASE, SHIFT, ROWS = 0.10, 0.03, 2000


def _per_window_power(params: MonitorParams, tests_in_run: int) -> float:
    """Normal-approximation power of one shifted window (Bonferroni bound on BH)."""
    n1, n2 = ROWS, ROWS * params.reference_windows
    p1, p2 = BASE + SHIFT, BASE
    pooled = (n1 * p1 + n2 * p2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se1 = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    cut = max(sps.norm.isf(params.alpha / tests_in_run / 2) * se0, params.min_ratio_change)
    return float(sps.norm.cdf((SHIFT - cut) / se1))


@pytest.mark.slow  # a statistical simulation: 24 runs, the monitor at each new week
def test_ratio_shift_is_detected_within_the_expected_windows(record_property):
    """+3 pp on a 10% flagged ratio, 2,000 rows a week: run the monitor as each week lands.

    Delay 1 means the alert fires on the first shifted window. Only alerts on
    shifted windows count: a false alarm on an earlier window is no detection.
    """
    params = config.defaults()
    shifted = (ms.START + SHIFT_FROM * WEEK).strftime("%Y-%m-%d")
    delays = []
    for seed in range(DET_SEEDS):
        rows = ms.synthetic_log(100 + seed, windows=SHIFT_FROM + 6, rows_per_window=ROWS,
                                ratio=BASE, shift=SHIFT, shift_from=SHIFT_FROM)
        delay = None
        for k in range(SHIFT_FROM, SHIFT_FROM + 6):
            result = analysis.analyse(rows[rows["timestamp"] < ms.START + (k + 1) * WEEK], params)
            alerts = [c for c in _alerts(result) if c["window"] >= shifted]
            if alerts:
                assert all(c["kind"] == "time" for c in alerts)
                assert all("flagged ratio +" in c["alert_reasons"][0] for c in alerts)
                delay = k - SHIFT_FROM + 1
                break
        delays.append(delay)
    assert None not in delays, f"shift missed within 6 windows: {delays}"
    tests_at_first = 2 * (SHIFT_FROM + 1 - params.reference_windows)
    power = _per_window_power(params, tests_at_first)
    first = sum(d == 1 for d in delays) / DET_SEEDS
    mean_delay = float(np.mean(delays))
    record_property("detection_first_window_rate", first)
    record_property("detection_mean_delay", mean_delay)
    print(f"\n+{SHIFT * 100:.0f} pp shift: detected in the first shifted window in {first:.0%} of "
          f"{DET_SEEDS} runs (normal-approximation power {power:.0%}); mean delay "
          f"{mean_delay:.2f} windows (geometric expectation {1 / power:.2f}); "
          f"max {max(delays)}; delays {np.bincount(delays).tolist()[1:]}")
    assert first >= power - 3 * math.sqrt(power * (1 - power) / DET_SEEDS)
    assert mean_delay <= 1 / power + 0.5
    assert max(delays) <= 6


# -- versions -------------------------------------------------------------------------------
def _canary_log(seed: int) -> pd.DataFrame:
    """1.0.0 flags 10%; 1.1.0 (a lower threshold) flags 16%: canary at 30% for 4 weeks, then all."""
    a, b = "1.0.0", "1.1.0"
    parts = [
        ms.synthetic_log(seed, windows=10, rows_per_window=2000, version=a),
        ms.synthetic_log(seed + 1, windows=4, rows_per_window=1400, version=a, start=ms.START + 10 * WEEK),
        ms.synthetic_log(seed + 2, windows=4, rows_per_window=600, version=b, ratio=0.16,
                         start=ms.START + 10 * WEEK),
        ms.synthetic_log(seed + 3, windows=6, rows_per_window=2000, version=b, ratio=0.16,
                         start=ms.START + 14 * WEEK),
    ]
    return pd.concat(parts, ignore_index=True).sort_values("timestamp", ignore_index=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_version_switch_is_attributed_to_the_version_not_to_time(seed):
    rows = _canary_log(10 * seed)
    result = analysis.analyse(rows, config.defaults())
    assert _alerts(result, "time") == []
    version_alerts = _alerts(result, "version")
    assert version_alerts and all(c["model_version"] == "1.1.0" for c in version_alerts)
    assert all(c["reference"]["model_version"] == "1.0.0" for c in version_alerts)
    pooled = [c for c in result["comparisons"] if c.get("pooled_windows")]
    assert len(pooled) == 1 and pooled[0]["pooled_windows"] == 4 and pooled[0]["alert"]
    assert pooled[0]["tests"]["ratio"]["test"].startswith("Cochran-Mantel-Haenszel")
    assert pooled[0]["tests"]["ratio"]["effect_size"]["ratio_diff"] == pytest.approx(0.06, abs=0.02)
    # 1.1.0's own reference is its first windows, not 1.0.0's period.
    assert result["reference"]["per_version"]["1.1.0"]["windows"][0] == "2024-03-11"

    # The same traffic without the version column looks like drift in time.
    blind = analysis.analyse(rows.assign(model_version="unknown"), config.defaults())
    assert _alerts(blind, "time")


def test_reference_version_sets_the_baseline():
    rows = _canary_log(0)
    result = analysis.analyse(rows, config.defaults(), reference_version="1.1.0")
    version = [c for c in result["comparisons"] if c["kind"] == "version"]
    assert version and all(c["model_version"] == "1.0.0" for c in version)
    assert all(c["tests"]["ratio"]["effect_size"]["ratio_diff"] < 0 for c in version if c["alert"])
    with pytest.raises(ValueError, match="not in the log"):
        analysis.analyse(rows, config.defaults(), reference_version="9.9.9")


def test_hard_switch_without_overlap_is_noted_not_alerted():
    a = ms.synthetic_log(5, windows=8, rows_per_window=1000, version="1.0.0")
    b = ms.synthetic_log(6, windows=8, rows_per_window=1000, version="2.0.0", ratio=0.2,
                         start=ms.START + 8 * WEEK)
    result = analysis.analyse(pd.concat([a, b], ignore_index=True), config.defaults())
    assert not result["alert"]
    assert not [c for c in result["comparisons"] if c["kind"] == "version"]
    assert len(result["notes"]) == 1 and "2.0.0 replaced 1.0.0" in result["notes"][0]


# -- small windows and labels ---------------------------------------------------------------
def test_too_few_rows_is_insufficient_data_and_never_alerts():
    rows = ms.synthetic_log(7, windows=10, rows_per_window=120, ratio=0.1, shift=0.4, shift_from=6)
    result = analysis.analyse(rows, config.defaults().replace(min_rows=500))
    assert not result["alert"]
    assert {w["status"] for w in result["windows"]} == {analysis.INSUFFICIENT}
    assert {c["status"] for c in result["comparisons"]} == {analysis.INSUFFICIENT}
    assert all(c["tests"] == {} for c in result["comparisons"])
    # The same shift with enough rows does alert.
    assert analysis.analyse(rows, config.defaults().replace(min_rows=100))["alert"]


def test_precision_and_recall_where_labels_exist():
    rows = ms.synthetic_log(8, windows=6, rows_per_window=600)
    week2 = (rows["timestamp"] >= ms.START + WEEK) & (rows["timestamp"] < ms.START + 2 * WEEK)
    labelled = rows.index[week2][:100]
    # Labels: true phishing = flagged rows except every 4th, plus 10 missed ones.
    truth = rows.loc[labelled, "verdict"].to_numpy().copy()
    flagged = np.flatnonzero(truth == 1)
    truth[flagged[::4]] = 0
    missed = np.flatnonzero(truth == 0)[:10]
    missed = [i for i in missed if i not in set(flagged[::4])]
    truth[missed] = 1
    rows.loc[labelled, "label"] = truth
    result = analysis.analyse(rows, config.defaults())
    with_labels = [w for w in result["windows"] if "precision" in w]
    assert [w["window"] for w in with_labels] == ["2024-01-08"]
    verdict = rows.loc[labelled, "verdict"].to_numpy()
    tp = int(((verdict == 1) & (truth == 1)).sum())
    assert with_labels[0]["labelled_rows"] == 100
    assert with_labels[0]["precision"] == pytest.approx(tp / verdict.sum())
    assert with_labels[0]["recall"] == pytest.approx(tp / truth.sum())


def test_window_summary_has_wilson_interval_and_quantiles():
    rows = ms.synthetic_log(9, windows=5, rows_per_window=1000)
    result = analysis.analyse(rows, config.defaults())
    w = result["windows"][0]
    assert w["rows"] == 1000 and w["flagged_ratio"] == w["flagged"] / 1000
    assert w["ratio_ci_low"] < w["flagged_ratio"] < w["ratio_ci_high"]
    assert list(w["score_quantiles"]) == ["0.05", "0.25", "0.5", "0.75", "0.95"]
    q = list(w["score_quantiles"].values())
    assert q == sorted(q)
