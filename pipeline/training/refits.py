"""Refitting the training recipe on subsets of the data: leave-one-source-out and the backtest.

Both answer "how good is this recipe on data it has never seen?" without the
data we do not have: leave-one-source-out trains without a whole source and
tests on it; the backtest trains on everything up to a month and tests on the
months after it. Every fold uses the shipped recipe (params ``train``) and the
shipped threshold rule (params ``operating_point``) on a seeded sample of at
most ``max_train_rows`` rows, so folds differ in *which* data they see, not in
how much. Test rows whose registered domain the fold trained on are left out:
a site the model has seen is not "never seen".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.training.evaluation import rates_entry
from pipeline.training.metrics import source_safe_threshold
from pipeline.training.model import build_model, fit, phishing_proba, scores
from pipeline.training.splitting import month_start


def cap_rows(frame: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    """A seeded sample of at most ``max_rows`` rows, in the original order."""
    if not max_rows or len(frame) <= max_rows:
        return frame
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), max_rows, replace=False))
    return frame.iloc[keep]


def fit_fold(train: pd.DataFrame, validation: pd.DataFrame, params: dict, max_rows: int | None, seed: int):
    """(model, threshold, rows trained on): the recipe on a capped sample, thresholded on ``validation``."""
    train = cap_rows(train, max_rows, seed)
    model = fit(build_model(params["train"]), train["url"], train["label"].to_numpy())
    settings = params["operating_point"]
    threshold, _ = source_safe_threshold(validation["label"].to_numpy(), phishing_proba(model, validation["url"]),
                                         validation["source"].to_numpy(),
                                         settings["target_fpr"], settings["min_legitimate_per_source"])
    return model, threshold, train


def score_fold(model, threshold: float, test: pd.DataFrame) -> dict:
    """Ensemble rates at the fold's threshold, and each member's ROC AUC / recall for comparison."""
    if not len(test):
        return {"rows": 0}
    p, members = scores(model, test["url"])
    out = rates_entry(test["label"].to_numpy(), p, threshold)
    out["members"] = {name: {k: v for k, v in rates_entry(test["label"].to_numpy(), mp, threshold).items()
                             if k in ("roc_auc",)} for name, mp in members.items()}
    return out


def unseen(test: pd.DataFrame, trained_on: pd.DataFrame) -> pd.DataFrame:
    """The test rows whose registered domain the fold did not train on."""
    return test[~test["registered_domain"].isin(set(trained_on["registered_domain"]))]


# -- leave one source out -------------------------------------------------------------------------
def leave_one_source_out_fold(source: str, splits: dict[str, pd.DataFrame], params: dict, settings: dict) -> dict:
    """Train on every other source (train split), threshold on their validation rows, test on ``source``."""
    seed = int(settings["seed"])
    others = {name: frame[frame["source"] != source] for name, frame in splits.items()}
    model, threshold, trained_on = fit_fold(others["train"], others["validation"], params,
                                            settings.get("max_train_rows"), seed)
    held = pd.concat([frame[frame["source"] == source] for frame in splits.values()], ignore_index=True)
    test = unseen(held, trained_on)
    sampled = cap_rows(test, settings.get("max_test_rows"), seed)
    return {"source": source, "train_rows": len(trained_on), "source_rows": len(held),
            "excluded_seen_domain_rows": int(len(held) - len(test)), "threshold": threshold,
            **score_fold(model, threshold, sampled)}


# -- backtest -------------------------------------------------------------------------------------
def backtest_fold(cutoff: str, splits: dict[str, pd.DataFrame], params: dict, settings: dict) -> list[dict]:
    """Train on rows first seen up to the end of month ``cutoff`` (and undated rows); test month by
    month on the ``horizon_months`` after it. One row per (cutoff, model age in months)."""
    seed, horizon = int(settings["seed"]), int(settings["horizon_months"])
    end = month_start(cutoff, 1)

    def known(frame):
        return frame[(frame["first_seen"] == "") | (frame["first_seen"] < end)]

    model, threshold, trained_on = fit_fold(known(splits["train"]), known(splits["validation"]), params,
                                            settings.get("max_train_rows"), seed)
    later = pd.concat(list(splits.values()), ignore_index=True)
    later = unseen(later[(later["first_seen"] >= end) & (later["first_seen"] < month_start(cutoff, horizon + 1))],
                   trained_on)
    rows = []
    for age in range(1, horizon + 1):
        month_rows = later[later["first_seen"].str[:7] == month_start(cutoff, age)[:7]]
        rows.append({"cutoff": cutoff, "age_months": age, "month": month_start(cutoff, age)[:7],
                     "train_rows": len(trained_on), "threshold": threshold,
                     **score_fold(model, threshold, month_rows)})
    return rows


def decay_summary(rows: list[dict]) -> dict:
    """Mean recall (weighted by phishing rows) per model age, over all cut-offs."""
    out = {}
    for age in sorted({r["age_months"] for r in rows}):
        at_age = [r for r in rows if r["age_months"] == age and r.get("phishing")]
        phishing = sum(r["phishing"] for r in at_age)
        hits = sum(r["recall"] * r["phishing"] for r in at_age)
        out[str(age)] = {"cutoffs": len(at_age), "phishing": int(phishing),
                         "recall": hits / phishing if phishing else None,
                         "min_recall": min((r["recall"] for r in at_age), default=None),
                         "max_recall": max((r["recall"] for r in at_age), default=None)}
    return out
