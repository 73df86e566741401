"""Serving benchmarks (sections ``serving``, ``levers``, ``candidates``, ``profile`` of bench.py)."""
from __future__ import annotations

import collections
import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LEVELS = ("disable_all", "basic", "extended", "all")


@dataclass
class Inputs:
    model: object                      # the fitted VotingClassifier
    onnx_bytes: bytes                  # the exported ensemble
    urls: np.ndarray                   # object array of URLs to score (from the test split)
    train: object = None               # DataFrame url,label (levers: retraining)
    test: object = None                # DataFrame url,label (levers: accuracy)
    train_params: dict | None = None   # params['train'] of the model
    model_path: Path | None = None
    onnx_path: Path | None = None
    load_s: dict = field(default_factory=dict)
    refits: object = None              # Refits shared by the levers and candidates sections (see shared_refits)
    baseline_onnx: bytes | None = None  # another graph of the same model, timed in the reconciliation
    future: object = None              # DataFrame url,label of the future split (levers: accuracy there too)


# --------------------------------------------------------------------------- timing primitives
def ort_session(onnx_bytes: bytes, threads: int = 1, level: str = "all", profile_prefix: str | None = None):
    """The same options as pipeline.training.onnx_export.session, plus a selectable optimisation level."""
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.graph_optimization_level = {
        "disable_all": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    if profile_prefix:
        o.enable_profiling = True
        o.profile_file_prefix = profile_prefix
    return ort.InferenceSession(onnx_bytes, o, providers=["CPUExecutionProvider"])


def onnx_fn(sess):
    name = sess.get_inputs()[0].name
    outs = [o.name for o in sess.get_outputs()]
    want = [n for n in outs if n in ("probabilities", "features", "variable")] or outs[-1:]
    return lambda batch: sess.run(want, {name: batch.reshape(-1, 1)})


def latency(fn, urls: np.ndarray, calls: int) -> dict:
    """Batch-1 latency over ``calls`` different URLs (cycled), after a short warm-up."""
    items = [urls[i % len(urls): i % len(urls) + 1] for i in range(calls)]
    for item in items[: min(20, calls)]:
        fn(item)
    times, cpu = np.empty(calls), np.empty(calls)
    for i, item in enumerate(items):
        c = time.process_time_ns()
        t = time.perf_counter_ns()
        fn(item)
        times[i] = time.perf_counter_ns() - t
        cpu[i] = time.process_time_ns() - c
    ms, cpu_ms = times / 1e6, cpu / 1e6
    return {"calls": calls, "p50_ms": round(float(np.percentile(ms, 50)), 4),
            "p99_ms": round(float(np.percentile(ms, 99)), 4), "mean_ms": round(float(ms.mean()), 4),
            # CPU time of this process per call: what the call costs without other tenants' preemption
            "cpu_p50_ms": round(float(np.percentile(cpu_ms, 50)), 4),
            "cpu_p99_ms": round(float(np.percentile(cpu_ms, 99)), 4)}


def throughput(fn, urls: np.ndarray, batch: int, repeats: int) -> dict:
    """URLs/s scoring one batch of ``batch`` distinct URLs; best and median of ``repeats``."""
    x = np.resize(urls, batch)  # np.resize cycles when there are fewer URLs than the batch
    fn(x)
    secs, cpu = [], []
    for _ in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        fn(x)
        secs.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    secs, cpu = np.asarray(secs), np.asarray(cpu)
    return {"batch": batch, "repeats": repeats, "urls_per_s_best": round(float(batch / secs.min()), 1),
            "urls_per_s_median": round(float(batch / np.median(secs)), 1),
            # URLs per CPU-second of this process (all its threads): the single-core rate when threads=1
            "urls_per_cpu_s": round(float(batch / np.median(cpu)), 1)}


@contextlib.contextmanager
def sklearn_threads(n: int):
    """Cap sklearn's parallelism: the BLAS and OpenMP pools (HistGradientBoosting predicts in OpenMP threads)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(n):
        yield


# --------------------------------------------------------------------------- member graphs
def convert(est, classifier=None) -> onnx.ModelProto:
    """``est`` (a member, or a transformer of one) as ONNX, with the pipeline's own converters
    (the TF-IDF member as the export converts it: one unit, see TfidfLogisticMember)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    from pipeline.training.features import merge_duplicate_nodes
    from pipeline.training.onnx_export import (
        TARGET_OPSET,
        TfidfLogisticMember,
        _register_converters,
    )

    _register_converters()
    options = {id(classifier): {"zipmap": False}} if classifier is not None else {}
    if classifier is not None and "tfidf" in getattr(est, "named_steps", {}):
        est, options = TfidfLogisticMember(est), {}
    onx = convert_sklearn(est, initial_types=[("url", StringTensorType([None, 1]))],
                          target_opset=TARGET_OPSET, options=options)
    merge_duplicate_nodes(onx.graph)
    return onx


def member_parts(model) -> dict:
    """name -> (onnx bytes, sklearn callable) for each member and each member's feature stage alone."""
    from pipeline.training.features import feature_graph

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


def graph_facts(onnx_bytes: bytes) -> dict:
    """Node counts of a graph, and how many of its nodes repeat an earlier node's computation."""
    from pipeline.training.features import merge_duplicate_nodes

    onx = onnx.load_from_string(onnx_bytes)
    ops = collections.Counter(n.op_type for n in onx.graph.node)
    duplicates = merge_duplicate_nodes(copy.deepcopy(onx.graph))
    return {"nodes": len(onx.graph.node), "ops": {k: ops.get(k, 0) for k in KEY_OPS},
            "duplicate_nodes": sum(duplicates.values()), "duplicates_by_op": duplicates,
            "mb": round(len(onnx_bytes) / 1e6, 3)}


def export_bytes(model, threshold: float = 0.5) -> bytes:
    """The model's ONNX export by this checkout's converters (the exact rewrites included)."""
    from pipeline.training.onnx_export import to_onnx

    return to_onnx(model, threshold).SerializeToString()


def structure_changes(before: dict, after: dict) -> list[str]:
    """What differs between two graph_facts, one line per changed count."""
    lines = [f"nodes {before['nodes']} -> {after['nodes']}"]
    lines += [f"{op} nodes {before['ops'][op]} -> {after['ops'][op]}" for op in KEY_OPS
              if before["ops"][op] != after["ops"][op]]
    lines.append(f"nodes computing what an earlier node computed {before['duplicate_nodes']} -> "
                 f"{after['duplicate_nodes']}")
    return lines


# --------------------------------------------------------------------------- memory (fresh processes)
_PROBE = r"""
import json, resource, sys, time
engine, path, urls_path = sys.argv[1:4]
import numpy as np
if engine == "onnx":
    import onnxruntime as ort
else:
    import joblib, sklearn, onnxruntime, pipeline.training.model  # noqa
def hwm_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize() / 2**20
base = rss_mb()
urls = np.asarray(json.load(open(urls_path)), dtype=object)
t = time.perf_counter()
if engine == "onnx":
    from pipeline.training.onnx_export import session
    s = session(open(path, 'rb').read())
    score = lambda x: s.run(None, {"url": x.reshape(-1, 1)})
else:
    m = joblib.load(path)
    score = lambda x: m.predict_proba(x)
load = time.perf_counter() - t
after_load = rss_mb()
score(urls[:1])
score(np.resize(urls, 1024))
print(json.dumps({"load_s": load, "rss_after_imports_mb": base, "rss_after_load_mb": after_load,
                  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork+exec
                  "peak_rss_mb": hwm_mb()}))
"""


def memory_probe(engine: str, path: Path, urls: np.ndarray) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([str(u) for u in urls[:1024]], fh)
    try:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-c", _PROBE, engine, str(path), fh.name], check=True,
                             capture_output=True, text=True, cwd=REPO, env=env).stdout
    finally:
        os.unlink(fh.name)
    r = json.loads(out.strip().splitlines()[-1])
    return {k: round(v, 3 if k == "load_s" else 1) for k, v in r.items()}


