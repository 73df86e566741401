"""Group-aware, label-stratified train/validation/test split.

Phishing kits reuse hosts and near-identical URLs; a random split would put the
same site on both sides and inflate every test metric. Whole groups (registered
domains) are assigned to one side, greedily filling each side's per-class quota.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")


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
