"""Converting the fitted ensemble to ONNX, and proving the conversion is faithful.

The graph takes one string column ``url`` and returns ``label`` (the operating
threshold applied inside the graph) and ``probabilities``. Conversion quirks are
fixed here, each next to the reason it exists (see docs/design.md).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import Bunch

from phishing_url_detector import contract
from pipeline.training.features import (
    ONNX_OPSET,
    Skl2OnnxBuilder,
    emit_shared,
    merge_duplicate_nodes,
    register_converter,
)
from pipeline.training.model import HostPathTfidf, as_input

TARGET_OPSET = {"": ONNX_OPSET, "ai.onnx.ml": 3}


def emit_char_tfidf(b, chars: str, vectorizer) -> str:
    """[N,V] float: ``vectorizer``'s raw counts times idf for character tokens ``chars`` [N,T]
    (:func:`~pipeline.training.features.char_tokens`), in one TfIdfVectorizer (mode TFIDF, weights
    = idf: the same float32 product as counts * idf, one dense [N,V] pass less). Not normalised."""
    by_length: dict[int, list[tuple[str, int]]] = {}
    for gram, column in vectorizer.vocabulary_.items():
        by_length.setdefault(len(gram), []).append((gram, int(column)))
    longest = max(by_length)
    pool: list[str] = []
    indexes: list[int] = []
    starts: list[int] = []
    for n in range(1, longest + 1):
        starts.append(len(pool))
        for gram, column in sorted(by_length.get(n, [])):
            pool.extend(gram)
            indexes.append(column)
    idf = vectorizer.idf_.astype(np.float32)[np.asarray(indexes)]  # weights[i] is pool n-gram i's
    return b.node("TfIdfVectorizer", [chars], mode="TFIDF", min_gram_length=1, max_gram_length=longest,
                  max_skip_count=0, ngram_counts=starts, ngram_indexes=indexes, pool_strings=pool,
                  weights=[float(w) for w in idf])


def _l2_normalised(b, weighted: str) -> str:
    """Rows divided by their L2 norm, as sklearn's TfidfVectorizer(norm='l2'); all-zero rows stay zero."""
    return b.node("Div", [weighted, _safe_norm(b, weighted)])


def _safe_norm(b, weighted: str) -> str:
    """[N,1] max(||row||_2, 1e-30); the squares summed by Mul + ReduceSum, which onnxruntime
    runs about 1.5x (batch 1024) to 3x (batch 128) faster than ReduceSumSquare."""
    squares = b.node("Mul", [weighted, weighted])
    norm = b.node("Sqrt", [b.node("ReduceSum", [squares, b.ints(-1)], keepdims=1)])
    return b.node("Max", [norm, b.const(np.array([1e-30], dtype=np.float32))])


def _host_path_tfidf_shape(operator) -> None:
    # lazy: skl2onnx takes ~1.4 s; the manifest reads this module's constants without it
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, operator.raw_operator.vocabulary_size])


def _host_path_tfidf_converter(scope, operator, container) -> None:
    """HostPathTfidf alone (the benchmarks time it): the dense, normalised [N,V] TF-IDF."""
    b = Skl2OnnxBuilder(scope, container)
    est = operator.raw_operator
    shared = emit_shared(b, operator.inputs[0].full_name)
    columns = [_l2_normalised(b, emit_char_tfidf(b, shared["host_chars"], est.host_)),
               _l2_normalised(b, emit_char_tfidf(b, shared["path_chars"], est.path_))]
    container.add_node("Concat", columns, [operator.outputs[0].full_name], axis=1,
                       name=scope.get_unique_operator_name("HostPathTfidf"))


class TfidfLogisticMember(ClassifierMixin, BaseEstimator):
    """Export-only stand-in for the fitted ``Pipeline([('tfidf', HostPathTfidf), ('clf',
    LogisticRegression)])`` member, so it converts as one unit (see :func:`_tfidf_lr_converter`).
    A classifier to skl2onnx's parser; never fitted or pickled."""

    def __init__(self, pipeline=None):
        self.pipeline = pipeline

    @property
    def classes_(self):
        return self.pipeline.classes_


def _tfidf_lr_shape(operator) -> None:
    # lazy: skl2onnx, as above
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([n])
    operator.outputs[1].type = FloatTensorType([n, 2])


