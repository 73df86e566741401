"""Pure data preparation: raw frames in, clean split frames and a data report out."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.training.hosts import host_of, registered_domain
from pipeline.training.splitting import (
    ALL_SPLITS,
    FUTURE,
    future_start,
    time_aware_split,
)
from pipeline.training.validation import validate

CLASS_NAMES = {0: "legitimate", 1: "phishing"}
_WWW = r"^(?:[a-zA-Z][a-zA-Z0-9+.\-]*://)?www\."


def subsample(frame: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Seeded subsample that keeps the original row order (for quick experiments and tests)."""
    if fraction >= 1.0:
        return frame
    keep = np.random.default_rng(seed).random(len(frame)) < fraction
    return frame[keep]


def format_shares(urls: pd.Series) -> dict:
    """Shares of the format artefacts that flip between sources (see DATASHEET), on raw URLs."""
    urls = urls.astype(str)
    if not len(urls):
        return {"https": None, "www": None, "html_entity_amp": None}
    return {"https": round(float(urls.str.lower().str.startswith("https://").mean()), 4),
            "www": round(float(urls.str.contains(_WWW, regex=True).mean()), 4),
            "html_entity_amp": round(float(urls.str.contains("&amp;", regex=False).mean()), 4)}


def reason_kind(reason: str) -> str:
    """The reason without its row-specific detail (the text before the colon)."""
    return reason.split(":", 1)[0]


def _reason_counts(reasons: pd.Series) -> dict:
    kinds = reasons.map(reason_kind)
    return {k: int(v) for k, v in kinds.value_counts().sort_index().items()}


def source_report(raw: pd.DataFrame, clean: pd.DataFrame, quarantine: pd.DataFrame) -> dict:
    """Per source and class: raw and clean rows, date range, format shares, quarantine by reason.

    Rows whose label is not 0/1 have no class; they are counted under ``unlabelled``.
    """
    out: dict = {}
    for source in pd.unique(raw["source"]):
        raw_s, clean_s = raw[raw["source"] == source], clean[clean["source"] == source]
        quarantine_s = quarantine[quarantine["source"] == source]
        classes: dict[str, dict] = {}
        entry = {"raw_rows": len(raw_s), "clean_rows": len(clean_s), "classes": classes}
        for label, name in CLASS_NAMES.items():
            raw_c = raw_s[raw_s["label"] == str(label)]
            if not len(raw_c):
                continue
            clean_c = clean_s[clean_s["label"] == label]
            dated = clean_c.loc[clean_c["first_seen"] != "", "first_seen"]
            classes[name] = {
                "raw_rows": len(raw_c), "clean_rows": len(clean_c), "dated_rows": len(dated),
                "first_seen_min": dated.min() if len(dated) else None,
                "first_seen_max": dated.max() if len(dated) else None,
                **format_shares(raw_c["url"]),
                "quarantined": _reason_counts(quarantine_s.loc[quarantine_s["label"] == str(label), "reason"]),
                "clean_rows_by_month": {str(m): int(n) for m, n in dated.str[:7].value_counts().sort_index().items()},
            }
        unlabelled = quarantine_s[~quarantine_s["label"].isin(["0", "1"])]
        if len(unlabelled):
            entry["unlabelled_quarantined"] = _reason_counts(unlabelled["reason"])
        out[str(source)] = entry
    return out


def split_report(clean: pd.DataFrame) -> dict:
    out = {}
    for name in ALL_SPLITS:
        part = clean[clean["split"] == name]
        dated = part.loc[part["first_seen"] != "", "first_seen"]
        out[name] = {
            "rows": len(part),
            "phishing": int((part["label"] == 1).sum()),
            "legitimate": int((part["label"] == 0).sum()),
            "phishing_share": round(float(part["label"].mean()), 4) if len(part) else None,
            "registered_domains": int(part["registered_domain"].nunique()),
            "first_seen_min": dated.min() if len(dated) else None,
            "first_seen_max": dated.max() if len(dated) else None,
            "by_source": {str(s): int(n) for s, n in part.groupby("source").size().items()},
        }
    return out


def prepare_dataset(raw: pd.DataFrame, max_length: int, split_params: dict
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Validate, de-duplicate and split; returns (clean rows with a ``split`` column, quarantine, report)."""
    clean, quarantine = validate(raw, max_length)
    private = bool(split_params["private_suffixes"])
    clean["host"] = [host_of(u) for u in clean["url"]]
    clean["registered_domain"] = [registered_domain(h, private) for h in clean["host"]]
    group_key = split_params["group_by"]
    if group_key not in ("registered_domain", "host"):
        raise ValueError(f"params split.group_by must be 'registered_domain' or 'host', got {group_key!r}")
    future_from = future_start(clean["label"].to_numpy(), clean["first_seen"].to_numpy(),
                               split_params["future_months"])
    clean["split"] = time_aware_split(clean["label"].to_numpy(), clean[group_key].to_numpy(),
                                      clean["first_seen"].to_numpy(), future_from,
                                      split_params["test_fraction"], split_params["validation_fraction"],
                                      split_params["seed"])
    recurring = (clean["split"] == "test") & (clean["first_seen"] != "") & \
        clean[group_key].isin(set(clean.loc[clean["split"] == FUTURE, group_key]))
    report = {
        "sources": source_report(raw, clean, quarantine),
        "quarantined": len(quarantine),
        "quarantine_reasons": _reason_counts(quarantine["reason"]),
        "clean_rows": len(clean),
        "splits": split_report(clean),
        "group_by": group_key,
        "private_suffixes": private,
        "future_from": str(future_from) if future_from else None,
        "test_rows_of_groups_in_future": int(recurring.sum()),
    }
    return clean, quarantine, report


def prepare_out_of_source(raw: pd.DataFrame, max_length: int, training_urls: set[str]
                          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dated phishing stream for the recall-by-year check; never used for training."""
    clean, quarantine = validate(raw, max_length)
    undated = clean["first_seen"] == ""
    if undated.any():
        extra = clean[undated].assign(reason="bad date: the out-of-source stream needs a date on every row")
        quarantine = pd.concat([quarantine, extra[quarantine.columns]], ignore_index=True)
    clean = clean[~undated]
    clean = clean.assign(year=clean["first_seen"].str[:4].astype(np.int64))
    clean["seen_in_training"] = clean["url"].isin(training_urls)
    columns = ["url", "label", "first_seen", "year", "seen_in_training"]
    return clean[columns].reset_index(drop=True), quarantine
