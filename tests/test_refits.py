"""Leave-one-source-out and the backtest: which rows each fold trains and tests on."""
import pandas as pd
import pytest

from pipeline.common import PipelineError
from pipeline.stages.backtest import check_cutoffs
from pipeline.training.refits import cap_rows, decay_summary, unseen
from pipeline.training.sources import raw_files, training_sources
from pipeline.training.splitting import month_start


def test_month_arithmetic():
    assert month_start("2021-06") == "2021-06-01"
    assert month_start("2021-12", 1) == "2022-01-01"
    assert month_start("2022-03", 3) == "2022-06-01"


def test_capped_samples_are_seeded_and_keep_the_order():
    frame = pd.DataFrame({"x": range(100)})
    a, b = cap_rows(frame, 10, seed=3), cap_rows(frame, 10, seed=3)
    assert list(a["x"]) == list(b["x"]) == sorted(a["x"]) and len(a) == 10
    assert list(cap_rows(frame, 10, seed=4)["x"]) != list(a["x"])
    assert cap_rows(frame, None, 1) is frame and cap_rows(frame, 200, 1) is frame


def test_test_rows_of_domains_the_fold_trained_on_are_left_out():
    trained = pd.DataFrame({"registered_domain": ["a.com", "b.com"]})
    test = pd.DataFrame({"registered_domain": ["a.com", "c.com", "b.com", "d.com"], "x": [1, 2, 3, 4]})
    assert list(unseen(test, trained)["x"]) == [2, 4]


def test_decay_summary_weights_cutoffs_by_their_phishing_rows():
    rows = [{"age_months": 1, "phishing": 100, "recall": 0.9}, {"age_months": 1, "phishing": 300, "recall": 0.8},
            {"age_months": 2, "phishing": 0, "fpr": 0.0}, {"age_months": 2, "phishing": 100, "recall": 0.7}]
    decay = decay_summary(rows)
    assert decay["1"] == {"cutoffs": 2, "phishing": 400, "recall": pytest.approx(0.825), "min_recall": 0.8,
                          "max_recall": 0.9}
    assert decay["2"]["cutoffs"] == 1 and decay["2"]["recall"] == 0.7


def test_a_backtest_cutoff_may_not_reach_into_the_future_split():
    check_cutoffs(["2022-06", "2022-09"], 3, "2022-10-01")
    with pytest.raises(PipelineError, match="2022-10 ends after the future split.s start 2022-10-01"):
        check_cutoffs(["2022-10"], 3, "2022-10-01")


def test_sources_config_is_checked_with_the_entry_named():
    params = {"data": {"sources": [{"name": "a", "files": ["x.csv.gz"]}, {"name": "b", "files": "y.csv.gz"}],
                       "out_of_source": {"name": "s", "files": ["z.csv.gz"]}}}
    with pytest.raises(PipelineError, match=r"data\.sources\[1\]: expected \{name: NAME, files: \[FILE"):
        training_sources(params)
    params["data"]["sources"][1]["files"] = ["y.csv.gz", "y2.csv.gz"]
    assert raw_files(params) == ["x.csv.gz", "y.csv.gz", "y2.csv.gz", "z.csv.gz"]
    params["data"]["sources"][1]["name"] = "a"
    with pytest.raises(PipelineError, match="unique"):
        training_sources(params)
