"""What the model sees of a URL: defined by ONNX ops, checked here against plain-Python meanings."""
import math
import re
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.training.features import (
    FEATURE_NAMES,
    HIST_CHARS,
    lexical_features,
    url_parts,
)

HOSTILE = ["", " ", "a  b", "\t\t", "http://x.example/\x00nul", "😀" * 50, "http://bücher.example/",
           "http://xn--bcher-kva.example/", "http://" + "a" * 100_000, "\n\n", "%%%%", "&amp;" * 10,
           "www.", "http://", "://", "https://www.", "#", "?", "/", "a://b://c", "\u202eevil.com/gpj.exe"]
url_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
url_like = st.builds(lambda scheme, www, host, path: scheme + www + host + path,
                     st.sampled_from(["", "http://", "HTTPS://", "ftp://", "x-y.z://"]),
                     st.sampled_from(["", "www.", "WWW.", "www2."]),
                     st.text(alphabet=string.ascii_letters + string.digits + ".-_@:é", max_size=40),
                     st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))


def reference_parts(url: str) -> tuple[str, str]:
    """The plain-Python meaning of the URL-parts graph: scheme and a leading www. removed, then
    host = up to the first / ? #, path = the rest."""
    rest = url.split("://", 1)[1] if re.fullmatch(r"(?s)[A-Za-z][A-Za-z0-9+.\-]*://.*", url) else url
    rest = rest.removeprefix("www.")
    host = re.match(r"[^/?#]*", rest).group()
    return host, rest[len(host):]


def col(name):
    return FEATURE_NAMES.index(name)


def test_hostile_inputs_produce_finite_features():
    f = lexical_features(HOSTILE)
    assert f.shape == (len(HOSTILE), len(FEATURE_NAMES))
    assert np.isfinite(f).all()
    assert f[HOSTILE.index("http://" + "a" * 100_000), col("host_length")] == 100_000


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(url_text, url_like), min_size=1, max_size=8))
def test_parts_and_features_match_python_meanings_and_do_not_depend_on_the_batch(urls):
    hosts, paths = url_parts(urls)
    batch = lexical_features(urls)
    for i, url in enumerate(urls):
        host, path = reference_parts(url)
        assert (hosts[i], paths[i]) == ("^" + host + "$", path)
        alone = lexical_features([url])[0]
        assert np.array_equal(alone, batch[i]), "a row's features changed with its batch neighbours"
        for part, text in (("host", host), ("path", path)):
            assert alone[col(f"{part}_length")] == len(text)
            assert alone[col(f"{part}_digits")] == sum(c in string.digits for c in text)
            assert alone[col(f"{part}_upper")] == sum(c in string.ascii_uppercase for c in text)
            assert alone[col(f"{part}_dots")] == text.count(".")
            assert alone[col(f"{part}_not_printable_ascii")] == sum(c not in HIST_CHARS for c in text)
            assert alone[col(f"{part}_entropy")] >= -1e-6
        assert alone[col("host_vowels")] == sum(c in "aeiouAEIOU" for c in host)


@pytest.mark.parametrize("prefix", ["", "http://", "https://", "HTTP://", "https://www.", "www.", "ftp://www."])
def test_scheme_and_www_are_invisible_to_the_features(prefix):
    """Scheme and a leading www. flip meaning between sources: the model must not see them."""
    base = lexical_features(["paypal.com.secure-login.tk/webscr?cmd=_login"])
    assert np.array_equal(lexical_features([prefix + "paypal.com.secure-login.tk/webscr?cmd=_login"]), base)


