"""McNemar's test, the verdict and its acceptance (pure, fast)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from pipeline import paths
from pipeline.review import stats
from pipeline.review.gather import ReviewError
from pipeline.review.settings import out_dir, review_params, tree_params
from pipeline.training.evaluation import rates_by
from pipeline.training.metrics import paired_bootstrap_delta

PARAMS = {"alpha": 0.05, "min_effect": {"accuracy": 0.002, "roc_auc": 0.002, "tpr_at_fpr": 0.01}}


def decisions(n_both, n_base_only, n_pr_only, n_neither):
    """y and two prediction vectors with the given concordance table."""
    y = np.ones(n_both + n_base_only + n_pr_only + n_neither, dtype=int)
    base = np.r_[np.ones(n_both + n_base_only), np.zeros(n_pr_only + n_neither)]
    pr = np.r_[np.ones(n_both), np.zeros(n_base_only), np.ones(n_pr_only), np.zeros(n_neither)]
    return y, base, pr


def test_mcnemar_counts_and_exact_p_value():
    y, base, pr = decisions(50, 12, 3, 5)
    m = stats.mcnemar(y, base, pr)
    assert (m["both_right"], m["base_only"], m["pr_only"], m["both_wrong"]) == (50, 12, 3, 5)
    assert m["discordant"] == 15 and m["rows"] == 70
    # Exact two-sided binomial: 2 * P(X <= 3), X ~ Bin(15, 1/2)
    from math import comb
    expected = 2 * sum(comb(15, k) for k in range(4)) / 2 ** 15
    assert m["p_value"] == pytest.approx(expected, rel=1e-12)
    assert m["effect"] == pytest.approx((3 - 12) / 70)


def test_mcnemar_matches_statsmodels():
    import statsmodels.stats.contingency_tables as sm
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    base = np.where(rng.random(400) < 0.85, y, 1 - y)
    pr = np.where(rng.random(400) < 0.9, y, 1 - y)
    m = stats.mcnemar(y, base, pr)
    table = [[m["both_right"], m["base_only"]], [m["pr_only"], m["both_wrong"]]]
    assert m["p_value"] == pytest.approx(sm.mcnemar(table, exact=True).pvalue, rel=1e-9)


def test_identical_models_have_p_one():
    y, base, _ = decisions(10, 0, 0, 4)
    m = stats.mcnemar(y, base, base)
    assert m["p_value"] == 1.0 and m["discordant"] == 0 and m["effect"] == 0


def test_mcnemar_by_class_splits_false_positives_from_misses():
    y = np.array([0, 0, 0, 1, 1, 1])
    base = np.array([0, 0, 0, 1, 1, 1])
    pr = np.array([1, 0, 0, 1, 1, 0])
    by = stats.mcnemar_by_class(y, base, pr)
    assert by["legitimate"]["base_only"] == 1 and by["phishing"]["base_only"] == 1
    assert by["legitimate"]["rows"] == 3


def test_verdict_scope_drops_urls_the_base_saw_when_enough_remain():
    y = np.array([0, 1] * 100)
    seen = np.zeros(200, dtype=bool)
    assert stats.verdict_scope(y, seen, 50) == {"rows": 200, "seen_by_base": 0, "restricted": False, "mask": None}
    seen[:60] = True
    scope = stats.verdict_scope(y, seen, 50)
    assert scope["restricted"] and scope["rows"] == 140 and scope["seen_by_base"] == 60
    assert (scope["mask"] == ~seen).all()
    too_few = stats.verdict_scope(y, seen, 150)
    assert not too_few["restricted"] and too_few["rows"] == 200 and too_few["mask"] is None
    one_class = stats.verdict_scope(y, np.r_[np.zeros(100, bool), np.ones(100, bool)] | (y == 1), 10)
    assert not one_class["restricted"]


def delta(value, low, high):
    return {"value": value, "ci95_low": low, "ci95_high": high}


NULL = {"roc_auc": delta(0.0, -0.001, 0.001), "tpr_at_fpr_0.01": delta(0.0, -0.01, 0.01)}


def mc(p, effect):
    return {"p_value": p, "effect": effect}


@pytest.mark.parametrize("mcnemar_result, deltas, outcome", [
    (mc(0.8, 0.0), NULL, stats.NO_CHANGE),
    # significant and large: worse / better
    (mc(1e-6, -0.03), NULL, stats.WORSE),
    (mc(1e-6, +0.03), NULL, stats.BETTER),
    # significant but below the minimum effect: no change
    (mc(0.01, -0.001), NULL, stats.NO_CHANGE),
    # large but not significant: no change
    (mc(0.2, -0.05), NULL, stats.NO_CHANGE),
    # an interval entirely below 0 and beyond the minimum effect: worse
    (mc(0.8, 0.0), {**NULL, "roc_auc": delta(-0.02, -0.03, -0.01)}, stats.WORSE),
    (mc(0.8, 0.0), {**NULL, "tpr_at_fpr_0.01": delta(0.05, 0.02, 0.08)}, stats.BETTER),
    # interval excludes 0 but the effect is tiny
    (mc(0.8, 0.0), {**NULL, "roc_auc": delta(-0.001, -0.0015, -0.0005)}, stats.NO_CHANGE),
    # mixed evidence: a significant loss anywhere makes it worse
    (mc(1e-6, +0.03), {**NULL, "roc_auc": delta(-0.02, -0.03, -0.01)}, stats.WORSE),
])
def test_verdict(mcnemar_result, deltas, outcome):
    verdict = stats.decide(mcnemar_result, deltas, [0.01], PARAMS)
    assert verdict.outcome == outcome
    assert {f.name for f in verdict.findings} == {"mcnemar", "roc_auc", "tpr_at_fpr_0.01"}
    if outcome != stats.NO_CHANGE:
        assert verdict.decisive and all(f.direction == outcome for f in verdict.decisive)
    assert verdict.fails_check == (outcome == stats.WORSE)


def test_verdict_on_real_bootstrap_of_a_crippled_model(rng):
    """A model with half the signal is worse by every test; the same model is never worse than itself."""
    n = 3000
    y = rng.integers(0, 2, n)
    noise = rng.normal(size=n)
    good = 1 / (1 + np.exp(-(noise + 2.0 * (2 * y - 1))))
    bad = 1 / (1 + np.exp(-(rng.normal(size=n) + 0.7 * (2 * y - 1))))
    for p_pr, outcome in ((bad, stats.WORSE), (good, stats.NO_CHANGE)):
        deltas = paired_bootstrap_delta(y, p_pr, good, 0.5, 0.5, [0.01], 100, 1)
        m = stats.mcnemar(y, good >= 0.5, p_pr >= 0.5)
        assert stats.decide(m, deltas, [0.01], PARAMS).outcome == outcome


def test_acceptance_by_label_or_param():
    assert stats.acceptance(["bug", "accept-regression"], "accept-regression", None) == "label `accept-regression`"
    assert stats.acceptance([], "accept-regression", "smaller model") == \
        "params.yaml `review.accept_regression`: “smaller model”"
    assert stats.acceptance(["other"], "accept-regression", None) is None
    assert stats.acceptance([], "accept-regression", "") is None
    verdict = stats.decide(mc(1e-6, -0.03), NULL, [0.01], PARAMS)
    verdict.accepted_by = "label `accept-regression`"
    assert verdict.outcome == stats.WORSE and not verdict.fails_check


def shipped_review() -> dict:
    return tree_params(REPO)["review"]


def test_review_thresholds_come_from_the_base_and_acceptance_from_the_pr():
    base = {"review": {"alpha": 0.01, "min_effect": {"roc_auc": 0.005}, "accept_regression": "base says"}}
    pr = {"review": {**shipped_review(), "alpha": 0.5, "accept_regression": "trades recall for size"}}
    merged, source = review_params(base, pr)
    assert merged["alpha"] == 0.01 and merged["min_effect"]["roc_auc"] == 0.005
    # a key an (older) base lacks comes from the PR's params.yaml: the code holds no copy of a value
    assert merged["min_effect"]["accuracy"] == shipped_review()["min_effect"]["accuracy"]
    assert merged["accept_regression"] == "trades recall for size"
    assert "base" in source
    merged, source = review_params({}, pr)
    assert merged["alpha"] == 0.5 and "PR" in source


def test_review_settings_missing_from_both_sides_are_an_error_not_a_silent_default():
    with pytest.raises(ReviewError, match="has a `review:` section"):
        review_params(None, None)
    with pytest.raises(ReviewError, match=r"lacks bootstrap_resamples, seed"):
        review_params({"review": {"alpha": 0.01, "min_effect": {}}}, {"review": {"alpha": 0.5}})


def test_a_value_changed_in_params_yaml_reaches_the_verdict_and_the_output_folder(tmp_path):
    """The same evidence (McNemar p = 0.1) is noise at the shipped alpha and a regression at alpha 0.2."""
    text = (REPO / paths.PARAMS).read_text()
    shipped = shipped_review()
    assert f"\n  alpha: {shipped['alpha']} " in text and shipped["alpha"] < 0.1  # review: is the one 2-space alpha
    (tmp_path / paths.PARAMS).write_text(text.replace(f"\n  alpha: {shipped['alpha']} ", "\n  alpha: 0.2 ")
                                         .replace(f"\n  out: {shipped['out']} ", "\n  out: build/elsewhere "))
    evidence = (mc(0.1, -0.03), NULL, [0.01])
    for params, outcome in ((tree_params(REPO), stats.NO_CHANGE), (tree_params(tmp_path), stats.WORSE)):
        settings, _ = review_params(params, params)
        assert stats.decide(*evidence, settings).outcome == outcome
    assert out_dir(tmp_path, tree_params(tmp_path), None) == tmp_path / "build" / "elsewhere"
    assert out_dir(REPO, tree_params(REPO), None) == REPO / paths.REVIEW
    assert out_dir(REPO, tree_params(REPO), "given") == Path("given")


def test_repository_params_define_the_review_section():
    review = shipped_review()
    assert 0 < review["alpha"] < 0.5
    assert set(review["min_effect"]) == {"accuracy", "roc_auc", "tpr_at_fpr"}
    assert review["accept_label"]


@pytest.mark.parametrize("p, text", [(1.0, "1"), (0.0491, "0.0491"), (0.05, "0.05"), (2.1e-5, "2.10e-05")])
def test_format_p(p, text):
    assert stats.format_p(p) == text


# -- per group and per month (the per-source and future-split tables) ---------------------------

def test_rates_by_group_has_only_the_rates_its_classes_allow():
    y = np.array([1, 1, 0, 0, 1, 1, 0])
    p = np.array([0.9, 0.2, 0.1, 0.8, 0.7, 0.6, 0.3])
    groups = ["jpcert", "jpcert", "citizenlab", "citizenlab", "ebbu2017", "ebbu2017", "ebbu2017"]
    rates = rates_by(groups, y, p, 0.5)
    assert list(rates) == ["citizenlab", "ebbu2017", "jpcert"]
    assert rates["jpcert"]["recall"] == 0.5 and "fpr" not in rates["jpcert"] and "roc_auc" not in rates["jpcert"]
    assert rates["citizenlab"]["fpr"] == 0.5 and "recall" not in rates["citizenlab"]
    assert set(rates["ebbu2017"]) >= {"recall", "fpr", "precision", "roc_auc"}
    assert rates["ebbu2017"]["rows"] == 3 and rates["ebbu2017"]["phishing"] == 2


def test_future_rates_per_month_and_the_newest_months():
    first_seen = ["2022-10-03", "2022-10-20", "2022-11-01", "2022-12-05", "2022-12-06", "2023-02-01"]
    y = np.array([1, 1, 1, 1, 0, 0])
    p = np.array([0.9, 0.1, 0.8, 0.9, 0.7, 0.1])
    rates = stats.future_rates(first_seen, y, p, 0.5, newest=2)
    assert list(rates["by_month"]) == ["2022-10", "2022-11", "2022-12", "2023-02"]
    assert rates["by_month"]["2022-10"]["recall"] == 0.5 and "fpr" not in rates["by_month"]["2022-10"]
    assert rates["by_month"]["2023-02"]["fpr"] == 0.0 and "recall" not in rates["by_month"]["2023-02"]
    # the newest months that hold phishing rows: 2023-02 has none
    assert rates["newest"] == {"months": ["2022-11", "2022-12"], "phishing": 2, "recall": 1.0}
    assert rates["overall"]["recall"] == 0.75 and rates["overall"]["fpr"] == 0.5
