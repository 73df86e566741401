"""The released model, refitted on train + future (pure parts): its rows, its data's age, its facts.

The held-out model (stage ``train``) never sees the future split, so the future split and the
backtest can measure how a model does on months after its data. The product gets the *final
fit* instead (stage ``final-fit``): the same recipe on the future split too, so its data end in
the newest month the repository holds. Its threshold comes from ``operating-point`` (the same rule
on the validation split, which neither model trains on) and its test metrics from ``evaluate``
(the test split, which neither model trains on); :func:`released_model` puts the three together,
once, for the manifest, the model card and the review.
"""
from __future__ import annotations

import pandas as pd

TRAINED_ON = ("train", "future")
COLUMNS = ["url", "label", "source", "first_seen"]


def training_rows(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The final fit's rows, in a fixed order (train, then future), as each split stores them."""
    return pd.concat([splits[name][COLUMNS] for name in TRAINED_ON], ignore_index=True)


def data_freshness(rows: pd.DataFrame) -> dict:
    """The newest first-seen month the model trained on, overall and per dated source and class."""
    dated = rows[rows["first_seen"].astype(str) != ""]
    months = dated["first_seen"].astype(str).str[:7]
    per_source = {f"{source}/{'phishing' if label else 'legitimate'}": month
                  for (source, label), month in months.groupby([dated["source"], dated["label"]]).max().items()}
    phishing = months[dated["label"].to_numpy() == 1]
    return {"newest_first_seen_month": months.max() if len(months) else None,
            "newest_phishing_month": phishing.max() if len(phishing) else None,
            "newest_month_by_source": dict(sorted(per_source.items()))}


def describe_rows(rows: pd.DataFrame) -> dict:
    """reports/final_fit.json: what the released model trained on."""
    return {"splits": list(TRAINED_ON), "rows": len(rows), "phishing": int((rows["label"] == 1).sum()),
            "legitimate": int((rows["label"] == 0).sum()), **data_freshness(rows)}


def released_model(final_fit: dict | None, operating: dict | None, metrics: dict | None) -> dict | None:
    """{trained_on, operating_point, test, test_per_source} of the released model, from the three
    stage outputs that hold its parts; None for a commit from before final fits."""
    released_point = (operating or {}).get("released")
    released_metrics = (metrics or {}).get("released_model")
    if not (final_fit and released_point and released_metrics):
        return None
    return {"trained_on": final_fit["trained_on"], "operating_point": released_point,
            "test": released_metrics["test"], "test_per_source": released_metrics.get("test_per_source", {})}
