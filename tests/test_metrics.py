import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from pipeline.training.metrics import (
    choose_threshold,
    headline_metrics,
    metrics_with_intervals,
    paired_bootstrap_delta,
    paired_rate_delta,
    source_safe_threshold,
    threshold_metrics,
)


def scored(rng, n=4000, signal=1.5, ties=None):
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + signal * (2 * y - 1))))
    return y, (np.round(p, ties) if ties else p)


@pytest.mark.parametrize("ties", [None, 2])
def test_point_metrics_equal_scikit_learn(rng, ties):
    y, p = scored(rng, ties=ties)
    m = headline_metrics(y, p, 0.5, [0.001, 0.01])
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert m["recall"] == threshold_metrics(y, p, 0.5)["recall"]
    fpr, tpr, _ = roc_curve(y, p)
    assert m["tpr_at_fpr_0.01"] == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.2]))
def test_threshold_meets_target_fpr_and_is_never_a_score(seed, target):
    y, p = scored(np.random.default_rng(seed), n=500, ties=2)
    t = choose_threshold(y, p, target)
    rates = threshold_metrics(y, p, t)
    assert rates["fpr"] <= target + 1e-12
    assert t not in set(p)
    # the lowest such threshold: any distinct score just below it breaks the target or changes nothing
    below = p[p < t]
    if len(below) and target > 0:
        assert threshold_metrics(y, p, below.max())["fpr"] > target


def test_threshold_needs_negatives():
    with pytest.raises(ValueError, match="no legitimate URLs"):
        choose_threshold(np.ones(5), np.linspace(0, 1, 5), 0.01)


def test_bootstrap_interval_brackets_the_point_and_narrows_with_data(rng):
    small = metrics_with_intervals(*scored(rng, n=400), 0.5, [0.01], 200, seed=1)
    large = metrics_with_intervals(*scored(rng, n=8000), 0.5, [0.01], 200, seed=1)
    for m in (small, large):
        assert m["roc_auc"]["ci95_low"] <= m["roc_auc"]["value"] <= m["roc_auc"]["ci95_high"]
    width = lambda m: m["roc_auc"]["ci95_high"] - m["roc_auc"]["ci95_low"]
    assert width(large) < width(small) / 2


def test_bootstrap_is_seeded(rng):
    y, p = scored(rng, n=1000)
    assert metrics_with_intervals(y, p, 0.5, [0.01], 50, 3) == metrics_with_intervals(y, p, 0.5, [0.01], 50, 3)


def test_paired_delta_of_a_model_with_itself_is_exactly_zero(rng):
    y, p = scored(rng)
    d = paired_bootstrap_delta(y, p, p, 0.5, 0.5, [0.01], 100, seed=2)
    assert all(v["value"] == v["ci95_low"] == v["ci95_high"] == 0 for v in d.values())


def test_paired_delta_detects_a_better_model(rng):
    y = rng.integers(0, 2, 3000)
    noise = rng.normal(size=3000)
    good = 1 / (1 + np.exp(-(noise + 2.0 * (2 * y - 1))))
    worse = 1 / (1 + np.exp(-(noise + rng.normal(size=3000) * 2 + 2.0 * (2 * y - 1))))
    d = paired_bootstrap_delta(y, good, worse, 0.5, 0.5, [0.01], 200, seed=2)
    assert d["roc_auc"]["ci95_low"] > 0


def test_source_safe_threshold_keeps_every_large_source_at_the_target(rng):
    # Source "hard" has legitimate URLs that score high: the pooled threshold would break its FPR.
    easy_y = np.r_[np.zeros(3000), np.ones(3000)]
    easy_p = np.r_[rng.random(3000) * 0.5, 0.5 + rng.random(3000) * 0.5]
    hard_y = np.r_[np.zeros(400), np.ones(400)]
    hard_p = np.r_[rng.random(400) * 0.9, 0.6 + rng.random(400) * 0.4]
    y, p = np.r_[easy_y, hard_y], np.r_[easy_p, hard_p]
    sources = np.array(["easy"] * 6000 + ["hard"] * 800)
    pooled = choose_threshold(y, p, 0.01)
    t, binding = source_safe_threshold(y, p, sources, 0.01, min_legitimate=200)
    assert binding == "hard" and t > pooled
    for name in ("easy", "hard"):
        mask = sources == name
        assert ((p[mask] >= t) & (y[mask] == 0)).sum() / (y[mask] == 0).sum() <= 0.01
    # A source with too few legitimate rows to estimate a 1% FPR does not bind.
    assert source_safe_threshold(y, p, sources, 0.01, min_legitimate=500) == (pooled, "all sources pooled")


def test_paired_rate_delta_interval_contains_the_difference(rng):
    new, old = rng.random(2000) < 0.9, rng.random(2000) < 0.8
    d = paired_rate_delta(new, old, 300, seed=1)
    assert d["value"] == pytest.approx(new.mean() - old.mean())
    assert d["ci95_low"] < d["value"] < d["ci95_high"] and d["ci95_low"] > 0
