"""Serving benchmarks (sections ``serving``, ``levers``, ``profile`` of bench.py)."""
from __future__ import annotations

import collections
import contextlib
import copy
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
from onnx import TensorProto, helper, numpy_helper

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


# --------------------------------------------------------------------------- timing primitives
def ort_session(onnx_bytes: bytes, threads: int = 1, level: str = "all", profile_prefix: str | None = None):
    """The same options as pipeline.onnx_export.session, plus a selectable optimisation level."""
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
def sklearn_threads(estimator, n: int):
    """Cap sklearn's parallelism: forests' n_jobs and BLAS/OpenMP pools."""
    from threadpoolctl import threadpool_limits

    forests = [e for e in _walk(estimator) if hasattr(e, "n_jobs") and hasattr(e, "estimators_")]
    old = [f.n_jobs for f in forests]
    for f in forests:
        f.n_jobs = n
    try:
        with threadpool_limits(n):
            yield
    finally:
        for f, j in zip(forests, old):
            f.n_jobs = j


def _walk(est):
    yield est
    if hasattr(est, "voting"):
        children = list(getattr(est, "estimators_", []))
    elif hasattr(est, "steps"):
        children = [step for _, step in est.steps]
    else:
        children = []
    for child in children:
        yield from _walk(child)


# --------------------------------------------------------------------------- member graphs
def _convert(est, final, tfidf=None) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    from pipeline.onnx_export import TARGET_OPSET, _fix_tokenizer_padding, _register_converters

    _register_converters()
    options = {}
    if final is not None:
        options[id(final)] = {"zipmap": False}
    if tfidf is not None:
        options[id(tfidf)] = {"tokenexp": "(?s)."}
    onx = convert_sklearn(est, initial_types=[("url", StringTensorType([None, 1]))],
                          target_opset=TARGET_OPSET, options=options)
    _fix_tokenizer_padding(onx)
    return onx


def member_parts(model) -> dict:
    """name -> (onnx bytes, sklearn callable) for each member and each member's feature stage alone."""
    import warnings

    from pipeline.features import feature_graph

    warnings.filterwarnings("ignore", message="The conversion of CountVectorizer may not work")
    text = model.named_estimators_["char_tfidf_lr"]
    lex = model.named_estimators_["lexical_trees"]
    return {
        "char_tfidf_lr": (_convert(text, text["clf"], text["tfidf"]).SerializeToString(),
                          lambda x: text.predict_proba(x)),
        "char_tfidf_lr: TF-IDF only (dense [N,V] output)": (
            _convert(text["tfidf"], None, text["tfidf"]).SerializeToString(), lambda x: text["tfidf"].transform(x)),
        "lexical_trees": (_convert(lex, lex["clf"]).SerializeToString(), lambda x: lex.predict_proba(x)),
        "lexical_trees: features only": (feature_graph().SerializeToString(), lambda x: lex["features"].transform(x)),
    }