def test_host_entropy_matches_shannon_for_ascii():
    host = "aaab.example"
    counts = {c: host.count(c) for c in set(host)}
    expected = -sum(n / len(host) * math.log2(n / len(host)) for n in counts.values())
    assert lexical_features([f"http://{host}/login"])[0, col("host_entropy")] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("url,feature,value", [
    ("http://192.168.0.1/login", "host_ip", 1),
    ("http://user@10.1.2.3:8080/", "host_ip", 1),
    ("http://example.com/1.2.3.4", "host_ip", 0),
    ("http://a.b.c.example.com/x.y.z", "host_n_labels", 5),
    ("http://paypal.secure.tk/", "host_suspicious_tld", 1),
    ("http://tk.example.com/", "host_suspicious_tld", 0),
    ("https://jhgfcv.h9zxdqg1e.cn/", "host_suspicious_tld", 1),
    ("https://jhgfcv.h9zxdqg1e.cn/", "host_n_consonant_runs", 2),   # jhgfcv, zxdqg
    ("https://jhgfcv.h9zxdqg1e.cn/", "host_n_digit_letter_switches", 2),   # h9, g1 (non-overlapping)
    ("http://bit.ly/abc", "host_shortener", 1),
    ("https://abc.duckdns.org/", "host_hosting", 1),
    ("https://sites.google.com/view/x", "host_hosting", 1),
    ("https://google.com/view/x", "host_hosting", 0),
    ("https://www.amazon.co.jp/", "host_brand_is_domain", 1),
    ("https://www.amazon.co.jp/", "host_second_level_suffix", 1),
    ("https://amazon.co.jp.xyz-login.cn/", "host_brand_is_domain", 0),
    ("https://amazon.co.jp.xyz-login.cn/", "host_n_brands", 1),
    ("http://host:8080/", "host_port", 1),
    ("http://host/path:8080", "host_port", 0),
    ("http://x/?a=1#f", "path_has_query", 1),
    ("http://x/#f?a", "path_has_query", 0),
    ("http://x.example/SignIn/verify-ACCOUNT", "path_n_keywords", 3),
    ("http://x.example/a%20b%2", "path_n_percent_escapes", 1),
    ("http://x.example/", "path_root_only", 1),
    ("http://x.example", "path_root_only", 1),
    ("http://x.example/a", "path_root_only", 0),
    ("http://x.example/a/b/c.php", "path_n_segments", 3),
])
def test_structural_features(url, feature, value):
    assert lexical_features([url])[0, col(feature)] == value


@pytest.mark.parametrize("texts", [[""], ["", ""], ["\x00"], ["a\x00b", ""], ["😀🎣x"], ["日本語のURL"],
                                   ["\n\r\t \x0b"], ["é\u0301", "\u200b\u202e"], ["a" * 500, "b", ""]])
def test_character_mode_tokenizer_equals_the_any_character_regex(texts):
    """char_tokens uses the Tokenizer's character mode; it must cut exactly where the regex (?s). does."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from pipeline.training.features import (
        MS_DOMAIN,
        ONNX_OPSET,
        PAD,
        _StandaloneBuilder,
        char_tokens,
    )

    b = _StandaloneBuilder()
    char_mode = char_tokens(b, "x")
    regex = b.node("Tokenizer", [b.node("Reshape", ["x", b.ints(-1)])], domain=MS_DOMAIN, mark=0, mincharnum=1,
                   pad_value=PAD, tokenexp="(?s).")
    b.nodes += [helper.make_node("Identity", [char_mode], ["a"]), helper.make_node("Identity", [regex], ["b"])]
    graph = helper.make_graph(b.nodes, "t", [helper.make_tensor_value_info("x", TensorProto.STRING, [None, 1])],
                              [helper.make_tensor_value_info(n, TensorProto.STRING, None) for n in "ab"])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET),
                                                    helper.make_opsetid(MS_DOMAIN, 1)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    a, r = sess.run(["a", "b"], {"x": np.array(texts, dtype=object).reshape(-1, 1)})
    assert a.shape == r.shape and (a == r).all()
    assert [[t for t in row if t != PAD] for row in a.reshape(len(texts), -1)] == [list(t) for t in texts]


def test_host_statistics_from_the_marked_host_tokens_are_exact():
    """The host statistics are computed from the tokens of '^host$' with the marks taken off again:
    a host that itself holds ^ and $ keeps its own."""
    f = lexical_features(["http://a^b$$c.example/x", "http://^$/", "http:///"])
    assert f[0, col("host_length")] == len("a^b$$c.example")
    assert f[1, col("host_length")] == 2 and f[2, col("host_length")] == 0
    assert f[1, col("host_not_printable_ascii")] == 0 and f[2, col("host_entropy")] == 0


def test_a_url_cannot_pass_a_token_off_as_padding():
    """Regex counts tell padding from matches by pad tokens no count pattern can match."""
    f = lexical_features(["http://<pad>.<pad#0>x.example/<pad#1>/<pad>", "http://a.b.example/"])
    assert f[0, col("host_n_labels")] == 2  # '<pad>' and '<pad' (the host ends at '#')
    assert f[1, col("host_n_labels")] == 3
    assert f[0, col("path_n_segments")] == 2 and f[0, col("path_n_digit_runs")] == 2