def _tfidf_lr_converter(scope, operator, container) -> None:
    """P = sigmoid(sum over host, path of (w . coef) / ||w|| + intercept), w = counts * idf.

    The same value as LogisticRegression on the L2-normalised, concatenated TF-IDF, but the dense
    [N,V] TF-IDF is read twice (a [V,1] MatMul and a sum of squares) instead of being multiplied,
    normalised into a copy, concatenated into another and fed to LinearClassifier.
    """
    b = Skl2OnnxBuilder(scope, container)
    tfidf, clf = operator.raw_operator.pipeline["tfidf"], operator.raw_operator.pipeline["clf"]
    if clf.coef_.shape[0] != 1 or len(clf.classes_) != 2:
        raise ValueError("the TF-IDF member must be a binary LogisticRegression")
    shared = emit_shared(b, operator.inputs[0].full_name)
    coef = clf.coef_[0].astype(np.float32)
    split = len(tfidf.host_.vocabulary_)
    terms = []
    for chars, vectorizer, part_coef in ((shared["host_chars"], tfidf.host_, coef[:split]),
                                         (shared["path_chars"], tfidf.path_, coef[split:])):
        weighted = emit_char_tfidf(b, chars, vectorizer)
        dot = b.node("MatMul", [weighted, b.const(part_coef.reshape(-1, 1))])
        terms.append(b.node("Div", [dot, _safe_norm(b, weighted)]))
    logit = b.node("Add", [b.node("Add", terms), b.const(clf.intercept_.astype(np.float32).reshape(1, 1))])
    p1 = b.node("Sigmoid", [logit])
    proba = b.node("Concat", [b.node("Sub", [b.const(np.ones((1, 1), dtype=np.float32)), p1]), p1], axis=1)
    container.add_node("Identity", [proba], [operator.outputs[1].full_name],
                       name=scope.get_unique_operator_name("TfidfLrProba"))
    container.add_node("ArgMax", [proba], [operator.outputs[0].full_name], axis=1, keepdims=0,
                       name=scope.get_unique_operator_name("TfidfLrLabel"))  # unread; pruned after export


def _int_attributes(add_node):
    """skl2onnx passes histogram-gradient-boosting node ids as numpy uint32, which protobuf 7
    rejects inside integer lists; hand them over as Python ints."""
    def wrapped(self, *args, **attrs):
        for key, value in attrs.items():
            if isinstance(value, list) and any(isinstance(v, np.integer) for v in value):
                attrs[key] = [int(v) for v in value]
        return add_node(self, *args, **attrs)
    wrapped.__wrapped__ = add_node
    return wrapped


def _register_converters() -> None:
    # lazy: skl2onnx, as above
    from skl2onnx import update_registered_converter
    from skl2onnx.common._container import ModelComponentContainer

    register_converter()
    update_registered_converter(HostPathTfidf, "PipelineHostPathTfidf", _host_path_tfidf_shape,
                                _host_path_tfidf_converter)
    update_registered_converter(TfidfLogisticMember, "PipelineTfidfLogisticMember", _tfidf_lr_shape,
                                _tfidf_lr_converter)
    if not hasattr(ModelComponentContainer.add_node, "__wrapped__"):
        ModelComponentContainer.add_node = _int_attributes(ModelComponentContainer.add_node)


def to_onnx(model, threshold: float) -> onnx.ModelProto:
    """The product model: sklearn ensemble + in-graph decision at ``threshold``."""
    # lazy: skl2onnx, as above
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    _register_converters()
    exported = _for_export(model)
    onx = convert_sklearn(exported, name=contract.GRAPH_NAME,
                          initial_types=[(contract.INPUT_NAME, StringTensorType([None, 1]))],
                          target_opset=TARGET_OPSET, options={id(exported): {"zipmap": False}})
    _apply_threshold(onx, threshold)
    merge_duplicate_nodes(onx.graph)
    onx.graph.name = contract.GRAPH_NAME
    onx.producer_name = "pipeline.training.onnx_export"
    onx.doc_string = "Phishing-URL detector; see manifest.json for the contract and provenance."
    _drop_unused_initializers(onx.graph)
    # skl2onnx collects opset domains in a set: order them so bytes do not depend on PYTHONHASHSEED.
    opsets = sorted((o.domain, o.version) for o in onx.opset_import)
    del onx.opset_import[:]
    onx.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
    onnx.checker.check_model(onx)
    return onx


def _for_export(model):
    """A shallow copy of the fitted ensemble whose TF-IDF member converts as one unit; the model
    itself is not touched."""
    members = [TfidfLogisticMember(est) if name == "char_tfidf_lr" else est
               for name, est in zip(model.named_estimators_, model.estimators_)]
    out = copy.copy(model)
    out.estimators_ = members
    out.named_estimators_ = Bunch(**dict(zip(model.named_estimators_, members)))
    return out