# --------------------------------------------------------------------------- graph rewrites (a proposal)
def optimise_graph(onx: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """Exact-math rewrites of the exported graph; returns (new model, what changed).

    1. Identical nodes on the same inputs are computed once (the character Tokenizer of the
       lexical features and of the TF-IDF member are the same node twice; onnxruntime's CSE does
       not merge contrib/string ops).
    2. Normalizer(L2) -> LinearClassifier(LOGISTIC) becomes MatMul/ReduceL2/Div/Add/Sigmoid:
       w.(x/|x|) = (w.x)/|x|, so the dense [N,V] tensor is read twice by fast kernels instead of
       being normalised element-wise by the slow ai.onnx.ml Normalizer.
    """
    onx = copy.deepcopy(onx)
    g = onx.graph
    changes = []
    # 1. de-duplicate identical nodes
    seen, rename = {}, {}
    for node in list(g.node):
        node.input[:] = [rename.get(i, i) for i in node.input]
        if node.op_type in ("Constant",):
            continue
        key = (node.domain, node.op_type, tuple(node.input),
               tuple(sorted(a.SerializeToString() for a in node.attribute)))
        if key in seen and len(node.output) == len(seen[key].output):
            for old, new in zip(node.output, seen[key].output):
                rename[old] = new
            g.node.remove(node)
            changes.append(f"dropped duplicate {node.op_type} '{node.name}'")
        else:
            seen[key] = node
    for out in g.output:
        if out.name in rename:  # never rename a graph output
            raise RuntimeError("duplicate node feeds a graph output")
    # 2. Normalizer(L2) + binary LinearClassifier(LOGISTIC)
    by_output = {o: n for n in g.node for o in n.output}
    for lin in [n for n in g.node if n.op_type == "LinearClassifier"]:
        norm = by_output.get(lin.input[0])
        attrs = {a.name: helper.get_attribute_value(a) for a in lin.attribute}
        if (norm is None or norm.op_type != "Normalizer"
                or helper.get_attribute_value(norm.attribute[0]) != b"L2"
                or attrs.get("post_transform") != b"LOGISTIC" or attrs.get("multi_class", 0) != 0):
            continue
        consumers = [n for n in g.node if lin.output[0] in n.input]
        label_is_output = lin.output[0] in {o.name for o in g.output}
        if consumers or sum(norm.output[0] in n.input for n in g.node) != 1:
            continue
        n_cls = len(attrs["classlabels_ints"])
        coef = np.asarray(attrs["coefficients"], np.float32).reshape(n_cls, -1)
        icpt = np.asarray(attrs["intercepts"], np.float32)
        p = lin.name + "_mm"
        x = norm.input[0]
        new = [
            helper.make_node("MatMul", [x, p + "_W"], [p + "_dot"], name=p + "_dot"),
            helper.make_node("ReduceL2", [x, p + "_axes"], [p + "_norm"], name=p + "_norm", keepdims=1),
            helper.make_node("Max", [p + "_norm", p + "_eps"], [p + "_safe"], name=p + "_safe"),
            helper.make_node("Div", [p + "_dot", p + "_safe"], [p + "_scaled"], name=p + "_scaled"),
            helper.make_node("Add", [p + "_scaled", p + "_b"], [p + "_score"], name=p + "_score"),
            helper.make_node("Sigmoid", [p + "_score"], [lin.output[1]], name=p + "_sigmoid"),
        ]
        if label_is_output:  # member-alone graphs: label = argmax (class labels are 0..K-1)
            if list(attrs["classlabels_ints"]) != list(range(n_cls)):
                continue
            new.append(helper.make_node("ArgMax", [lin.output[1]], [lin.output[0]], name=p + "_label",
                                        axis=1, keepdims=0))
        g.initializer.extend([numpy_helper.from_array(coef.T.copy(), p + "_W"),
                              numpy_helper.from_array(np.array([-1], np.int64), p + "_axes"),
                              numpy_helper.from_array(np.array([1e-30], np.float32), p + "_eps"),
                              numpy_helper.from_array(icpt, p + "_b")])
        idx = list(g.node).index(lin)
        g.node.remove(lin)
        g.node.remove(norm)
        for k, n in enumerate(new):
            g.node.insert(idx - 1 + k, n)
        changes.append(f"Normalizer '{norm.name}' + LinearClassifier '{lin.name}' -> MatMul/ReduceL2/Sigmoid")
    # 3. TfIdfVectorizer(TF) * idf-constant -> TfIdfVectorizer(TFIDF, weights=idf): one dense pass less
    inits = {i.name: i for i in g.initializer}
    by_output = {o: n for n in g.node for o in n.output}
    for mul in [n for n in g.node if n.op_type == "Mul"]:
        src = by_output.get(mul.input[0])
        if src is None or src.op_type != "TfIdfVectorizer" or mul.input[1] not in inits:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in src.attribute}
        idf = numpy_helper.to_array(inits[mul.input[1]]).astype(np.float32).ravel()
        if attrs.get("mode") != b"TF" or any(w != 1.0 for w in attrs.get("weights", [])) or sum(src.output[0] in n.input for n in g.node) != 1 \
                or idf.size != len(attrs["ngram_indexes"]) or sorted(attrs["ngram_indexes"]) != list(range(idf.size)):
            continue
        for a in src.attribute:
            if a.name == "mode":
                a.s = b"TFIDF"
        for a in list(src.attribute):
            if a.name == "weights":
                src.attribute.remove(a)
        # weights[i] belongs to pool entry i, whose output column is ngram_indexes[i]
        src.attribute.append(helper.make_attribute("weights", [float(v) for v in idf[np.asarray(attrs["ngram_indexes"])]]))
        rename_to = mul.output[0]
        g.node.remove(mul)
        src.output[0] = rename_to
        g.initializer.remove(inits[mul.input[1]]) if not any(mul.input[1] in n.input for n in g.node) else None
        changes.append(f"TfIdfVectorizer '{src.name}' * idf -> TfIdfVectorizer(mode=TFIDF, weights=idf)")
    onnx.checker.check_model(onx)
    return onx, changes