# --------------------------------------------------------------------------- the independent harness
INDEPENDENT = BENCH_DIR / "independent_serving.py"
VARY = ("same-batch", "unicode-dtype", "proba-only", "bench-options", "sorted", "busy")
PHYSICAL_LIMIT_URLS_PER_S = 100_000  # featurising a 63-byte URL is about 1 us of work (issue 12)


def run_independent(onnx_bytes: bytes, urls: np.ndarray, cfg: dict, vary=VARY) -> dict:
    """benchmarks/independent_serving.py on ``onnx_bytes`` in a fresh process (its JSON)."""
    with tempfile.TemporaryDirectory() as tmp:
        model, feed = Path(tmp) / "model.onnx", Path(tmp) / "urls.json"
        model.write_bytes(onnx_bytes)
        feed.write_text(json.dumps([str(u) for u in urls]))
        cmd = [sys.executable, str(INDEPENDENT), "--onnx", str(model), "--urls", str(feed),
               "--calls", str(cfg["independent_calls"]), "--batch", str(cfg["batch"]),
               "--repeats", str(cfg["independent_repeats"]), "--vary", ",".join(vary)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def detector_throughput(onnx_bytes: bytes, urls: np.ndarray, cfg: dict) -> dict:
    """The product path: Detector.predict_proba (normalisation, length order, input order restored)."""
    import warnings

    from phishing_url_detector.detector import Detector

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(onnx_bytes)
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # "loading it UNVERIFIED"
            warnings.simplefilter("ignore")
            det = Detector.from_path(path, allow_unverified=True)
    chunks = [list(np.resize(np.roll(urls, -i * cfg["batch"]), cfg["batch"])) for i in range(cfg["detector_repeats"] + 1)]
    det.predict_proba(chunks[0])
    wall, cpu = [], []
    for chunk in chunks[1:]:
        c, t = time.process_time(), time.perf_counter()
        det.predict_proba(chunk)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"batch": cfg["batch"], "urls_per_s_best": round(cfg["batch"] / min(wall), 1),
            "urls_per_s_median": round(cfg["batch"] / float(np.median(wall)), 1),
            "urls_per_cpu_s": round(cfg["batch"] / float(np.median(cpu)), 1),
            "session_threads": "onnxruntime default (all cores)"}


