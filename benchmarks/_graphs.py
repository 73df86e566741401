"""ONNX graphs the serving sections time: each member converted alone, this checkout's export, graph facts."""
from __future__ import annotations

import collections
import copy
from collections.abc import Callable
from typing import Any

import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType

from pipeline.training.features import feature_graph, merge_duplicate_nodes
from pipeline.training.onnx_export import (
    TARGET_OPSET,
    TfidfLogisticMember,
    _register_converters,
    to_onnx,
)


def convert(est: Any, classifier: Any = None) -> onnx.ModelProto:
    """``est`` (a member, or a transformer of one) as ONNX, with the pipeline's own converters
    (the TF-IDF member as the export converts it: one unit, see TfidfLogisticMember)."""
    _register_converters()
    options = {id(classifier): {"zipmap": False}} if classifier is not None else {}
    if classifier is not None and "tfidf" in getattr(est, "named_steps", {}):
        est, options = TfidfLogisticMember(est), {}
    onx = convert_sklearn(est, initial_types=[("url", StringTensorType([None, 1]))],
                          target_opset=TARGET_OPSET, options=options)
    merge_duplicate_nodes(onx.graph)
    return onx


def member_parts(model: Any) -> dict[str, tuple[bytes, Callable[..., Any]]]:
    """name -> (onnx bytes, sklearn callable) for each member and each member's feature stage alone."""
    text = model.named_estimators_["char_tfidf_lr"]
    lex = model.named_estimators_["lexical_trees"]
    return {
        "char_tfidf_lr": (convert(text, text["clf"]).SerializeToString(), text.predict_proba),
        "char_tfidf_lr: TF-IDF only (dense [N,V] output)": (convert(text["tfidf"]).SerializeToString(),
                                                            text["tfidf"].transform),
        "lexical_trees": (convert(lex, lex["clf"]).SerializeToString(), lex.predict_proba),
        "lexical_trees: features only": (feature_graph().SerializeToString(), lex["features"].transform),
    }


# --------------------------------------------------------------------------- graph structure
KEY_OPS = ("StringSplit", "RegexFullMatch", "Tokenizer", "TfIdfVectorizer", "ReduceSumSquare", "LinearClassifier",
           "Normalizer", "MatMul", "TreeEnsembleClassifier")


def graph_facts(onnx_bytes: bytes) -> dict[str, Any]:
    """Node counts of a graph, and how many of its nodes repeat an earlier node's computation."""
    onx = onnx.load_from_string(onnx_bytes)
    ops = collections.Counter(n.op_type for n in onx.graph.node)
    duplicates = merge_duplicate_nodes(copy.deepcopy(onx.graph))
    return {"nodes": len(onx.graph.node), "ops": {k: ops.get(k, 0) for k in KEY_OPS},
            "duplicate_nodes": sum(duplicates.values()), "duplicates_by_op": duplicates,
            "mb": round(len(onnx_bytes) / 1e6, 3)}


def export_bytes(model: Any, threshold: float = 0.5) -> bytes:
    """The model's ONNX export by this checkout's converters (the exact rewrites included)."""
    return to_onnx(model, threshold).SerializeToString()


def structure_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two graph_facts, one line per changed count."""
    lines = [f"nodes {before['nodes']} -> {after['nodes']}"]
    lines += [f"{op} nodes {before['ops'][op]} -> {after['ops'][op]}" for op in KEY_OPS
              if before["ops"][op] != after["ops"][op]]
    lines.append(f"nodes computing what an earlier node computed {before['duplicate_nodes']} -> "
                 f"{after['duplicate_nodes']}")
    return lines

