"""Pure data preparation: raw frames in, clean split frames and a data report out."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.hosts import host_of, registered_domain
from pipeline.splitting import SPLITS, group_split
from pipeline.validation import validate


def subsample(frame: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Seeded subsample that keeps the original row order (for quick experiments and tests)."""
    if fraction >= 1.0:
        return frame
    keep = np.random.default_rng(seed).random(len(frame)) < fraction
    return frame[keep]


def artefact_profile(frame: pd.DataFrame) -> dict:
    """Share of known format artefacts per class, measured on raw URLs (see DATASHEET)."""
    out = {}
    for label, part in frame.groupby("label"):
        urls = part["url"].astype(str)
        out[str(label)] = {
            "rows": int(len(part)),
            "https": round(float(urls.str.startswith("https://").mean()), 4),
            "www": round(float(urls.str.contains(r"^(?:[a-zA-Z]+://)?www\.", regex=True).mean()), 4),
            "html_entity_amp": round(float(urls.str.contains("&amp;", regex=False).mean()), 4),
        }
    return out


def prepare_dataset(raw: pd.DataFrame, max_length: int, split_params: dict
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Validate, de-duplicate and split; returns (clean rows with a ``split`` column, quarantine, report)."""
    clean, quarantine = validate(raw, max_length)
    clean["host"] = [host_of(u) for u in clean["url"]]
    clean["registered_domain"] = [registered_domain(h) for h in clean["host"]]
    group_key = split_params.get("group_by", "registered_domain")
    if group_key not in ("registered_domain", "host"):
        raise ValueError(f"params split.group_by must be 'registered_domain' or 'host', got {group_key!r}")
    clean["split"] = group_split(clean["label"].to_numpy(), clean[group_key].to_numpy(),
                                 split_params["test_fraction"], split_params["validation_fraction"],
                                 split_params["seed"])
    report = {
        "raw_rows": {s: int(n) for s, n in raw.groupby("source").size().items()},
        "raw_artefacts": artefact_profile(raw[raw["label"].isin(["0", "1"])].assign(
            label=lambda f: f["label"].astype(int))),
        "quarantined": int(len(quarantine)),
        "quarantine_reasons": _reason_counts(quarantine),
        "clean_rows": int(len(clean)),
        "splits": {
            name: {
                "rows": int((clean["split"] == name).sum()),
                "phishing": int(((clean["split"] == name) & (clean["label"] == 1)).sum()),
                "legitimate": int(((clean["split"] == name) & (clean["label"] == 0)).sum()),
                "phishing_share": round(float(clean.loc[clean["split"] == name, "label"].mean()), 4),
                "registered_domains": int(clean.loc[clean["split"] == name, "registered_domain"].nunique()),
            }
            for name in SPLITS
        },
        "group_by": group_key,
    }
    return clean, quarantine, report


def _reason_counts(quarantine: pd.DataFrame) -> dict:
    """Count quarantined rows per reason kind (the text before the colon)."""
    kinds = quarantine["reason"].str.split(":", n=1).str[0]
    return {k: int(v) for k, v in kinds.value_counts().sort_index().items()}


def prepare_out_of_source(raw: pd.DataFrame, max_length: int, training_urls: set[str]
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dated phishing stream for the recall-by-year check; never used for training."""
    clean, quarantine = validate(raw, max_length)
    dates = pd.to_datetime(clean["date"], utc=True, errors="coerce", format="mixed")
    bad_date = dates.isna()
    if bad_date.any():
        extra = clean[bad_date].assign(reason="bad date: not a parseable timestamp")
        quarantine = pd.concat([quarantine, extra[quarantine.columns.intersection(extra.columns)]],
                               ignore_index=True)
    clean = clean[~bad_date].assign(year=dates[~bad_date].dt.year.astype(np.int64))
    clean["seen_in_training"] = clean["url"].isin(training_urls)
    return clean[["url", "label", "date", "year", "seen_in_training"]].reset_index(drop=True), quarantine