def reconciliation(bench_row: dict, independent: dict, baseline: dict | None, batch: int) -> list[dict]:
    """One row per measuring choice: the bench harness, the independent harness, and the independent
    harness with one factor changed; CPU-time throughput relative to the independent default."""
    k = f"b{batch}"
    runs = {r["variant"]: r for r in independent["runs"]}
    base_cpu = runs["default"][f"{k}_urls_per_cpu_s"]
    rows = [{"setup": "bench.py harness (in process, same batch every repeat, probabilities only, "
                      "inter_op=1 + ORT_ENABLE_ALL)",
             "b1_p50_ms": bench_row["onnx_b1"]["p50_ms"], "b1_cpu_p50_ms": bench_row["onnx_b1"]["cpu_p50_ms"],
             "urls_per_s_median": bench_row["onnx_b1024_t1"]["urls_per_s_median"],
             "urls_per_s_best": bench_row["onnx_b1024_t1"]["urls_per_s_best"],
             "urls_per_cpu_s": bench_row["onnx_b1024_t1"]["urls_per_cpu_s"]}]
    labels = {"default": "independent harness (fresh process, a new slice per call, both outputs, object dtype)",
              "same-batch": "... the same batch every repeat", "unicode-dtype": "... numpy '<U' input",
              "proba-only": "... probabilities only", "bench-options": "... bench.py's session options",
              "sorted": "... each batch in URL-length order (what the Detector does)",
              "busy": "... with one spinning process per CPU (loaded machine)"}
    for name, r in runs.items():
        rows.append({"setup": labels.get(name, name), **_independent_cells(r, k)})
    if baseline:
        rows.append({"setup": "... the baseline graph (--baseline-onnx)",
                     **_independent_cells(next(r for r in baseline["runs"] if r["variant"] == "default"), k)})
    for row in rows:
        row["cpu_ratio_vs_independent"] = round(row["urls_per_cpu_s"] / base_cpu, 2)
    return rows


def _independent_cells(r: dict, k: str) -> dict:
    return {"b1_p50_ms": r["b1_p50_ms"], "b1_cpu_p50_ms": r["b1_cpu_p50_ms"],
            "urls_per_s_median": r[f"{k}_urls_per_s_median"], "urls_per_s_best": r[f"{k}_urls_per_s_best"],
            "urls_per_cpu_s": r[f"{k}_urls_per_cpu_s"]}


