"""Pure statistics of the monitoring: each checked against an independent computation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pipeline.monitoring import stats


def test_wilson_interval_matches_the_closed_form():
    x, n, z = 10, 100, sps.norm.ppf(0.975)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = stats.wilson_interval(x, n)
    assert low == pytest.approx(centre - half, abs=1e-12)
    assert high == pytest.approx(centre + half, abs=1e-12)


def test_wilson_interval_stays_inside_0_1_at_the_edges():
    low, high = stats.wilson_interval(0, 50)
    assert low == pytest.approx(0, abs=1e-12) and 0 < high < 0.1
    low, high = stats.wilson_interval(50, 50)
    assert 0.9 < low < 1 and high == pytest.approx(1)
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))


def test_two_proportion_z_squared_is_the_uncorrected_chi_square():
    x1, n1, x2, n2 = 130, 1000, 100, 1000
    result = stats.two_proportion_ztest(x1, n1, x2, n2)
    chi2, p, _, _ = sps.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
    assert result.statistic ** 2 == pytest.approx(chi2)
    assert result.p_value == pytest.approx(p)
    assert result.statistic > 0  # the sign says "more flagged than the reference"
    assert result.effect_size["ratio_diff"] == pytest.approx(0.03)
    assert result.effect_size["cohens_h"] == pytest.approx(
        2 * math.asin(math.sqrt(0.13)) - 2 * math.asin(math.sqrt(0.10)))


def test_two_proportion_degenerate_samples_are_not_significant():
    result = stats.two_proportion_ztest(0, 500, 0, 800)
    assert result.p_value == 1.0 and result.statistic == 0.0


def test_cmh_with_one_window_is_the_chi_square_and_removes_simpson_confounding():
    single = stats.cmh_test([(130, 1000, 100, 1000)])
    _, p, _, _ = sps.chi2_contingency([[130, 870], [100, 900]], correction=False)
    # CMH uses the n-1 variance; with one stratum of 2000 rows the p-values agree closely.
    assert single.p_value == pytest.approx(p, rel=0.01)
    # Version B is identical to A inside each window, but took most of its rows
    # from a window with a high base rate: pooling says "different", CMH does not.
    strata = [(90, 900, 10, 100), (20, 100, 180, 900)]
    pooled = stats.two_proportion_ztest(110, 1000, 190, 1000)
    stratified = stats.cmh_test(strata)
    assert pooled.p_value < 1e-6
    assert stratified.p_value > 0.5
    assert stratified.effect_size["ratio_diff"] == pytest.approx(0.0, abs=1e-12)


def test_ks_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.3, 1, 400)
    result = stats.ks_test(a, b)
    ref = sps.ks_2samp(a, b)
    assert result.statistic == pytest.approx(ref.statistic)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert result.effect_size["ks_d"] == result.statistic


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift():
    rng = np.random.default_rng(1)
    ref = rng.beta(1, 6, 20_000)
    same = stats.psi(rng.beta(1, 6, 20_000), ref)
    small = stats.psi(rng.beta(1.2, 6, 20_000), ref)
    large = stats.psi(rng.beta(3, 3, 20_000), ref)
    assert same < 0.01 < small < 0.2 < large


def test_psi_matches_the_formula_on_hand_made_bins():
    ref = np.repeat([0.1, 0.3, 0.6, 0.9], 25)  # ties: the quantile edges collapse to 4 bins
    cur = np.repeat([0.1, 0.3, 0.6, 0.9], [40, 30, 20, 10])
    expected = sum((c - 0.25) * math.log(c / 0.25) for c in (0.4, 0.3, 0.2, 0.1))
    assert stats.psi(cur, ref, bins=10) == pytest.approx(expected)


def test_benjamini_hochberg_matches_the_step_up_rule():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    rejected, adjusted = stats.benjamini_hochberg(p, 0.05)
    # Largest k with p_(k) <= k/m * alpha is k = 2.
    assert rejected.tolist() == [True, True] + [False] * 8
    m = len(p)
    manual = np.minimum.accumulate((p * m / np.arange(1, m + 1))[::-1])[::-1]
    assert adjusted == pytest.approx(np.minimum(manual, 1))


def test_benjamini_hochberg_ignores_untested_slots():
    rejected, adjusted = stats.benjamini_hochberg([0.001, math.nan, 0.5], 0.05)
    assert rejected.tolist() == [True, False, False]
    assert math.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.002)


def test_precision_recall_on_labelled_rows():
    verdict = np.array([1, 1, 1, 0, 0, 0])
    label = np.array([1, 1, 0, 1, 0, 0])
    out = stats.precision_recall(verdict, label)
    assert out == {"labelled_rows": 6, "precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3)}
    assert stats.precision_recall(np.array([0]), np.array([0]))["precision"] is None


# -- histogram versions: exactly the array statistics on scores rounded to 4 decimals ---------------
def _rounded_pair(seed: int, n1: int, n2: int, shift: int = 0):
    rng = np.random.default_rng(seed)
    b1 = np.clip(np.round(rng.beta(2, 5, n1) * 10_000) + shift, 0, 10_000).astype(int)
    b2 = np.clip(np.round(rng.beta(2, 5, n2) * 10_000), 0, 10_000).astype(int)
    return (np.bincount(b1, minlength=stats.GRID.size), np.bincount(b2, minlength=stats.GRID.size),
            stats.GRID[b1], stats.GRID[b2])


@pytest.mark.parametrize("n1,n2,shift", [(1, 1, 0), (7, 40, 0), (900, 2500, 150), (9_000, 10_000, 0),
                                         (12_000, 30_000, 0), (10_001, 50, 300), (40_000, 60_000, 25)])
def test_histogram_statistics_equal_the_array_statistics_on_rounded_scores(n1, n2, shift):
    """Both sides of scipy's exact/asymptotic KS switch (10,000 rows), ties, tiny samples."""
    h1, h2, x1, x2 = _rounded_pair(n1 + n2, n1, n2, shift)
    probs = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0, 1 / 3]
    assert stats.quantiles_hist(h1, probs) == stats.quantiles(x1, probs)
    assert stats.ks_test_hist(h1, h2) == stats.ks_test(x1, x2)
    for bins in (10, 20):
        assert stats.psi_hist(h1, h2, bins) == stats.psi(x1, x2, bins)


def test_histogram_statistics_with_all_scores_tied():
    one = np.zeros(stats.GRID.size, dtype=np.int64)
    one[4321] = 20_000
    _, h2, _, x2 = _rounded_pair(3, 10, 15_000)
    x1 = stats.expand(one)
    assert stats.quantiles_hist(one, [0.5]) == {"0.5": 0.4321}
    assert stats.ks_test_hist(one, h2) == stats.ks_test(x1, x2)
    assert stats.psi_hist(one, h2) == stats.psi(x1, x2) and stats.psi_hist(h2, one) == stats.psi(x2, x1)
    assert np.isnan(stats.psi_hist(np.zeros_like(one), one))