# --------------------------------------------------------------------------- memory (fresh processes)
_PROBE = r"""
import json, resource, sys, time
engine, path, urls_path = sys.argv[1:4]
import numpy as np
if engine == "onnx":
    import onnxruntime as ort
else:
    import joblib, sklearn, onnxruntime, pipeline.model  # noqa
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
    from pipeline.onnx_export import session
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


# --------------------------------------------------------------------------- section: serving
def run_serving(inp: Inputs, cfg: dict, log=print) -> dict:
    import joblib

    urls = inp.urls
    x = urls.astype(object)
    out = {"urls": int(len(urls)), "config": {k: cfg[k] for k in ("latency_calls", "latency_calls_sklearn", "batch",
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
            "onnx": {"file_mb": round(onnx_path.stat().st_size / 1e6, 1), "load_s_in_process": round(onnx_load, 3),
                     **memory_probe("onnx", onnx_path, urls)},
            "sklearn": {"file_mb": round(model_path.stat().st_size / 1e6, 1), "load_s_in_process": round(skl_load, 3),
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
        with sklearn_threads(inp.model, 1):
            row["sklearn_b1"] = latency(skl, x, cfg["latency_calls_sklearn"])
            row["sklearn_b1024_t1"] = throughput(skl, x, cfg["batch"], cfg["throughput_repeats_sklearn"])
        if name == "ensemble":
            for t in cfg["threads"]:
                if t == 1:
                    continue
                ft = onnx_fn(ort_session(onx, threads=t))
                row[f"onnx_b1_t{t}"] = latency(ft, x, cfg["latency_calls"])
                row[f"onnx_b1024_t{t}"] = throughput(ft, x, cfg["batch"], cfg["throughput_repeats"])
                with sklearn_threads(inp.model, t):
                    row[f"sklearn_b1024_t{t}"] = throughput(skl, x, cfg["batch"], cfg["throughput_repeats_sklearn"])
            # as fitted: ExtraTrees n_jobs=-1 (a thread pool per call) -- what phishing_proba does today
            row["sklearn_b1_as_fitted"] = latency(skl, x, max(3, cfg["latency_calls_sklearn"] // 3))
        row["speedup_b1_p50"] = round(row["sklearn_b1"]["p50_ms"] / row["onnx_b1"]["p50_ms"], 1)
        row["speedup_b1024_t1"] = round(row["onnx_b1024_t1"]["urls_per_s_best"]
                                        / row["sklearn_b1024_t1"]["urls_per_s_best"], 1)
        row["speedup_b1_cpu_p50"] = round(row["sklearn_b1"]["cpu_p50_ms"] / row["onnx_b1"]["cpu_p50_ms"], 1)
        row["speedup_b1024_t1_cpu"] = round(row["onnx_b1024_t1"]["urls_per_cpu_s"]
                                            / row["sklearn_b1024_t1"]["urls_per_cpu_s"], 1)
        rows[name] = row
    out["engines"] = rows
    e = rows["ensemble"]
    out["targets_cpu_time"] = {  # the same targets on CPU time (robust to a busy shared machine)
        "onnx_b1_cpu_p50_ms": e["onnx_b1"]["cpu_p50_ms"], "onnx_b1_cpu_p50_le_0.5ms": e["onnx_b1"]["cpu_p50_ms"] <= 0.5,
        "speedup_b1_cpu_p50": round(e["sklearn_b1"]["cpu_p50_ms"] / e["onnx_b1"]["cpu_p50_ms"], 1),
        "onnx_b1024_t1_urls_per_cpu_s": e["onnx_b1024_t1"]["urls_per_cpu_s"],
        "onnx_b1024_t1_ge_20k_per_cpu_s": e["onnx_b1024_t1"]["urls_per_cpu_s"] >= 20000,
    }
    out["targets"] = {
        "onnx_b1_p50_ms": e["onnx_b1"]["p50_ms"], "onnx_b1_p50_le_0.5ms": e["onnx_b1"]["p50_ms"] <= 0.5,
        "speedup_b1_p50": e["speedup_b1_p50"], "speedup_ge_10x": e["speedup_b1_p50"] >= 10,
        "onnx_b1024_t1_urls_per_s": e["onnx_b1024_t1"]["urls_per_s_best"],
        "onnx_b1024_t1_ge_20k": e["onnx_b1024_t1"]["urls_per_s_best"] >= 20000,
    }
    # parity of what was timed (sanity: we benchmark the right thing)
    p_onnx = onnx_fn(ort_session(inp.onnx_bytes))(x[:256])[0][:, 1]
    out["parity_max_abs_diff"] = float(np.abs(p_onnx - inp.model.predict_proba(x[:256])[:, 1]).max())
    return out


# --------------------------------------------------------------------------- section: profile
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

    def part(name, op):
        if name.startswith("Lex") or name.startswith("lex"):
            return "lexical features (regex/histogram graph)"
        if op.startswith("TreeEnsemble"):
            return "extra trees (TreeEnsembleClassifier)"
        if op in ("Tokenizer", "TfIdfVectorizer", "Flatten") and not name.startswith("Lex"):
            return "char TF-IDF (Tokenizer + TfIdfVectorizer)"
        if op in ("Normalizer", "LinearClassifier") or name.startswith("LinearClassifier"):
            return "TF-IDF L2 norm + logistic regression"
        return "soft vote, threshold and glue"
    by_part, by_op = collections.Counter(), collections.Counter()
    for n, us in per_run.items():
        by_part[part(n, ops[n])] += us
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
    opt, changes = optimise_graph(onnx.load_from_string(inp.onnx_bytes))
    out["onnx_rewritten"] = {f"b{cfg['batch']}": ort_node_profile(opt.SerializeToString(), inp.urls, cfg["batch"],
                                                                  cfg["profile_batches"]), "changes": changes}
    if inp.train is not None:
        out["train_stage"] = profile_train(inp, log)
    return out


def profile_train(inp: Inputs, log=print, top: int = 14) -> dict:
    """cProfile of the train stage's work (the slowest stage at 1x), by cumulative and own time."""
    import cProfile
    import pstats

    from pipeline.model import as_input, build_model

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
    return {"rows": int(len(inp.train)), "wall_s": round(wall, 2),
            "member_fit_s_on_20k_rows": parts,
            "by_cumulative": sorted(rows, key=lambda r: -r["cumulative_s"])[:top],
            "by_own_time": sorted(rows, key=lambda r: -r["own_s"])[:top],
            "note": "ExtraTrees fits in worker threads, which cProfile does not see: its time shows up as "
                    "lock waits (acquire) under Parallel"}


