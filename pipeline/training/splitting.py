"""Group-aware, label-stratified train/validation/test split, plus a future split.

Phishing kits reuse hosts and near-identical URLs; a random split would put the
same site on both sides and inflate every test metric. Whole groups (registered
domains) are assigned to one side, greedily filling each side's per-class quota.

Time is the other leak: a model is always used on URLs newer than its training
data. Rows first seen on or after the cut-off form the ``future`` split, and a
group that has any future row never enters train or validation (its older rows
are test rows), so the future split stays group-disjoint from what the model
and its threshold saw.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")
FUTURE = "future"
ALL_SPLITS = (*SPLITS, FUTURE)


def group_split(labels: np.ndarray, groups: np.ndarray, test_fraction: float,
                validation_fraction: float, seed: int) -> np.ndarray:
    """Return the split name for each row; every group lands in exactly one split."""
    if not (0 < test_fraction < 1 and 0 < validation_fraction < 1
            and test_fraction + validation_fraction < 1):
        raise ValueError("split fractions must be in (0,1) and sum to less than 1, got "
                         f"test={test_fraction}, validation={validation_fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    frame = pd.DataFrame({"group": np.asarray(groups, dtype=object), "label": labels})
    counts = pd.crosstab(frame["group"], frame["label"]).reindex(columns=[0, 1], fill_value=0)
    rng = np.random.default_rng(seed)
    order = counts.index.to_numpy()[rng.permutation(len(counts))]
    sizes = counts.loc[order].sum(axis=1).to_numpy()
    order = order[np.argsort(-sizes, kind="stable")]  # big groups first, ties in seeded order

    fractions = np.array([1 - test_fraction - validation_fraction, validation_fraction, test_fraction])
    quota = fractions[:, None] * np.bincount(labels, minlength=2)[None, :].astype(float)
    filled = np.zeros_like(quota)
    assignment: dict = {}
    group_counts = counts.loc[order].to_numpy(dtype=float)
    for name, c in zip(order, group_counts):
        # Relative room left in each split for this group's class mix.
        room = ((quota - filled) / np.maximum(quota, 1.0)) @ (c / c.sum())
        side = int(np.argmax(room))
        filled[side] += c
        assignment[name] = SPLITS[side]
    return frame["group"].map(assignment).to_numpy(dtype=object)


def month_start(month: str, offset: int = 0) -> str:
    """'2021-06', 1 -> '2021-07-01'."""
    period = pd.Period(month, freq="M") + offset
    return f"{period.year:04d}-{period.month:02d}-01"


def future_start(labels: np.ndarray, first_seen: np.ndarray, months: int | None) -> str | None:
    """First day of the newest ``months`` calendar months that hold dated phishing rows (None: no future split).

    The window follows the data: each month a feed adds moves it by one, so the held-out model is
    always measured on the newest months, never on a fixed period that ages. It is anchored on the
    phishing feeds, because a legitimate list dated years ahead (Citizen Lab adds URLs to this day)
    would otherwise leave a future split with no phishing in it.
    """
    if not months:
        return None
    dated = np.asarray(first_seen, dtype=object)
    phishing = dated[(np.asarray(labels) == 1) & (dated != "")]
    if not len(phishing):
        return None
    return month_start(str(max(phishing))[:7], 1 - int(months))


def future_split_start(future: pd.DataFrame) -> str | None:
    """The first day of a future split's first month (prepare puts whole months in it)."""
    dated = future["first_seen"].astype(str)
    dated = dated[dated != ""]
    return month_start(dated.min()[:7]) if len(dated) else None


def time_aware_split(labels: np.ndarray, groups: np.ndarray, first_seen: np.ndarray, future_from: str | None,
                     test_fraction: float, validation_fraction: float, seed: int) -> np.ndarray:
    """Split names per row: ``future`` for rows first seen on/after ``future_from`` (ISO date),
    ``test`` for older rows of groups that recur in the future, :func:`group_split` for the rest."""
    groups = np.asarray(groups, dtype=object)
    first_seen = np.asarray(first_seen, dtype=object)
    split = np.full(len(groups), "", dtype=object)
    if future_from:
        is_future = (first_seen != "") & (first_seen >= str(future_from))
        split[is_future] = FUTURE
        recurring = pd.Series(groups).isin(set(groups[is_future])).to_numpy() & ~is_future
        split[recurring] = "test"
    rest = split == ""
    if rest.any():
        split[rest] = group_split(np.asarray(labels)[rest], groups[rest], test_fraction, validation_fraction, seed)
    return split
