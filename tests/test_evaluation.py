"""The metrics.json document: the future split by month, per-source gains, what each entry may hold."""
import numpy as np
import pandas as pd
import pytest

from pipeline.training.evaluation import (
    by_month,
    member_gain,
    newest_months,
    per_source,
    rates_entry,
)

PARAMS = {"fpr_points": [0.01], "bootstrap_resamples": 200, "seed": 1}


def test_rates_entry_holds_only_what_its_classes_define():
    assert set(rates_entry(np.array([1, 1]), np.array([0.9, 0.1]), 0.5)) == {
        "rows", "phishing", "legitimate", "phishing_share", "recall"}
    assert set(rates_entry(np.array([0, 0]), np.array([0.9, 0.1]), 0.5)) == {
        "rows", "phishing", "legitimate", "phishing_share", "fpr"}
    both = rates_entry(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.1]), 0.5)
    assert both["recall"] == 0.5 and both["fpr"] == 0.0 and both["roc_auc"] == 0.5 and both["precision"] == 1.0


def test_by_month_and_the_newest_months_headline():
    days = np.array(["2022-10-03", "2022-10-20", "2022-11-01", "2022-12-31", "2023-02-01", ""], dtype=object)
    y = np.array([1, 1, 1, 1, 0, 1])
    p = np.array([0.9, 0.1, 0.8, 0.7, 0.9, 0.9])
    table = by_month(days, y, p, 0.5)
    assert list(table) == ["2022-10", "2022-11", "2022-12", "2023-02"]
    assert table["2022-10"]["recall"] == 0.5 and table["2023-02"]["fpr"] == 1.0 and "recall" not in table["2023-02"]
    newest = newest_months(table, 2)
    assert newest == {"months": ["2022-11", "2022-12"], "phishing": 2, "recall": 1.0}
    assert newest_months({}, 3) == {"months": [], "phishing": 0, "recall": None}


def test_member_gain_uses_the_metric_the_classes_allow(rng):
    n = 3000
    y_phish = np.ones(n, dtype=int)
    weak, strong = rng.random(n), 0.3 + 0.7 * rng.random(n)
    ensemble = (weak + 3 * strong) / 4 + 0.1
    gain = member_gain(y_phish, ensemble, {"weak": weak, "strong": strong}, 0.5, {"weak": 0.5, "strong": 0.5},
                       fpr_points=[0.01], n=200, seed=1)
    assert gain["metric"] == "recall" and gain["best_member"] == "strong"
    assert gain["delta"]["value"] == pytest.approx((ensemble >= 0.5).mean() - (strong >= 0.5).mean())
    legit = member_gain(np.zeros(n, dtype=int), ensemble, {"weak": weak, "strong": strong}, 0.5,
                        {"weak": 0.5, "strong": 0.5}, [0.01], 200, 1)
    assert legit["metric"] == "specificity" and legit["best_member"] == "weak"


def test_per_source_reports_every_source_with_its_members():
    frame = pd.DataFrame({"source": ["a"] * 4 + ["b"] * 2, "label": [0, 1, 0, 1, 1, 1]})
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3])
    members = {"m1": p, "m2": 1 - p}
    out = per_source(frame, p, members, 0.5, {"m1": 0.5, "m2": 0.5}, PARAMS)
    assert set(out) == {"a", "b"}
    assert out["a"]["ensemble"]["roc_auc"] == 1.0 and out["a"]["ensemble_vs_best_member"]["metric"] == "roc_auc"
    assert out["b"]["members"]["m2"]["recall"] == 0.5 and "fpr" not in out["b"]["ensemble"]
