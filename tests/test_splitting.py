import numpy as np
import pandas as pd
import pytest

from pipeline.training.dataset import prepare_dataset
from pipeline.training.hosts import host_of, registered_domain
from pipeline.training.splitting import group_split, time_aware_split


def synthetic_groups(rng, n_groups=3000):
    sizes = rng.zipf(1.8, n_groups).clip(1, 50)
    groups = np.repeat([f"g{i}" for i in range(n_groups)], sizes)
    group_label = rng.random(n_groups) < 0.45
    labels = np.repeat(group_label, sizes).astype(int)
    flip = rng.random(len(labels)) < 0.05
    return groups, np.where(flip, 1 - labels, labels)


def test_no_group_on_two_sides_and_classes_are_balanced(rng):
    groups, labels = synthetic_groups(rng)
    split = group_split(labels, groups, 0.2, 0.1, seed=1)
    frame = pd.DataFrame({"g": groups, "y": labels, "s": split})
    assert (frame.groupby("g")["s"].nunique() == 1).all()
    shares = frame.groupby("s")["y"].mean()
    assert shares.max() - shares.min() < 0.05
    sizes = frame["s"].value_counts(normalize=True)
    assert abs(sizes["test"] - 0.2) < 0.05 and abs(sizes["validation"] - 0.1) < 0.04


def test_split_is_deterministic_for_a_seed_and_changes_with_it(rng):
    groups, labels = synthetic_groups(rng)
    a = group_split(labels, groups, 0.2, 0.1, seed=7)
    assert (a == group_split(labels, groups, 0.2, 0.1, seed=7)).all()
    assert (a != group_split(labels, groups, 0.2, 0.1, seed=8)).any()


def test_bad_fractions_are_rejected():
    with pytest.raises(ValueError, match="split fractions"):
        group_split(np.array([0, 1]), np.array(["a", "b"]), 0.6, 0.5, seed=1)


def test_prepared_sample_has_no_host_or_domain_leakage(sample_frame):
    raw = sample_frame.assign(label=sample_frame["label"].astype(str), source="s", malformed="",
                              line=range(2, len(sample_frame) + 2))
    clean, _, report = prepare_dataset(raw, 2048, {"seed": 3, "test_fraction": 0.2,
                                                   "validation_fraction": 0.1, "group_by": "registered_domain",
                                                   "private_suffixes": True, "future_months": None})
    for key in ("host", "registered_domain"):
        sides = clean.groupby(key)["split"].nunique()
        assert (sides == 1).all(), f"{key} on two sides: {sides[sides > 1].index[:3].tolist()}"
    assert sum(s["rows"] for s in report["splits"].values()) == len(clean)


@pytest.mark.parametrize("url,host,domain", [
    ("http://www.Example.co.uk:8080/x", "www.example.co.uk", "example.co.uk"),
    ("paypal.com.secure.tk/login", "paypal.com.secure.tk", "secure.tk"),
    ("https://user:pw@10.0.0.1/a", "10.0.0.1", "10.0.0.1"),
    ("http://[2001:db8::1]/x", "[2001:db8::1]", "[2001:db8::1]"),
    ("", "", ""),
])
def test_host_and_registered_domain(url, host, domain):
    assert host_of(url) == host
    assert registered_domain(host) == domain


def test_future_rows_and_their_domains_never_reach_train_or_validation(rng):
    groups, labels = synthetic_groups(rng, 800)
    days = np.where(rng.random(len(groups)) < 0.3, "",
                    np.array([f"2022-{m:02d}-15" for m in rng.integers(1, 13, len(groups))], dtype=object))
    split = time_aware_split(labels, groups, days, "2022-10-01", 0.2, 0.1, seed=3)
    frame = pd.DataFrame({"g": groups, "day": days, "s": split})
    future = frame["s"] == "future"
    assert (frame.loc[future, "day"] >= "2022-10-01").all()
    assert ((frame["day"] >= "2022-10-01") & (frame["day"] != "")).sum() == future.sum()
    future_groups = set(frame.loc[future, "g"])
    assert not set(frame.loc[frame["s"].isin(["train", "validation"]), "g"]) & future_groups
    recurring = frame[frame["g"].isin(future_groups) & ~future]
    assert (recurring["s"] == "test").all()
    undated = frame[frame["day"] == ""]
    assert set(undated["s"]) <= {"train", "validation", "test"}


def test_without_a_cut_off_there_is_no_future_split(rng):
    groups, labels = synthetic_groups(rng, 300)
    days = np.full(len(groups), "2023-01-01", dtype=object)
    split = time_aware_split(labels, groups, days, None, 0.2, 0.1, seed=3)
    assert (split == group_split(labels, groups, 0.2, 0.1, seed=3)).all()


def test_private_suffixes_make_each_tenant_its_own_site():
    assert registered_domain("abc.duckdns.org") == "duckdns.org"
    assert registered_domain("abc.duckdns.org", private=True) == "abc.duckdns.org"
    assert registered_domain("x.y.github.io", private=True) == "y.github.io"
    assert registered_domain("www.example.co.uk", private=True) == "example.co.uk"
