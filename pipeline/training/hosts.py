"""Host and registered-domain extraction, offline.

The split groups URLs by registered domain so that no site is on both sides of
train/test. tldextract is pinned to its bundled Public Suffix List snapshot so
that results never depend on the network or on the day the pipeline ran.

With ``private=True`` the list's private section counts too: ``duckdns.org``,
``github.io`` or ``firebaseapp.com`` are then suffixes, and each tenant
(``abc.duckdns.org``) is its own site. Without it, thousands of unrelated
phishing hosts of one dynamic-DNS provider form a single group, which either
lands wholly in one split or, spanning the future cut-off, is kept out of
training altogether.
"""
from __future__ import annotations

import re
from functools import cache

import tldextract

_EXTRACT = {private: tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None,
                                           include_psl_private_domains=private) for private in (False, True)}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"^(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)")


def host_of(url: str) -> str:
    """Lower-cased host (no scheme, userinfo, port, path); '' if there is none."""
    rest = _SCHEME.sub("", url.strip(), count=1)
    match = _HOST.match(rest)
    return match.group(1).lower().rstrip(".") if match else ""


@cache
def registered_domain(host: str, private: bool = False) -> str:
    """eTLD+1 of a host (``a.b.example.co.uk`` -> ``example.co.uk``); the host itself for IPs."""
    if not host:
        return ""
    parts = _EXTRACT[private].extract_str(host)
    if parts.domain and parts.suffix:
        return f"{parts.domain}.{parts.suffix}"
    return host
