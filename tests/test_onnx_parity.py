"""sklearn and onnxruntime must agree: on real URLs, hostile strings and random text."""
import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st

from phishing_url_detector import contract
from pipeline.training.model import as_input
from pipeline.training.onnx_export import (
    io_signature,
    onnx_predict,
    parity_failures,
    parity_report,
    session,
    to_onnx,
)

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
    # every third URL of the sample (~1,650, all five sources): batch size 1 is one session run a URL
    report = parity_report(small_model, small_onnx, sample_frame["url"][::3], 0.5, [1, 2, 7, 1000])
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


@settings(max_examples=25, deadline=None)
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


# -- the exact rewrites of the export ----------------------------------------------------------------
def test_no_node_is_computed_twice_and_the_url_is_split_once(small_onnx):
    import copy
    from collections import Counter

    from pipeline.training.features import merge_duplicate_nodes

    graph = onnx.load_from_string(small_onnx).graph
    ops = Counter(n.op_type for n in graph.node)
    assert merge_duplicate_nodes(copy.deepcopy(graph)) == {}  # nothing left to merge
    assert ops["StringSplit"] == 2  # one split after the scheme, one after www.: shared by both members
    # host and path: one character tokenization each (shared by the TF-IDF and the char statistics),
    # two regex tokenizations for the split, and one per regex count
    from pipeline.training.features import HOST_COUNTS, PATH_COUNTS

    assert ops["Tokenizer"] == 2 + 2 + len(HOST_COUNTS) + len(PATH_COUNTS)
    assert ops["LinearClassifier"] == 0 and ops["ReduceSumSquare"] == 0  # no dense normalised copies


def test_merge_duplicate_nodes_rewires_readers_and_keeps_outputs():
    from onnx import TensorProto, helper

    from pipeline.training.features import merge_duplicate_nodes

    nodes = [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Abs", ["x"], ["b"]),
             helper.make_node("Neg", ["a"], ["c"]), helper.make_node("Neg", ["b"], ["d"]),
             helper.make_node("Add", ["c", "d"], ["y"]), helper.make_node("Neg", ["x"], ["e"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    assert merge_duplicate_nodes(graph) == {"Abs": 1, "Neg": 1}  # the chain collapses; Neg(x) differs
    assert [list(n.input) for n in graph.node] == [["x"], ["a"], ["c", "c"], ["x"]]


def test_each_member_graph_matches_its_sklearn_member(small_model, sample_frame):
    """The TF-IDF member (dot/norm form) and the trees member, each converted alone."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is a folder of scripts
    from benchmarks._graphs import member_parts
    from benchmarks._onnx_timing import onnx_fn, ort_session

    urls = sample_frame["url"].to_numpy(dtype=object)[:600]
    for name, (onx, sklearn_fn) in member_parts(small_model).items():
        got = onnx_fn(ort_session(onx))(urls)[0]
        want = sklearn_fn(urls)
        want = want.toarray() if hasattr(want, "toarray") else want
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-5, name


def test_detector_returns_results_in_input_order(small_model, small_onnx, sample_frame, tmp_path, monkeypatch):
    """The Detector scores in URL-length order in sub-batches; every result lands at its own URL."""
    import warnings

    from phishing_url_detector import detector as detector_module

    path = tmp_path / "model.onnx"
    path.write_bytes(small_onnx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = detector_module.Detector.from_path(path, allow_unverified=True)
    monkeypatch.setattr(detector_module, "BATCH", 7)  # several sub-batches, each of mixed lengths
    urls = list(sample_frame["url"].iloc[:40]) + ["x" * 300, "", "http://a/", "ab"]
    scores = det.score(urls)
    assert [s.url for s in scores] == urls
    expected_labels, expected_p = sklearn_labels(small_model, [contract.normalise_url(u) for u in urls], 0.5)
    assert np.abs(np.array([s.p_phishing for s in scores]) - expected_p).max() <= 1e-4
    assert [s.label for s in scores] == list(expected_labels)
    alone = [det.predict_proba([u])[0, 1] for u in urls[:10]]
    assert np.allclose(alone, [s.p_phishing for s in scores[:10]], atol=1e-6)
