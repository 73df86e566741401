"""Host and registered-domain extraction, offline.

The split groups URLs by registered domain so that no site is on both sides of
train/test. tldextract is pinned to its bundled Public Suffix List snapshot so
that results never depend on the network or on the day the pipeline ran.
"""
from __future__ import annotations

import re
from functools import lru_cache

import tldextract

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                 include_psl_private_domains=False)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"^(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)")


def host_of(url: str) -> str:
    """Lower-cased host (no scheme, userinfo, port, path); '' if there is none."""
    rest = _SCHEME.sub("", url.strip(), count=1)
    match = _HOST.match(rest)
    return match.group(1).lower().rstrip(".") if match else ""


@lru_cache(maxsize=None)
def registered_domain(host: str) -> str:
    """eTLD+1 of a host (``a.b.example.co.uk`` -> ``example.co.uk``); the host itself for IPs."""
    if not host:
        return ""
    parts = _EXTRACT.extract_str(host)
    if parts.domain and parts.suffix:
        return f"{parts.domain}.{parts.suffix}"
    return host
