"""Section ``profile`` of bench.py: onnxruntime's per-node profile by ensemble part, cProfile of the fit."""
from __future__ import annotations

import collections
import copy
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from benchmarks._common import LOG, Log
from benchmarks._graphs import export_bytes, graph_facts, structure_changes
from benchmarks._inputs import Inputs
from benchmarks._onnx_timing import ort_session
from pipeline.training.model import as_input, build_model

CLASSIFIERS = {"Sigmoid": "logistic regression (Sigmoid of the per-part dot/norm sum)",
               "TreeEnsembleClassifier": "gradient-boosted trees (TreeEnsembleClassifier)"}
FEEDS = {frozenset({"Sigmoid"}): "char TF-IDF of host and path (TfIdfVectorizer, dot with coef, L2 norm)",
         frozenset({"TreeEnsembleClassifier"}): "lexical features (regex/histogram graph)",
         frozenset(CLASSIFIERS): "URL split and character tokens shared by both members"}
GLUE = "soft vote, threshold and glue"
FUSED = "nodes onnxruntime fused or added"


def node_parts(onx: onnx.ModelProto) -> dict[str, str]:
    """node name -> the part of the ensemble it belongs to: a member classifier, or which classifiers it feeds."""
    producer = {o: n for n in onx.graph.node for o in n.output}
    feeds: dict[str, set[str]] = collections.defaultdict(set)
    for clf in (n for n in onx.graph.node if n.op_type in CLASSIFIERS):
        stack = [clf]
        while stack:
            for name in stack.pop().input:
                node = producer.get(name)
                if node is not None and clf.op_type not in feeds[node.name]:
                    feeds[node.name].add(clf.op_type)
                    stack.append(node)
    return {n.name: CLASSIFIERS.get(n.op_type) or FEEDS.get(frozenset(feeds[n.name]), GLUE) for n in onx.graph.node}


def ort_node_profile(onnx_bytes: bytes, urls: np.ndarray, batch: int, runs: int) -> dict[str, Any]:
    """Kernel time per node from onnxruntime's profiler, grouped by op and by ensemble part."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = ort_session(onnx_bytes, profile_prefix=str(Path(tmp) / "ort"))
        x = np.resize(urls, batch * runs).reshape(-1, 1)
        sess.run(None, {"url": x[:batch]})
        t = time.perf_counter()
        for i in range(1, runs + 1):
            sess.run(None, {"url": x[(i - 1) * batch: i * batch]})
        wall = (time.perf_counter() - t) / runs
        events = json.loads(Path(sess.end_profiling()).read_text())
    nodes: collections.Counter[str] = collections.Counter()
    ops: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            nodes[name] += e["dur"]
            ops[name] = e["args"].get("op_name", "?")
    # the first run is a warm-up; profile events include it, so average over runs + 1
    per_run = {n: us / (runs + 1) for n, us in nodes.items()}
    total = sum(per_run.values())
    parts = node_parts(onnx.load_from_string(onnx_bytes))
    by_part: dict[str, float] = collections.defaultdict(float)
    by_op: dict[str, float] = collections.defaultdict(float)
    for n, us in per_run.items():
        by_part[parts.get(n, FUSED)] += us
        by_op[ops[n]] += us
    top = [{"node": n, "op": ops[n], "us": round(us, 1), "share": round(us / total, 3)}
           for n, us in sorted(per_run.items(), key=lambda kv: -kv[1])[:12]]
    return {"batch": batch, "runs": runs, "wall_ms_per_run": round(wall * 1e3, 3),
            "kernel_ms_per_run": round(total / 1e3, 3),
            "by_part": {k: {"ms": round(v / 1e3, 3), "share": round(v / total, 3)} for k, v in _largest(by_part)},
            "by_op": {k: {"ms": round(v / 1e3, 3), "share": round(v / total, 3)} for k, v in _largest(by_op)[:10]},
            "top_nodes": top, "nodes": len(per_run)}


def _largest(micros: dict[str, float]) -> list[tuple[str, float]]:
    """Largest first; ties keep their first-seen order (as Counter.most_common)."""
    return sorted(micros.items(), key=lambda kv: kv[1], reverse=True)


def run_profile(inp: Inputs, cfg: dict[str, Any], log: Log = LOG.info) -> dict[str, Any]:
    """The shipped graph's node profile at batch 1 and ``cfg['batch']``, the rewritten graph's, the fit's."""
    out: dict[str, Any] = {"onnx": {}}
    for batch in (1, cfg["batch"]):
        runs = cfg["profile_batches"] * (20 if batch == 1 else 1)
        log(f"profile: onnxruntime node profile at batch {batch} ...")
        out["onnx"][f"b{batch}"] = ort_node_profile(inp.onnx_bytes, inp.urls, batch, runs)
    fresh = export_bytes(inp.model)
    out["onnx_rewritten"] = {f"b{cfg['batch']}": ort_node_profile(fresh, inp.urls, cfg["batch"], cfg["profile_batches"]),
                             "changes": structure_changes(graph_facts(inp.onnx_bytes), graph_facts(fresh))}
    if inp.train is not None and inp.train_params is not None:
        out["train_stage"] = profile_train(inp.train, inp.train_params, log)
    return out


def profile_train(train: pd.DataFrame, train_params: dict[str, Any], log: Log = LOG.info,
                  top: int = 14) -> dict[str, Any]:
    """cProfile of the train stage's work (the slowest stage at 1x), by cumulative and own time."""
    log(f"profile: cProfile of fitting the ensemble on {len(train):,} URLs ...")
    model = build_model(train_params)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    model.fit(as_input(train["url"]), train["label"].to_numpy())
    prof.disable()
    wall = time.perf_counter() - t
    # the member fits themselves (wall), for attribution
    parts = {}
    sample = train.sample(n=min(len(train), 20000), random_state=0)
    for name, est in model.named_estimators_.items():
        t = time.perf_counter()
        copy.deepcopy(est).fit(as_input(sample["url"]), sample["label"].to_numpy())
        parts[name] = round(time.perf_counter() - t, 2)
    stats = pstats.Stats(prof)
    rows = []
    # Stats.stats, the raw table {(file, line, function): (primitive calls, calls, own, cumulative, callers)},
    # is what print_stats reads; typeshed leaves it out
    for (file, line, func), (_, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc, "own_s": round(tt, 2),
                     "cumulative_s": round(ct, 2)})
    return {"rows": len(train), "wall_s": round(wall, 2),
            "member_fit_s_on_20k_rows": parts,
            "by_cumulative": sorted(rows, key=lambda r: -r["cumulative_s"])[:top],
            "by_own_time": sorted(rows, key=lambda r: -r["own_s"])[:top],
            "note": "HistGradientBoosting's work runs in native OpenMP code, which cProfile cannot look into: "
                    "it shows up as own time of the Python functions of its tree grower that call it"}

