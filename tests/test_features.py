"""The lexical features: defined by ONNX ops, checked here against plain-Python meanings."""
import math
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features import FEATURE_NAMES, HIST_CHARS, lexical_features

HOSTILE = ["", " ", "a  b", "\t\t", "http://x.example/\x00nul", "😀" * 50, "http://bücher.example/",
           "http://xn--bcher-kva.example/", "http://" + "a" * 100_000, "\n\n", "%%%%", "&amp;" * 10]
url_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


def col(name):
    return FEATURE_NAMES.index(name)


def test_hostile_inputs_produce_finite_features():
    f = lexical_features(HOSTILE)
    assert f.shape == (len(HOSTILE), len(FEATURE_NAMES))
    assert np.isfinite(f).all()
    assert f[HOSTILE.index("http://" + "a" * 100_000), col("length")] == 100_007


@settings(max_examples=150, deadline=None)
@given(st.lists(url_text, min_size=1, max_size=8))
def test_features_match_python_meanings_and_do_not_depend_on_the_batch(urls):
    batch = lexical_features(urls)
    for i, url in enumerate(urls):
        alone = lexical_features([url])[0]
        assert np.array_equal(alone, batch[i]), "a row's features changed with its batch neighbours"
        assert alone[col("length")] == len(url)
        assert alone[col("n_digits")] == sum(c in string.digits for c in url)
        assert alone[col("n_upper")] == sum(c in string.ascii_uppercase for c in url)
        assert alone[col("n_dots")] == url.count(".")
        assert alone[col("n_not_printable_ascii")] == sum(c not in HIST_CHARS for c in url)
        assert alone[col("char_entropy")] >= -1e-6


def test_entropy_matches_shannon_for_ascii():
    url = "http://aaab.example/login"
    counts = {c: url.count(c) for c in set(url)}
    expected = -sum(n / len(url) * math.log2(n / len(url)) for n in counts.values())
    assert lexical_features([url])[0, col("char_entropy")] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("url,feature,value", [
    ("http://192.168.0.1/login", "ip_host", 1),
    ("http://user@10.1.2.3:8080/", "ip_host", 1),
    ("http://example.com/1.2.3.4", "ip_host", 0),
    ("http://a.b.c.example.com/x.y.z", "host_dots", 4),
    ("a.b/c.d.e.f.g", "host_dots", 1),
    ("http://paypal.secure.tk/", "suspicious_tld", 1),
    ("http://tk.example.com/", "suspicious_tld", 0),
    ("http://bit.ly/abc", "shortener_host", 1),
    ("http://host:8080/", "has_port", 1),
    ("http://host/path:8080", "has_port", 0),
    ("http://x/?a=1#f", "has_query", 1),
    ("http://x/#f?a", "has_query", 0),
    ("http://x.example/SignIn/verify-ACCOUNT", "n_keywords", 3),
    ("http://x.example/a%20b%2", "n_percent_escapes", 1),
    ("http://very-long-subdomain-name.some-host.example/", "long_host", 1),
])
def test_structural_features(url, feature, value):
    assert lexical_features([url])[0, col(feature)] == value
