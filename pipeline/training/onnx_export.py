"""Converting the fitted ensemble to ONNX, and proving the conversion is faithful.

The graph takes one string column ``url`` and returns ``label`` (the operating
threshold applied inside the graph) and ``probabilities``. Conversion quirks are
fixed here, each next to the reason it exists (see README, design notes).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from phishing_url_detector import contract
from pipeline.training.features import (MS_DOMAIN, ONNX_OPSET, PAD, Skl2OnnxBuilder, emit_marked_host, emit_url_parts,
                               register_converter)
from pipeline.training.model import HostPathTfidf, as_input

TARGET_OPSET = {"": ONNX_OPSET, "ai.onnx.ml": 3}


def emit_char_tfidf(b, s: str, vectorizer) -> str:
    """[N,V] float: ``vectorizer``'s TF-IDF of string column ``s`` [N,1], as scikit-learn computes it.

    Characters are the tokens (``(?s).``, so newlines count); raw counts times idf, then L2
    normalisation (a row without any vocabulary n-gram stays all zeros).
    """
    by_length: dict[int, list[tuple[str, int]]] = {}
    for gram, column in vectorizer.vocabulary_.items():
        by_length.setdefault(len(gram), []).append((gram, int(column)))
    longest = max(by_length)
    pool, indexes, starts = [], [], []
    for n in range(1, longest + 1):
        starts.append(len(pool))
        for gram, column in sorted(by_length.get(n, [])):
            pool.extend(gram)
            indexes.append(column)
    chars = b.node("Tokenizer", [b.node("Reshape", [s, b.ints(-1)])], domain=MS_DOMAIN, mark=0,
                   mincharnum=1, pad_value=PAD, tokenexp="(?s).")
    counts = b.node("TfIdfVectorizer", [chars], mode="TF", min_gram_length=1, max_gram_length=longest,
                    max_skip_count=0, ngram_counts=starts, ngram_indexes=indexes, pool_strings=pool)
    weighted = b.node("Mul", [counts, b.const(vectorizer.idf_.astype(np.float32))])
    norm = b.node("Sqrt", [b.node("ReduceSumSquare", [weighted, b.ints(-1)], keepdims=1)])
    return b.node("Div", [weighted, b.node("Max", [norm, b.const(np.array([1e-30], dtype=np.float32))])])


def _host_path_tfidf_shape(operator) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, operator.raw_operator.vocabulary_size])


def _host_path_tfidf_converter(scope, operator, container) -> None:
    b = Skl2OnnxBuilder(scope, container)
    est = operator.raw_operator
    host, path = emit_url_parts(b, operator.inputs[0].full_name)
    columns = [emit_char_tfidf(b, emit_marked_host(b, host), est.host_),
               emit_char_tfidf(b, path, est.path_)]
    container.add_node("Concat", columns, [operator.outputs[0].full_name], axis=1,
                       name=scope.get_unique_operator_name("HostPathTfidf"))


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
    from skl2onnx import update_registered_converter
    from skl2onnx.common._container import ModelComponentContainer

    register_converter()
    update_registered_converter(HostPathTfidf, "PipelineHostPathTfidf", _host_path_tfidf_shape,
                                _host_path_tfidf_converter)
    if not hasattr(ModelComponentContainer.add_node, "__wrapped__"):
        ModelComponentContainer.add_node = _int_attributes(ModelComponentContainer.add_node)


def to_onnx(model, threshold: float) -> onnx.ModelProto:
    """The product model: sklearn ensemble + in-graph decision at ``threshold``."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    _register_converters()
    onx = convert_sklearn(model, name=contract.GRAPH_NAME,
                          initial_types=[(contract.INPUT_NAME, StringTensorType([None, 1]))],
                          target_opset=TARGET_OPSET, options={id(model): {"zipmap": False}})
    _apply_threshold(onx, threshold)
    onx.graph.name = contract.GRAPH_NAME
    onx.producer_name = "pipeline.training.onnx_export"
    onx.doc_string = "Phishing-URL detector; see manifest.json for the contract and provenance."
    _drop_unused_initializers(onx.graph)
    # skl2onnx collects opset domains in a set: order them so bytes do not depend on PYTHONHASHSEED.
    opsets = sorted(((o.domain, o.version) for o in onx.opset_import))
    del onx.opset_import[:]
    onx.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
    onnx.checker.check_model(onx)
    return onx


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
                         value=helper.make_tensor("t", TensorProto.FLOAT, [], [np.float32(threshold)])),
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
    import onnxruntime as ort

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
    runs = {}
    for batch in batch_sizes:
        if progress:
            progress(batch)
        labels, proba = onnx_predict(sess, x, batch)
        diff = np.abs(proba.astype(np.float64) - expected_p)
        disagree = np.flatnonzero(labels != expected_label)
        runs[str(batch)] = {"rows": int(len(x)), "label_agreement": float(1 - len(disagree) / max(len(x), 1)),
                            "label_disagreements": int(len(disagree)),
                            "max_abs_proba_diff": float(diff.max()) if len(diff) else 0.0,
                            "example_disagreements": [str(x[i]) for i in disagree[:5]]}
    return {"batch_sizes": {k: v for k, v in runs.items()},
            "label_agreement": min(r["label_agreement"] for r in runs.values()),
            "max_abs_proba_diff": max(r["max_abs_proba_diff"] for r in runs.values()),
            "rows": int(len(x))}


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
