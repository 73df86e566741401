"""Evaluation slices: where the model might be leaning on format artefacts."""
from __future__ import annotations

import re
from itertools import pairwise

import numpy as np
import pandas as pd

from pipeline.training.hosts import host_of

_SCHEME_WWW = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:www\.)?")
TLD_GROUPS = {"com": {"com"}, "org/net": {"org", "net"},
              "edu/gov": {"edu", "gov", "mil", "int"},
              "suspicious": {"tk", "ml", "ga", "cf", "gq", "xyz", "top", "pw", "cc", "info", "biz", "ru", "cn"}}


def strip_scheme_and_www(url: str) -> str:
    """The URL without the artefact-prone prefix (``https://www.`` etc.)."""
    return _SCHEME_WWW.sub("", url, count=1)


def tld_group(url: str) -> str:
    host = host_of(url)
    if not host:
        return "none"
    tld = host.rsplit(".", 1)[-1]
    if tld.isdigit() or host.startswith("["):
        return "ip"
    for name, members in TLD_GROUPS.items():
        if tld in members:
            return name
    return "country-code" if len(tld) == 2 else "other"


def slice_labels(urls: pd.Series, length_bins) -> dict[str, pd.Series]:
    """Slice family -> per-row slice name."""
    urls = urls.astype(str)
    scheme = np.where(urls.str.startswith("https://"), "https",
                      np.where(urls.str.startswith("http://"), "http", "no scheme"))
    www = np.where(urls.str.contains(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?www\.", regex=True), "www.", "no www.")
    edges = list(length_bins) + [np.inf]
    names = [f"{int(a)}-{int(b) - 1}" if np.isfinite(b) else f">={int(a)}" for a, b in pairwise(edges)]
    lengths = pd.cut(urls.str.len(), bins=edges, right=False, labels=names).astype(str)
    return {"scheme": pd.Series(scheme, index=urls.index), "www": pd.Series(www, index=urls.index),
            "tld": urls.map(tld_group), "length": lengths}