# --------------------------------------------------------------------------- section: serving
def serving_targets(e: dict, independent: dict, detector: dict, batch: int) -> dict:
    """Issue 12's serving targets, on both harnesses (wall and CPU time), and the physical-limit ratio."""
    ind = next(r for r in independent["runs"] if r["variant"] == "default")
    skl_cpu, skl_wall = e["sklearn_b1024_t1"]["urls_per_cpu_s"], e["sklearn_b1024_t1"]["urls_per_s_best"]
    onnx_cpu = e["onnx_b1024_t1"]["urls_per_cpu_s"]
    ind_cpu = ind[f"b{batch}_urls_per_cpu_s"]
    return {
        "onnx_b1_p50_ms": e["onnx_b1"]["p50_ms"], "onnx_b1_cpu_p50_ms": e["onnx_b1"]["cpu_p50_ms"],
        "speedup_b1_p50": e["speedup_b1_p50"], "independent_b1_p50_ms": ind["b1_p50_ms"], "independent_b1_cpu_p50_ms": ind["b1_cpu_p50_ms"],
        "b1_p50_le_0.2ms": max(e["onnx_b1"]["p50_ms"], ind["b1_p50_ms"]) <= 0.2,
        "b1_cpu_p50_le_0.2ms": max(e["onnx_b1"]["cpu_p50_ms"], ind["b1_cpu_p50_ms"]) <= 0.2,
        "onnx_b1024_t1_urls_per_s": e["onnx_b1024_t1"]["urls_per_s_best"], "onnx_b1024_t1_urls_per_cpu_s": onnx_cpu,
        "independent_b1024_urls_per_s": ind[f"b{batch}_urls_per_s_best"], "independent_b1024_urls_per_cpu_s": ind_cpu,
        "detector_b1024_urls_per_cpu_s": detector["urls_per_cpu_s"],
        "b1024_ge_20k_cpu": min(onnx_cpu, ind_cpu) >= 20000,
        "b1024_ge_20k_wall": min(e["onnx_b1024_t1"]["urls_per_s_best"], ind[f"b{batch}_urls_per_s_best"]) >= 20000,
        "speedup_vs_sklearn_b1024_cpu": round(min(onnx_cpu, ind_cpu) / skl_cpu, 2),
        "speedup_vs_sklearn_b1024_wall": round(e["onnx_b1024_t1"]["urls_per_s_best"] / skl_wall, 2),
        "speedup_ge_5x_cpu": min(onnx_cpu, ind_cpu) / skl_cpu >= 5,
        "ratio_to_physical_limit": round(min(onnx_cpu, ind_cpu) / PHYSICAL_LIMIT_URLS_PER_S, 3),
        "physical_limit_urls_per_s": PHYSICAL_LIMIT_URLS_PER_S,
        "load_average": independent["load_average_before"],
    }


