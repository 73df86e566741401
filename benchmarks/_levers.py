"""Sections ``levers`` and ``candidates`` of bench.py: what makes serving faster, and at what accuracy."""
from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np

from benchmarks._common import LOG, Log
from benchmarks._graphs import convert, export_bytes, graph_facts, structure_changes
from benchmarks._inputs import Inputs
from benchmarks._onnx_timing import LEVELS, latency, onnx_fn, ort_session, throughput
from benchmarks._refits import Refits, Trees, Vocab, shared_refits, variant_label


def _speed(onnx_bytes: bytes, x: np.ndarray, cfg: dict[str, Any], level: str = "all") -> dict[str, Any]:
    """Batch-1 latency and batch throughput of a graph at one optimisation level (1 thread)."""
    f = onnx_fn(ort_session(onnx_bytes, level=level))
    b1 = latency(f, x, max(10, cfg["latency_calls"] // 2))
    tp = throughput(f, x, cfg["batch"], cfg["throughput_repeats"])
    return {"b1_p50_ms": b1["p50_ms"], "b1_p99_ms": b1["p99_ms"], "b1_cpu_p50_ms": b1["cpu_p50_ms"],
            "b1024_urls_per_s": tp["urls_per_s_best"], "b1024_urls_per_s_median": tp["urls_per_s_median"],
            "b1024_urls_per_cpu_s": tp["urls_per_cpu_s"]}


def run_levers(inp: Inputs, cfg: dict[str, Any], log: Log = LOG.info) -> dict[str, Any]:
    """Optimisation levels, the exact graph rewrites, intra-op threads, and (with the splits) model variants."""
    x = inp.urls.astype(object)
    out: dict[str, Any] = {"ort_optimisation_level": {}}
    # 1. onnxruntime graph optimisation level (same graph)
    for level in LEVELS:
        log(f"levers: graph optimisation level {level} ...")
        t = time.perf_counter()
        ort_session(inp.onnx_bytes, level=level)
        load = time.perf_counter() - t
        out["ort_optimisation_level"][level] = {"session_create_s": round(load, 3), **_speed(inp.onnx_bytes, x, cfg, level)}
    # 2. exact graph rewrites (no accuracy change; parity checked)
    log("levers: graph rewrites ...")
    opt_bytes = export_bytes(inp.model)
    before, after = graph_facts(inp.onnx_bytes), graph_facts(opt_bytes)
    p_ref = inp.model.predict_proba(x[:2048])
    p_opt = onnx_fn(ort_session(opt_bytes))(x[:2048])[0]
    out["graph_rewrites"] = {"changes": structure_changes(before, after), "given": before, "export": after,
                             "nodes_before": before["nodes"], "nodes_after": after["nodes"],
                             "max_abs_proba_diff_vs_sklearn": float(np.abs(p_opt - p_ref).max()),
                             "baseline": _speed(inp.onnx_bytes, x, cfg), "rewritten": _speed(opt_bytes, x, cfg)}
    # 3. threads for batch-1024
    out["intra_op_threads"] = {}
    for t in cfg["threads"]:
        f = onnx_fn(ort_session(opt_bytes, threads=t))
        out["intra_op_threads"][str(t)] = {"b1_p50_ms": latency(f, x, max(10, cfg["latency_calls"] // 2))["p50_ms"],
                                          **{k: v for k, v in throughput(f, x, cfg["batch"], cfg["throughput_repeats"]).items()
                                             if k.startswith("urls")}}
    if inp.train is None or inp.test is None:
        return out
    # 4. model levers: refit a member, accuracy on the test split, speed of the ONNX export
    out["model_variants"] = model_variants(inp, cfg, log)
    out["model_variants_note"] = ("accuracy on the test and future splits (ROC AUC, TPR at FPR=1e-2, the shipped soft "
                                  "vote; future = URLs first seen after the training data); "
                                  "speed of each variant's ONNX export with the graph rewrites, 1 thread, "
                                  "optimisation level all; fit s = fitting the refitted members")
    return out


def model_variants(inp: Inputs, cfg: dict[str, Any], log: Log = LOG.info) -> list[dict[str, Any]]:
    """Vocabulary sizes, tree counts/sizes, the TF-IDF member alone, and two cheaper combinations."""
    refits = shared_refits(inp)
    x = inp.urls.astype(object)
    shipped_vocab, shipped_trees = refits.shipped

    def row(label: str, vocab: Vocab | None = None, trees: Trees | None = None) -> dict[str, Any]:
        model, fit_s = refits.model(vocab, trees)
        onx = export_bytes(model)
        r = {"variant": label, "fit_s": round(fit_s, 1), **refits.accuracy(model),
             "onnx_mb": round(len(onx) / 1e6, 3), **_speed(onx, x, cfg)}
        log(f"levers: {label}: {r}")
        return r

    rows = [row("shipped model, rewritten graph")]
    vocabs: list[Vocab] = [tuple(v) for v in cfg["vocab_sizes"] if tuple(v) != shipped_vocab]
    trees: list[Trees] = [(t[0], t[1]) for t in cfg["tree_variants"] if tuple(t) != shipped_trees]
    rows += [row(variant_label(vocab=v), vocab=v) for v in vocabs]
    rows += [row(variant_label(trees=t), trees=t) for t in trees]
    rows.append(text_member_alone(refits, x, cfg))
    if vocabs and trees:  # the middle vocabulary with the middle and the smallest trees
        vocab = sorted(vocabs, key=sum)[len(vocabs) // 2]
        by_size = sorted(trees, key=lambda t: t[0] * t[1])
        for t in dict.fromkeys([by_size[len(by_size) // 2], by_size[0]]):
            rows.append(row(variant_label(vocab, t), vocab, t))
    return rows


def text_member_alone(refits: Refits, x: np.ndarray, cfg: dict[str, Any]) -> dict[str, Any]:
    """The member choice: the shipped TF-IDF member alone, its own (rewritten) ONNX graph."""
    text = refits.inp.model.named_estimators_["char_tfidf_lr"]
    onx = convert(text, text["clf"]).SerializeToString()
    return {"variant": "char_tfidf_lr alone (no trees)", "fit_s": 0.0,
            **refits.accuracy(refits.inp.model, member="char_tfidf_lr"),
            "onnx_mb": round(len(onx) / 1e6, 3), **_speed(onx, x, cfg)}


# --------------------------------------------------------------------------- section: candidates (interleaved A/B)
def run_candidates(inp: Inputs, cfg: dict[str, Any], log: Log = LOG.info) -> dict[str, Any]:
    """The shortlisted serving configurations, timed in interleaved rounds so a busy machine hits all alike."""
    refits = shared_refits(inp)
    shipped = refits.accuracy(inp.model)
    cands = {"shipped graph, shipped model": (inp.onnx_bytes, shipped),
             "rewritten graph, shipped model": (export_bytes(inp.model), shipped)}
    for vocab, trees in cfg["candidates"]:
        log(f"candidates: fitting {variant_label(vocab, trees)} ...")
        model, _ = refits.model(vocab, trees)
        cands[f"rewritten graph, {variant_label(vocab, trees)}"] = (export_bytes(model), refits.accuracy(model))
    samples = interleaved_timings({k: b for k, (b, _) in cands.items()}, inp.urls.astype(object), cfg, log)
    rows = []
    for k, (b, acc) in cands.items():
        s = samples[k]
        rows.append({"candidate": k, **acc, "onnx_mb": round(len(b) / 1e6, 3),
                     "b1_p50_ms": round(float(np.median(s["b1_p50_ms"])), 4),
                     "b1_p99_ms": round(float(np.median(s["b1_p99_ms"])), 4),
                     "b1_cpu_p50_ms": round(float(np.median(s["b1_cpu_p50_ms"])), 4),
                     "b1024_urls_per_s": round(float(np.max(s["urls_per_s"])), 1),
                     "b1024_urls_per_cpu_s": round(float(np.median(s["urls_per_cpu_s"])), 1)})
    return {"rounds": cfg["candidate_rounds"], "calls_per_round": cfg["candidate_calls"], "candidates": rows}


def interleaved_timings(graphs: dict[str, bytes], x: np.ndarray, cfg: dict[str, Any],
                        log: Log = LOG.info) -> dict[str, dict[str, list[float]]]:
    """name -> {measure: one value per round}; in each round every graph is timed once, in turn."""
    fns = {k: onnx_fn(ort_session(b)) for k, b in graphs.items()}
    samples: dict[str, dict[str, list[float]]] = {k: collections.defaultdict(list) for k in graphs}
    for r in range(cfg["candidate_rounds"]):
        log(f"candidates: round {r + 1}/{cfg['candidate_rounds']}")
        for k, f in fns.items():
            lat = latency(f, x, cfg["candidate_calls"])
            tp = throughput(f, x, cfg["batch"], 3)
            for key, value in (("b1_cpu_p50_ms", lat["cpu_p50_ms"]), ("b1_p50_ms", lat["p50_ms"]),
                               ("b1_p99_ms", lat["p99_ms"]), ("urls_per_cpu_s", tp["urls_per_cpu_s"]),
                               ("urls_per_s", tp["urls_per_s_best"])):
                samples[k][key].append(value)
    return samples