# --------------------------------------------------------------------------- section: levers
def accuracy(y, p) -> dict:
    from pipeline.metrics import headline_metrics

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


def run_levers(inp: Inputs, cfg: dict, log=print) -> dict:
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.pipeline import Pipeline

    from pipeline.features import LexicalFeatures
    from pipeline.model import as_input, build_model
    from pipeline.onnx_export import to_onnx

    x = inp.urls.astype(object)
    out = {}
    # 1. onnxruntime graph optimisation level (same graph)
    out["ort_optimisation_level"] = {}
    for level in LEVELS:
        log(f"levers: graph optimisation level {level} ...")
        t = time.perf_counter()
        ort_session(inp.onnx_bytes, level=level)
        load = time.perf_counter() - t
        out["ort_optimisation_level"][level] = {"session_create_s": round(load, 3), **_speed(inp.onnx_bytes, x, cfg, level)}
    # 2. exact graph rewrites (no accuracy change; parity checked)
    log("levers: graph rewrites ...")
    opt, changes = optimise_graph(onnx.load_from_string(inp.onnx_bytes))
    opt_bytes = opt.SerializeToString()
    p_ref = inp.model.predict_proba(x[:2048])
    p_opt = onnx_fn(ort_session(opt_bytes))(x[:2048])[0]
    out["graph_rewrites"] = {"changes": changes, "nodes_before": len(onnx.load_from_string(inp.onnx_bytes).graph.node),
                             "nodes_after": len(opt.graph.node),
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
    # 4. model levers: retrain members in-process, accuracy on the test split, speed of the ONNX export
    params = inp.train_params
    y_test = inp.test["label"].to_numpy()
    x_train, y_train = as_input(inp.train["url"]), inp.train["label"].to_numpy()
    x_test = as_input(inp.test["url"])
    w = np.asarray(params["weights"], float)
    default_text = inp.model.named_estimators_["char_tfidf_lr"]
    default_lex = inp.model.named_estimators_["lexical_trees"]
    p_text_default = default_text.predict_proba(x_test)[:, 1]
    p_lex_default = default_lex.predict_proba(x_test)[:, 1]

    def ensemble_p(pt, pl):
        return (w[0] * pt + w[1] * pl) / w.sum()

    def variant(label, text, lex, pt, pl, fit_s):
        model = assemble(inp.model, text, lex)
        onx, _ = optimise_graph(to_onnx(model, 0.5))
        row = {"variant": label, "fit_s": round(fit_s, 1), **accuracy(y_test, ensemble_p(pt, pl)),
               "onnx_mb": round(len(onx.SerializeToString()) / 1e6, 3),
               **_speed(onx.SerializeToString(), x, cfg)}
        log(f"levers: {label}: {row}")
        return row

    rows = [variant("default (as trained), rewritten graph", default_text, default_lex, p_text_default,
                    p_lex_default, 0.0)]
    vocab_default = params["char_tfidf"]["max_features"]
    text_by_vocab = {vocab_default: (default_text, p_text_default)}
    for v in cfg["vocab_sizes"]:
        if v == vocab_default:
            continue
        tp = copy.deepcopy(params)
        tp["char_tfidf"]["max_features"] = v
        t = time.perf_counter()
        text = build_model(tp).estimators[0][1].fit(x_train, y_train)
        fit_s = time.perf_counter() - t
        pt = text.predict_proba(x_test)[:, 1]
        text_by_vocab[v] = (text, pt)
        rows.append(variant(f"char_tfidf.max_features={v}", text, default_lex, pt, p_lex_default, fit_s))
    feats = LexicalFeatures().fit(x_train)
    f_train, f_test = feats.transform(x_train), feats.transform(x_test)
    lex_by_variant = {}
    lf = params["lexical_forest"]
    for n_est, depth in cfg["tree_variants"]:
        if (n_est, depth) == (lf["n_estimators"], lf["max_depth"]):
            lex_by_variant[(n_est, depth)] = (default_lex, p_lex_default)
            continue
        t = time.perf_counter()
        clf = ExtraTreesClassifier(n_estimators=n_est, max_depth=depth, min_samples_leaf=lf["min_samples_leaf"],
                                   max_features=lf["max_features"], n_jobs=-1, random_state=params["seed"])
        clf.fit(f_train, y_train)
        fit_s = time.perf_counter() - t
        lex = Pipeline([("features", feats), ("clf", clf)])
        pl = clf.predict_proba(f_test)[:, 1]
        lex_by_variant[(n_est, depth)] = (lex, pl)
        rows.append(variant(f"lexical_forest n_estimators={n_est}, max_depth={depth}", default_text, lex,
                            p_text_default, pl, fit_s))
    # member choice: TF-IDF member alone (its own ONNX graph, rewritten)
    onx_text, _ = optimise_graph(_convert(default_text, default_text["clf"], default_text["tfidf"]))
    rows.append({"variant": "char_tfidf_lr alone (no trees)", "fit_s": 0.0, **accuracy(y_test, p_text_default),
                 "onnx_mb": round(len(onx_text.SerializeToString()) / 1e6, 3),
                 **_speed(onx_text.SerializeToString(), x, cfg)})
    # the best combination of the cheaper settings
    small_v = min(text_by_vocab, key=lambda v: abs(v - 2000))
    small_t = min(lex_by_variant, key=lambda k: k[0] * 2 ** k[1])
    mid_t = sorted(lex_by_variant, key=lambda k: k[0] * 2 ** k[1])[len(lex_by_variant) // 2]
    for tv in dict.fromkeys([mid_t, small_t]):
        if small_v != vocab_default or tv != (lf["n_estimators"], lf["max_depth"]):
            text, pt = text_by_vocab[small_v]
            lex, pl = lex_by_variant[tv]
            rows.append(variant(f"max_features={small_v} + n_estimators={tv[0]}, max_depth={tv[1]}", text, lex, pt, pl, 0.0))
    out["model_variants"] = rows
    out["model_variants_note"] = ("accuracy on the test split (ROC AUC, TPR at FPR=1e-2, ensemble with the "
                                  "trained weights); speed of each variant's ONNX export with the graph rewrites, "
                                  "1 thread, optimisation level all")
    return out


# --------------------------------------------------------------------------- section: candidates (interleaved A/B)
def run_candidates(inp: Inputs, cfg: dict, log=print) -> dict:
    """The shortlisted serving configurations, timed in interleaved rounds so a busy machine hits all alike."""
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.pipeline import Pipeline

    from pipeline.features import LexicalFeatures
    from pipeline.model import as_input
    from pipeline.onnx_export import to_onnx

    params = inp.train_params
    lf = params["lexical_forest"]
    x = inp.urls.astype(object)
    x_train, y_train = as_input(inp.train["url"]), inp.train["label"].to_numpy()
    x_test, y_test = as_input(inp.test["url"]), inp.test["label"].to_numpy()
    w = np.asarray(params["weights"], float)
    text = inp.model.named_estimators_["char_tfidf_lr"]
    p_text = text.predict_proba(x_test)[:, 1]
    feats = LexicalFeatures().fit(x_train)
    f_train, f_test = feats.transform(x_train), feats.transform(x_test)
    shipped = inp.onnx_bytes
    cands = {"shipped graph, shipped model": (shipped, inp.model.predict_proba(x_test)[:, 1])}
    cands["rewritten graph, shipped model"] = (optimise_graph(onnx.load_from_string(shipped))[0].SerializeToString(),
                                               cands["shipped graph, shipped model"][1])
    for n_est, depth in cfg["candidate_trees"]:
        clf = ExtraTreesClassifier(n_estimators=n_est, max_depth=depth, min_samples_leaf=lf["min_samples_leaf"],
                                   max_features=lf["max_features"], n_jobs=-1, random_state=params["seed"])
        clf.fit(f_train, y_train)
        lex = Pipeline([("features", feats), ("clf", clf)])
        model = assemble(inp.model, text, lex)
        p = (w[0] * p_text + w[1] * clf.predict_proba(f_test)[:, 1]) / w.sum()
        cands[f"rewritten graph, trees {n_est} x depth {depth}"] = (
            optimise_graph(to_onnx(model, 0.5))[0].SerializeToString(), p)
    fns = {k: onnx_fn(ort_session(b)) for k, (b, _) in cands.items()}
    samples = {k: {"b1_cpu_p50_ms": [], "b1_p50_ms": [], "b1_p99_ms": [], "urls_per_cpu_s": [], "urls_per_s": []}
               for k in cands}
    for r in range(cfg["candidate_rounds"]):
        log(f"candidates: round {r + 1}/{cfg['candidate_rounds']}")
        for k, f in fns.items():
            lat = latency(f, x, cfg["candidate_calls"])
            tp = throughput(f, x, cfg["batch"], 3)
            s = samples[k]
            s["b1_cpu_p50_ms"].append(lat["cpu_p50_ms"])
            s["b1_p50_ms"].append(lat["p50_ms"])
            s["b1_p99_ms"].append(lat["p99_ms"])
            s["urls_per_cpu_s"].append(tp["urls_per_cpu_s"])
            s["urls_per_s"].append(tp["urls_per_s_best"])
    rows = []
    for k, (b, p) in cands.items():
        s = samples[k]
        rows.append({"candidate": k, **accuracy(y_test, p), "onnx_mb": round(len(b) / 1e6, 3),
                     "b1_p50_ms": round(float(np.median(s["b1_p50_ms"])), 4),
                     "b1_p99_ms": round(float(np.median(s["b1_p99_ms"])), 4),
                     "b1_cpu_p50_ms": round(float(np.median(s["b1_cpu_p50_ms"])), 4),
                     "b1024_urls_per_s": round(float(np.max(s["urls_per_s"])), 1),
                     "b1024_urls_per_cpu_s": round(float(np.median(s["urls_per_cpu_s"])), 1)})
    return {"rounds": cfg["candidate_rounds"], "calls_per_round": cfg["candidate_calls"], "candidates": rows}