def _apply_threshold(onx: onnx.ModelProto, threshold: float) -> None:
    """Replace the argmax label with ``P(phishing) >= threshold`` as int64 [N]."""
    graph = onx.graph
    proba = next(o for o in graph.output if o.name == contract.PROBA_OUTPUT).name
    old_label = next(o for o in graph.output if o.name == contract.LABEL_OUTPUT)
    # The converter's own label output is renamed and dropped from the outputs.
    for node in graph.node:
        node.output[:] = [f"{n}_argmax" if n == old_label.name else n for n in node.output]
    graph.output.remove(old_label)
    graph.node.extend([
        helper.make_node("Constant", [], ["decision_threshold"], name="decision_threshold",
                         value=helper.make_tensor("t", TensorProto.FLOAT, [], [np.float32(threshold)])),  # type: ignore[list-item]  # the float32 itself: its exact bytes
        helper.make_node("Constant", [], ["phishing_column"], name="phishing_column",
                         value=helper.make_tensor("c", TensorProto.INT64, [1], [1])),
        helper.make_node("Gather", [proba, "phishing_column"], ["p_phishing_2d"], name="take_phishing", axis=1),
        helper.make_node("Squeeze", ["p_phishing_2d", "phishing_column"], ["p_phishing"], name="p_phishing"),
        helper.make_node("GreaterOrEqual", ["p_phishing", "decision_threshold"], ["is_phishing"], name="decide"),
        helper.make_node("Cast", ["is_phishing"], [contract.LABEL_OUTPUT], name="label_int64", to=TensorProto.INT64),
    ])
    graph.output.insert(0, helper.make_tensor_value_info(contract.LABEL_OUTPUT, TensorProto.INT64, [None]))
    _prune_unused(graph)


def _prune_unused(graph) -> None:
    """Drop nodes whose outputs nobody reads (the converter's argmax branch)."""
    while True:
        needed = {o.name for o in graph.output} | {i for n in graph.node for i in n.input}
        dead = [n for n in graph.node if not any(o in needed for o in n.output)]
        if not dead:
            return
        for n in dead:
            graph.node.remove(n)


def _drop_unused_initializers(graph) -> None:
    used = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def session(onnx_bytes: bytes, threads: int = 1):
    import onnxruntime as ort  # lazy: only the parity checks and the review run the graph

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def onnx_predict(sess, urls, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) from onnxruntime, fed ``batch_size`` rows at a time."""
    column = as_input(urls).reshape(-1, 1)
    labels, probas = [], []
    for start in range(0, len(column), batch_size):
        label, proba = sess.run([contract.LABEL_OUTPUT, contract.PROBA_OUTPUT],
                                {contract.INPUT_NAME: column[start:start + batch_size]})
        labels.append(label)
        probas.append(proba)
    return np.concatenate(labels), np.vstack(probas)


def parity_report(model, onnx_bytes: bytes, urls, threshold: float, batch_sizes, progress=None) -> dict:
    """Score the same URLs with sklearn and onnxruntime at several batch sizes and compare.

    The sklearn label is the same decision rule the graph applies
    (``float32(P) >= float32(threshold)``) so a disagreement is a real defect.
    """
    x = as_input(urls)
    expected_p = model.predict_proba(x).astype(np.float64)
    expected_label = (expected_p[:, 1].astype(np.float32) >= np.float32(threshold)).astype(np.int64)
    sess = session(onnx_bytes)
    runs: dict[str, dict[str, Any]] = {}
    for batch in batch_sizes:
        if progress:
            progress(batch)
        labels, proba = onnx_predict(sess, x, batch)
        diff = np.abs(proba.astype(np.float64) - expected_p)
        disagree = np.flatnonzero(labels != expected_label)
        runs[str(batch)] = {"rows": len(x), "label_agreement": float(1 - len(disagree) / max(len(x), 1)),
                            "label_disagreements": len(disagree),
                            "max_abs_proba_diff": float(diff.max()) if len(diff) else 0.0,
                            "example_disagreements": [str(x[i]) for i in disagree[:5]]}
    return {"batch_sizes": {k: v for k, v in runs.items()},
            "label_agreement": min(r["label_agreement"] for r in runs.values()),
            "max_abs_proba_diff": max(r["max_abs_proba_diff"] for r in runs.values()),
            "rows": len(x)}


def parity_failures(report: dict, tolerance: float) -> list[str]:
    """Human-readable reasons the parity gate fails (empty list = pass)."""
    problems = []
    for batch, run in report["batch_sizes"].items():
        if run["label_disagreements"]:
            problems.append(f"batch {batch}: {run['label_disagreements']} labels differ "
                            f"(e.g. {run['example_disagreements'][:2]})")
        if run["max_abs_proba_diff"] > tolerance:
            problems.append(f"batch {batch}: max |P_sklearn - P_onnx| = {run['max_abs_proba_diff']:.3g} "
                            f"> {tolerance:g}")
    return problems


def io_signature(onx: onnx.ModelProto) -> dict:
    """The graph's actual inputs/outputs in the contract's vocabulary (checked against it)."""
    def describe(value):
        t = value.type.tensor_type
        dims = [d.dim_param or (d.dim_value if d.dim_value else "N") for d in t.shape.dim]
        dims = ["N" if i == 0 else d for i, d in enumerate(dims)]
        return {"name": value.name, "type": f"tensor({onnx.helper.tensor_dtype_to_string(t.elem_type).split('.')[-1].lower()})",
                "shape": dims}
    return {"inputs": [describe(v) for v in onx.graph.input], "outputs": [describe(v) for v in onx.graph.output]}