def run_serving(inp: Inputs, cfg: dict, log=print) -> dict:
    import joblib

    urls = inp.urls
    x = urls.astype(object)
    out = {"urls": len(urls), "config": {k: cfg[k] for k in ("latency_calls", "latency_calls_sklearn", "batch",
                                                                 "throughput_repeats", "threads")}}
    # load time (in-process, warm file cache) and peak memory (fresh processes)
    with contextlib.ExitStack() as stack:
        model_path, onnx_path = inp.model_path, inp.onnx_path
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if model_path is None:
            model_path = tmp / "model.joblib"
            joblib.dump(inp.model, model_path, compress=3)
        if onnx_path is None:
            onnx_path = tmp / "model.onnx"
            onnx_path.write_bytes(inp.onnx_bytes)
        t = time.perf_counter()
        joblib.load(model_path)
        skl_load = time.perf_counter() - t
        t = time.perf_counter()
        ort_session(onnx_path.read_bytes())
        onnx_load = time.perf_counter() - t
        log("serving: memory probes (fresh processes) ...")
        out["load_and_memory"] = {
            "onnx": {"file_mb": round(onnx_path.stat().st_size / 1e6, 3), "load_s_in_process": round(onnx_load, 3),
                     **memory_probe("onnx", onnx_path, urls)},
            "sklearn": {"file_mb": round(model_path.stat().st_size / 1e6, 3), "load_s_in_process": round(skl_load, 3),
                        **memory_probe("sklearn", model_path, urls)},
        }

    engines = {"ensemble": (inp.onnx_bytes, lambda b: inp.model.predict_proba(b))}
    engines.update(member_parts(inp.model))
    rows = {}
    for name, (onx, skl) in engines.items():
        log(f"serving: {name} ...")
        row = {}
        sess1 = ort_session(onx, threads=1)
        f1 = onnx_fn(sess1)
        row["onnx_b1"] = latency(f1, x, cfg["latency_calls"])
        row["onnx_b1024_t1"] = throughput(f1, x, cfg["batch"], cfg["throughput_repeats"])
        with sklearn_threads(1):
            row["sklearn_b1"] = latency(skl, x, cfg["latency_calls_sklearn"])
            row["sklearn_b1024_t1"] = throughput(skl, x, cfg["batch"], cfg["throughput_repeats_sklearn"])
        if name == "ensemble":
            for t in cfg["threads"]:
                if t == 1:
                    continue
                ft = onnx_fn(ort_session(onx, threads=t))
                row[f"onnx_b1_t{t}"] = latency(ft, x, cfg["latency_calls"])
                row[f"onnx_b1024_t{t}"] = throughput(ft, x, cfg["batch"], cfg["throughput_repeats"])
                with sklearn_threads(t):
                    row[f"sklearn_b1024_t{t}"] = throughput(skl, x, cfg["batch"], cfg["throughput_repeats_sklearn"])
            # default thread pools (OpenMP/BLAS on every core) -- what phishing_proba does today
            row["sklearn_b1_default_threads"] = latency(skl, x, max(3, cfg["latency_calls_sklearn"] // 3))
        row["speedup_b1_p50"] = round(row["sklearn_b1"]["p50_ms"] / row["onnx_b1"]["p50_ms"], 1)
        row["speedup_b1024_t1"] = round(row["onnx_b1024_t1"]["urls_per_s_best"]
                                        / row["sklearn_b1024_t1"]["urls_per_s_best"], 1)
        row["speedup_b1_cpu_p50"] = round(row["sklearn_b1"]["cpu_p50_ms"] / row["onnx_b1"]["cpu_p50_ms"], 1)
        row["speedup_b1024_t1_cpu"] = round(row["onnx_b1024_t1"]["urls_per_cpu_s"]
                                            / row["sklearn_b1024_t1"]["urls_per_cpu_s"], 1)
        rows[name] = row
    out["engines"] = rows
    e = rows["ensemble"]
    log("serving: the product path (Detector) ...")
    out["detector_b1024"] = detector_throughput(inp.onnx_bytes, x, cfg)
    log("serving: benchmarks/independent_serving.py (fresh process) ...")
    independent = run_independent(inp.onnx_bytes, x, cfg)
    baseline = run_independent(inp.baseline_onnx, x, cfg, vary=()) if inp.baseline_onnx else None
    out["independent"] = independent
    out["reconciliation"] = reconciliation(e, independent, baseline, cfg["batch"])
    out["graph"] = graph_facts(inp.onnx_bytes)
    if inp.baseline_onnx:
        out["baseline_graph"] = graph_facts(inp.baseline_onnx)
    out["targets"] = serving_targets(e, independent, out["detector_b1024"], cfg["batch"])
    # parity of what was timed (sanity: we benchmark the right thing)
    p_onnx = onnx_fn(ort_session(inp.onnx_bytes))(x[:256])[0][:, 1]
    out["parity_max_abs_diff"] = float(np.abs(p_onnx - inp.model.predict_proba(x[:256])[:, 1]).max())
    return out


# --------------------------------------------------------------------------- section: profile
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
    feeds = collections.defaultdict(set)
    for clf in (n for n in onx.graph.node if n.op_type in CLASSIFIERS):
        stack = [clf]
        while stack:
            for name in stack.pop().input:
                node = producer.get(name)
                if node is not None and clf.op_type not in feeds[node.name]:
                    feeds[node.name].add(clf.op_type)
                    stack.append(node)
    return {n.name: CLASSIFIERS.get(n.op_type) or FEEDS.get(frozenset(feeds[n.name]), GLUE) for n in onx.graph.node}


def ort_node_profile(onnx_bytes: bytes, urls: np.ndarray, batch: int, runs: int) -> dict:
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
    nodes = collections.Counter()
    ops = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            nodes[name] += e["dur"]
            ops[name] = e["args"].get("op_name", "?")
    # the first run is a warm-up; profile events include it, so average over runs + 1
    per_run = {n: us / (runs + 1) for n, us in nodes.items()}
    total = sum(per_run.values())
    parts = node_parts(onnx.load_from_string(onnx_bytes))
    by_part, by_op = collections.Counter(), collections.Counter()
    for n, us in per_run.items():
        by_part[parts.get(n, FUSED)] += us
        by_op[ops[n]] += us
    top = [{"node": n, "op": ops[n], "us": round(us, 1), "share": round(us / total, 3)}
           for n, us in sorted(per_run.items(), key=lambda kv: -kv[1])[:12]]
    return {"batch": batch, "runs": runs, "wall_ms_per_run": round(wall * 1e3, 3),
            "kernel_ms_per_run": round(total / 1e3, 3),
            "by_part": {k: {"ms": round(v / 1e3, 3), "share": round(v / total, 3)} for k, v in by_part.most_common()},
            "by_op": {k: {"ms": round(v / 1e3, 3), "share": round(v / total, 3)} for k, v in by_op.most_common(10)},
            "top_nodes": top, "nodes": len(per_run)}


def run_profile(inp: Inputs, cfg: dict, log=print) -> dict:
    out = {"onnx": {}}
    for batch in (1, cfg["batch"]):
        runs = cfg["profile_batches"] * (20 if batch == 1 else 1)
        log(f"profile: onnxruntime node profile at batch {batch} ...")
        out["onnx"][f"b{batch}"] = ort_node_profile(inp.onnx_bytes, inp.urls, batch, runs)
    fresh = export_bytes(inp.model)
    out["onnx_rewritten"] = {f"b{cfg['batch']}": ort_node_profile(fresh, inp.urls, cfg["batch"], cfg["profile_batches"]),
                             "changes": structure_changes(graph_facts(inp.onnx_bytes), graph_facts(fresh))}
    if inp.train is not None:
        out["train_stage"] = profile_train(inp, log)
    return out


def profile_train(inp: Inputs, log=print, top: int = 14) -> dict:
    """cProfile of the train stage's work (the slowest stage at 1x), by cumulative and own time."""
    import cProfile
    import pstats

    from pipeline.training.model import as_input, build_model

    log(f"profile: cProfile of fitting the ensemble on {len(inp.train):,} URLs ...")
    model = build_model(inp.train_params)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    model.fit(as_input(inp.train["url"]), inp.train["label"].to_numpy())
    prof.disable()
    wall = time.perf_counter() - t
    # the member fits themselves (wall), for attribution
    parts = {}
    sample = inp.train.sample(n=min(len(inp.train), 20000), random_state=0)
    for name, est in model.named_estimators_.items():
        t = time.perf_counter()
        copy.deepcopy(est).fit(as_input(sample["url"]), sample["label"].to_numpy())
        parts[name] = round(time.perf_counter() - t, 2)
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": nc, "own_s": round(tt, 2),
                     "cumulative_s": round(ct, 2)})
    return {"rows": len(inp.train), "wall_s": round(wall, 2),
            "member_fit_s_on_20k_rows": parts,
            "by_cumulative": sorted(rows, key=lambda r: -r["cumulative_s"])[:top],
            "by_own_time": sorted(rows, key=lambda r: -r["own_s"])[:top],
            "note": "HistGradientBoosting's work runs in native OpenMP code, which cProfile cannot look into: "
                    "it shows up as own time of the Python functions of its tree grower that call it"}


