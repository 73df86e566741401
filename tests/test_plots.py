"""Plots render whatever the labels hold: month and cut-off names are data, and '$' starts mathtext."""
from pipeline.training.plots import backtest_png, future_by_month_png


def test_future_by_month_renders_with_missing_rates_and_hostile_labels(tmp_path):
    table = {"2022-10": {"rows": 3, "phishing": 3, "legitimate": 0, "recall": 0.5},
             "$\\x$": {"rows": 2, "phishing": 0, "legitimate": 2, "fpr": 0.5}}
    future_by_month_png(table, tmp_path / "f.png", 0.01)
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")


def test_backtest_plot_renders_with_an_age_without_phishing(tmp_path):
    rows = [{"cutoff": "$\\x$", "age_months": 1, "recall": 0.9}, {"cutoff": "$\\x$", "age_months": 2}]
    decay = {"1": {"recall": 0.9}, "2": {"recall": None}}
    backtest_png(rows, decay, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes().startswith(b"\x89PNG")
