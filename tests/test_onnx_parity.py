"""sklearn and onnxruntime must agree: on real URLs, hostile strings and random text."""
import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st

from phishing_url_detector import contract
from pipeline.training.model import as_input
from pipeline.training.onnx_export import io_signature, onnx_predict, parity_failures, parity_report, session, to_onnx

HOSTILE = ["", " ", "a  b", "a\t\t\tb", "http://x.example/a   b", "http://x.example/\x00nul\x00",
           "😀🎣" * 40, "http://bücher.example/", "http://xn--bcher-kva.example/",
           "http://" + "a" * 100_000, "line\nbreak", "http://x/" + "#" * 30, "#", "##", "&amp;&lt;"]
url_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


def sklearn_labels(model, urls, threshold):
    p = model.predict_proba(as_input(urls))[:, 1]
    return (p.astype(np.float32) >= np.float32(threshold)).astype(np.int64), p


def test_contract_signature_and_fixed_graph_name(small_onnx):
    onx = onnx.load_from_string(small_onnx)
    assert onx.graph.name == contract.GRAPH_NAME
    expected = {k: [{f: d[f] for f in ("name", "type", "shape")} for d in contract.CONTRACT[k]]
                for k in ("inputs", "outputs")}
    assert io_signature(onx) == expected


def test_parity_on_real_urls_at_several_batch_sizes(small_model, small_onnx, sample_frame):
    report = parity_report(small_model, small_onnx, sample_frame["url"], 0.5, [1, 2, 7, 1000])
    assert parity_failures(report, 1e-4) == []
    assert report["label_agreement"] == 1.0
    assert report["max_abs_proba_diff"] <= 1e-4


def test_hostile_inputs_never_crash_and_agree(small_model, small_onnx):
    sess = session(small_onnx)
    for batch in (1, len(HOSTILE)):
        labels, proba = onnx_predict(sess, HOSTILE, batch)
        expected_labels, expected_p = sklearn_labels(small_model, HOSTILE, 0.5)
        assert np.array_equal(labels, expected_labels)
        assert np.abs(proba[:, 1] - expected_p).max() <= 1e-4


def test_whitespace_runs_are_scored_literally_on_both_sides(small_model, small_onnx):
    """sklearn would collapse 'a  b' to 'a b'; our vectoriser and the ONNX Tokenizer both keep it."""
    urls = ["http://x.example/a  b", "http://x.example/a b", "http://x.example/a\t\tb"]
    _, expected = sklearn_labels(small_model, urls, 0.5)
    _, proba = onnx_predict(session(small_onnx), urls, 3)
    assert np.abs(proba[:, 1] - expected).max() <= 1e-4
    tfidf = small_model.named_estimators_["char_tfidf_lr"]["tfidf"]
    assert "  " in tfidf.path_.build_analyzer()("a  b") and "  " in tfidf.host_.build_analyzer()("^a  b$")


@settings(max_examples=60, deadline=None)
@given(st.lists(url_text, min_size=1, max_size=6), st.sampled_from([1, 2, 64]))
def test_random_text_agrees(small_model, small_onnx, urls, batch):
    labels, proba = onnx_predict(session(small_onnx), urls, batch)
    expected_labels, expected_p = sklearn_labels(small_model, urls, 0.5)
    assert np.abs(proba[:, 1] - expected_p).max() <= 1e-4
    assert np.array_equal(labels, expected_labels)


def test_threshold_is_applied_inside_the_graph(small_model, sample_frame):
    urls = sample_frame["url"][:300]
    high = session(to_onnx(small_model, 0.9).SerializeToString())
    low = session(to_onnx(small_model, 0.1).SerializeToString())
    labels_high, proba = onnx_predict(high, urls, 300)
    labels_low, _ = onnx_predict(low, urls, 300)
    assert np.array_equal(labels_high, (proba[:, 1] >= np.float32(0.9)).astype(np.int64))
    assert labels_low.sum() > labels_high.sum()


def test_conversion_is_byte_identical(small_model, small_onnx):
    assert to_onnx(small_model, 0.5).SerializeToString() == small_onnx


def test_parity_gate_reports_a_broken_model(small_model, small_onnx, sample_frame):
    """The gate must fail when the ONNX graph does not compute what sklearn computes."""
    onx = onnx.load_from_string(small_onnx)
    for node in onx.graph.node:
        if node.op_type == "Tokenizer":
            for attr in node.attribute:
                if attr.name == "pad_value":
                    attr.s = b"a"  # a real character: n-grams now depend on padding
    report = parity_report(small_model, onx.SerializeToString(), sample_frame["url"][:400], 0.5, [1, 400])
    problems = parity_failures(report, 1e-4)
    assert problems and any("batch 400" in p for p in problems)