# --------------------------------------------------------------------------- section: levers
def accuracy(y, p) -> dict:
    from pipeline.training.metrics import headline_metrics

    m = headline_metrics(y, p, 0.5, [0.01])
    return {"roc_auc": round(m["roc_auc"], 5), "tpr_at_fpr_0.01": round(m["tpr_at_fpr_0.01"], 4)}


def _speed(onnx_bytes, x, cfg, level="all") -> dict:
    f = onnx_fn(ort_session(onnx_bytes, level=level))
    b1 = latency(f, x, max(10, cfg["latency_calls"] // 2))
    tp = throughput(f, x, cfg["batch"], cfg["throughput_repeats"])
    return {"b1_p50_ms": b1["p50_ms"], "b1_p99_ms": b1["p99_ms"], "b1_cpu_p50_ms": b1["cpu_p50_ms"],
            "b1024_urls_per_s": tp["urls_per_s_best"], "b1024_urls_per_s_median": tp["urls_per_s_median"],
            "b1024_urls_per_cpu_s": tp["urls_per_cpu_s"]}


def assemble(model, text_member, lex_member):
    """A fitted VotingClassifier identical to ``model`` but with other fitted members."""
    from sklearn.utils import Bunch

    m = copy.copy(model)
    m.estimators_ = [text_member, lex_member]
    m.named_estimators_ = Bunch(char_tfidf_lr=text_member, lexical_trees=lex_member)
    return m


def vocabulary(text_member) -> tuple[int, int]:
    """(host_features, path_features) the TF-IDF member was fitted with."""
    return text_member["tfidf"].host_features, text_member["tfidf"].path_features


def tree_shape(lex_member) -> tuple[int, int]:
    """(max_iter, max_leaf_nodes) the gradient-boosted trees were fitted with."""
    return lex_member["clf"].max_iter, lex_member["clf"].max_leaf_nodes


class Refits:
    """The shipped ensemble with a member refitted at other settings; each setting is fitted once.

    ``vocab`` = (host_features, path_features) of the TF-IDF member, ``trees`` = (max_iter,
    max_leaf_nodes) of the gradient-boosted trees; None keeps the shipped member. Every other
    setting comes from ``params['train']``; the soft vote is the shipped VotingClassifier's.
    """

    def __init__(self, inp: Inputs):
        from pipeline.training.model import as_input

        self.inp = inp
        self.x_train, self.y_train = as_input(inp.train["url"]), inp.train["label"].to_numpy()
        self.x_test, self.y_test = as_input(inp.test["url"]), inp.test["label"].to_numpy()
        self.x_future = as_input(inp.future["url"]) if inp.future is not None else None
        self.y_future = inp.future["label"].to_numpy() if inp.future is not None else None
        text, lex = inp.model.named_estimators_["char_tfidf_lr"], inp.model.named_estimators_["lexical_trees"]
        self.shipped = (vocabulary(text), tree_shape(lex))
        self.text = {self.shipped[0]: (text, 0.0)}   # vocab -> (fitted member, fit seconds)
        self.trees = {self.shipped[1]: (lex, 0.0)}   # trees -> (fitted member, fit seconds)
        self._features_train = None

    def _params(self, section: str, **values) -> dict:
        params = copy.deepcopy(self.inp.train_params)
        params[section].update(values)
        return params

    def text_member(self, vocab: tuple):
        """``vocab`` = (host_features, path_features[, ngram_max])."""
        from pipeline.training.model import build_model

        if vocab not in self.text:
            values = {"host_features": vocab[0], "path_features": vocab[1]}
            if len(vocab) > 2:
                values["ngram_max"] = vocab[2]
            ensemble = build_model(self._params("char_tfidf", **values))
            t = time.perf_counter()
            fitted = ensemble.named_estimators["char_tfidf_lr"].fit(self.x_train, self.y_train)
            self.text[vocab] = (fitted, time.perf_counter() - t)
        return self.text[vocab]

    def tree_member(self, trees: tuple[int, int]):
        """Only the classifier is refitted: the features are stateless and computed once."""
        from sklearn.pipeline import Pipeline

        from pipeline.training.model import build_model

        if trees not in self.trees:
            features = self.inp.model.named_estimators_["lexical_trees"]["features"]
            if self._features_train is None:
                self._features_train = features.transform(self.x_train)
            ensemble = build_model(self._params("lexical_trees", max_iter=trees[0], max_leaf_nodes=trees[1]))
            t = time.perf_counter()
            fitted = ensemble.named_estimators["lexical_trees"]["clf"].fit(self._features_train, self.y_train)
            self.trees[trees] = (Pipeline([("features", features), ("clf", fitted)]), time.perf_counter() - t)
        return self.trees[trees]

    def model(self, vocab=None, trees=None):
        """(ensemble, seconds it took to fit its refitted members)."""
        text, text_s = self.text_member(vocab or self.shipped[0])
        lex, lex_s = self.tree_member(trees or self.shipped[1])
        return assemble(self.inp.model, text, lex), text_s + lex_s

    def accuracy(self, model, member: str | None = None) -> dict:
        """ROC AUC and TPR@FPR=1e-2 of the ensemble (or of one ``member``) on the test and future splits."""
        from pipeline.training.model import scores

        def p(x):
            ensemble, members = scores(model, x)
            return members[member] if member else ensemble

        out = accuracy(self.y_test, p(self.x_test))
        if self.x_future is not None:
            out.update({f"future_{k}": v for k, v in accuracy(self.y_future, p(self.x_future)).items()})
        return out


def shared_refits(inp: Inputs) -> Refits:
    """One Refits per Inputs, so levers and candidates fit each setting once between them."""
    if inp.refits is None:
        inp.refits = Refits(inp)
    return inp.refits


def rewritten_export(model) -> bytes:
    """The model's ONNX export (threshold 0.5) with the exact graph rewrites."""
    return export_bytes(model)


def variant_label(vocab=None, trees=None) -> str:
    parts = ([f"char_tfidf host_features={vocab[0]}, path_features={vocab[1]}"
              + (f", ngram_max={vocab[2]}" if len(vocab) > 2 else "")] if vocab else []) + \
            ([f"lexical_trees max_iter={trees[0]}, max_leaf_nodes={trees[1]}"] if trees else [])
    return " + ".join(parts) or "shipped model"


def run_levers(inp: Inputs, cfg: dict, log=print) -> dict:
    x = inp.urls.astype(object)
    out = {"ort_optimisation_level": {}}
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


def model_variants(inp: Inputs, cfg: dict, log=print) -> list[dict]:
    """Vocabulary sizes, tree counts/sizes, the TF-IDF member alone, and two cheaper combinations."""
    refits = shared_refits(inp)
    x = inp.urls.astype(object)
    shipped_vocab, shipped_trees = refits.shipped

    def row(label, vocab=None, trees=None):
        model, fit_s = refits.model(vocab, trees)
        onx = rewritten_export(model)
        r = {"variant": label, "fit_s": round(fit_s, 1), **refits.accuracy(model),
             "onnx_mb": round(len(onx) / 1e6, 3), **_speed(onx, x, cfg)}
        log(f"levers: {label}: {r}")
        return r

    rows = [row("shipped model, rewritten graph")]
    vocabs = [tuple(v) for v in cfg["vocab_sizes"] if tuple(v) != shipped_vocab]
    trees = [tuple(t) for t in cfg["tree_variants"] if tuple(t) != shipped_trees]
    rows += [row(variant_label(vocab=v), vocab=v) for v in vocabs]
    rows += [row(variant_label(trees=t), trees=t) for t in trees]
    rows.append(text_member_alone(refits, x, cfg))
    if vocabs and trees:  # the middle vocabulary with the middle and the smallest trees
        vocab = sorted(vocabs, key=sum)[len(vocabs) // 2]
        by_size = sorted(trees, key=lambda t: t[0] * t[1])
        for t in dict.fromkeys([by_size[len(by_size) // 2], by_size[0]]):
            rows.append(row(variant_label(vocab, t), vocab, t))
    return rows


def text_member_alone(refits: Refits, x, cfg) -> dict:
    """The member choice: the shipped TF-IDF member alone, its own (rewritten) ONNX graph."""
    text = refits.inp.model.named_estimators_["char_tfidf_lr"]
    onx = convert(text, text["clf"]).SerializeToString()
    return {"variant": "char_tfidf_lr alone (no trees)", "fit_s": 0.0,
            **refits.accuracy(refits.inp.model, member="char_tfidf_lr"),
            "onnx_mb": round(len(onx) / 1e6, 3), **_speed(onx, x, cfg)}


# --------------------------------------------------------------------------- section: candidates (interleaved A/B)
def run_candidates(inp: Inputs, cfg: dict, log=print) -> dict:
    """The shortlisted serving configurations, timed in interleaved rounds so a busy machine hits all alike."""
    refits = shared_refits(inp)
    shipped = refits.accuracy(inp.model)
    cands = {"shipped graph, shipped model": (inp.onnx_bytes, shipped),
             "rewritten graph, shipped model": (export_bytes(inp.model), shipped)}
    for vocab, trees in cfg["candidates"]:
        log(f"candidates: fitting {variant_label(vocab, trees)} ...")
        model, _ = refits.model(vocab, trees)
        cands[f"rewritten graph, {variant_label(vocab, trees)}"] = (rewritten_export(model), refits.accuracy(model))
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


def interleaved_timings(graphs: dict[str, bytes], x, cfg: dict, log=print) -> dict[str, dict[str, list]]:
    """name -> {measure: one value per round}; in each round every graph is timed once, in turn."""
    fns = {k: onnx_fn(ort_session(b)) for k, b in graphs.items()}
    samples = {k: collections.defaultdict(list) for k in graphs}
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
