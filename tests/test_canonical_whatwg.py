"""Duplicates and label conflicts are keyed on the WHATWG URL parse (issue 19, finding 8 / item 6)."""
from __future__ import annotations

import ada_url
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.training.canonical import canonical_url, href_key, legacy_key, with_scheme
from pipeline.training.ingest import label_conflicts, repository_keys
from pipeline.training.validation import validate

KEY = "http://shop.example.com/login"
# 13 spellings a browser loads as the same page; before the WHATWG key only case and the slash were caught.
SPELLINGS = [
    "HTTP://SHOP.EXAMPLE.COM/login",           # upper-case scheme and host
    "http://shop.example.com:80/login",        # the default port
    "http://shop.example.%63om/login",         # a percent-encoded unreserved character in the host
    "http://shop.example.com/./login",         # a '.' segment
    "http://shop.example.com/a/../login",      # a '..' segment
    "http://shop.example.com/%2e/login",       # a percent-encoded '.' segment
    "http:\\\\shop.example.com\\login",        # backslashes
    "http://ｓｈｏｐ.example.com/login",        # a full-width host (IDNA mapping)
    "http://shop.example.com./login",          # the host's trailing dot
    "http://shop.exa\tmple.com/lo\ngin",       # tab and newline, which the URL parser removes
    "http:shop.example.com/login",             # no slashes after a special scheme
    "shop.example.com/login",                  # no scheme: what the address bar loads (http://)
    "http://shop.example.com/login/#",         # a trailing slash and an empty fragment
]


def test_thirteen_spellings_of_one_url_are_one_key():
    assert len(set(SPELLINGS)) == 13
    assert {s: canonical_url(s) for s in SPELLINGS} == {s: KEY for s in SPELLINGS}


@pytest.mark.parametrize("a, b", [
    ("http://shop.example.com/login", "http://shop.example.com/logout"),            # another path
    ("http://shop.example.com/Login", "http://shop.example.com/login"),             # path case matters
    ("http://shop.example.com/?a=1&b=2", "http://shop.example.com/?b=2&a=1"),       # query order
    ("http://shop.example.com/login", "http://shop.example.net/login"),             # another host
    ("https://shop.example.com/login", "http://shop.example.com/login"),            # two origins
    ("http://shop.example.com:8080/login", "http://shop.example.com/login"),        # a non-default port
    ("http://paypal.com@evil.example/", "http://paypal.com/"),                      # userinfo is not the host
    ("http://shop.example.com/#top", "http://shop.example.com/"),                   # a fragment that is there
    ("shop.example.com/login", "https://shop.example.com/login"),                   # no scheme is http, not https
])
def test_urls_a_browser_loads_differently_stay_apart(a, b):
    assert canonical_url(a) != canonical_url(b)


def test_a_url_without_a_scheme_is_read_as_the_address_bar_reads_it():
    assert with_scheme("www.example.com/a") == "http://www.example.com/a"
    assert with_scheme("example.com:8080/a") == "http://example.com:8080/a"  # a host and port, not a scheme
    assert with_scheme("//example.com/a") == "http:////example.com/a"
    assert with_scheme("mailto:a@example.com") == "mailto:a@example.com"
    assert with_scheme("HTTPS://example.com") == "HTTPS://example.com"
    assert canonical_url("example.com:80") == canonical_url("http://EXAMPLE.com/") == "http://example.com"


def test_the_documented_cleaning_still_happens_before_the_parse():
    for spelling in ("http://shop.example.com/login&#8203;", " http://shop.example.com/login&#32;",
                     "http://shop.example.com/login?", "http://shop.example.com/login///"):
        assert canonical_url(spelling) == KEY
    assert canonical_url("http://p.example/?a=1&amp;b=2") == "http://p.example?a=1&b=2"  # the root is a trailing slash


def test_a_url_the_standard_cannot_parse_keeps_the_old_key():
    for url in ("http://a b.example/x/", "http://shop.example:99999/", "http://[::1/", ""):
        with pytest.raises(ValueError):
            ada_url.normalize_url(with_scheme(url))
        assert canonical_url(url) == legacy_key(url.strip())
    assert canonical_url("HTTP://A B.EXAMPLE./x/#") == "http://a b.example/x"


def test_opaque_urls_and_addresses_are_keyed_as_the_standard_serialises_them():
    assert canonical_url("javascript:alert(1)") == "javascript:alert(1)"
    assert canonical_url("http://0x7f.1/") == canonical_url("http://127.0.0.1:80/") == "http://127.0.0.1"
    assert canonical_url("http://[0:0::1]/a/") == "http://[::1]/a"
    assert canonical_url("http://user:pw@shop.example.com/login/") == "http://user:pw@shop.example.com/login"


URLISH = st.lists(st.sampled_from(list("ab.:/?#@[]%\\ 1-Xé\t&;") + ["%2e", "xn--", ":80", "&amp;"]),
                  max_size=30).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(URLISH, st.builds("http://{}".format, URLISH), st.text(max_size=30)))
def test_any_text_gets_a_key_without_an_exception(text):
    assert isinstance(canonical_url(text), str)


@settings(max_examples=500, deadline=None)
@given(st.builds("{}://{}".format, st.sampled_from(["http", "https", "ftp", "file", "hxxp", "ws"]), URLISH))
def test_the_split_of_the_serialised_url_agrees_with_the_parsers_own_components(text):
    try:
        parts = ada_url.parse_url(text)
    except ValueError:
        return
    user = parts["username"] + (f":{parts['password']}" if parts["password"] else "")
    if parts["href"].startswith(parts["protocol"] + "//"):
        expected = (f"{parts['protocol']}//{user + '@' if user else ''}{parts['hostname'].rstrip('.')}"
                    f"{':' + parts['port'] if parts['port'] else ''}{parts['pathname'].rstrip('/')}"
                    f"{parts['search']}{parts['hash']}")
    else:
        expected = f"{parts['protocol']}{parts['pathname']}{parts['search']}{parts['hash']}"
    assert href_key(parts["href"]) == expected


def _raw(urls, label, source):
    return pd.DataFrame({"source": source, "file": f"{source}.csv", "line": range(2, len(urls) + 2),
                         "url": urls, "label": label, "malformed": "", "first_seen": ""})


def test_prepare_quarantines_every_spelling_with_the_other_label_as_a_conflict():
    urls = [u for u in SPELLINGS if "\t" not in u]  # a control character is quarantined before the key
    raw = pd.concat([_raw([KEY], "1", "phish"), _raw(urls, "0", "legit"), _raw(["http://other.example/"], "0", "x")],
                    ignore_index=True)
    clean, quarantine = validate(raw, 2048)
    assert list(clean["url"]) == ["http://other.example/"]
    assert len(quarantine) == len(urls) + 1
    assert set(quarantine["reason"]) == {("conflicting labels: the same url is phishing at phish:2 and legitimate "
                                          "at legit:2")}


def test_ingest_lists_every_spelling_as_a_conflict_with_the_repository():
    known = repository_keys(_raw([KEY], "1", "jpcert"))
    batch = _raw(SPELLINGS, "0", "batch")
    conflicts, same = label_conflicts(batch, known)
    assert list(conflicts["url"]) == SPELLINGS and set(conflicts["other_source"]) == {"jpcert"} and same == 0
