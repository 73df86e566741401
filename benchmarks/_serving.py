"""Section ``serving`` of bench.py: onnxruntime vs scikit-learn on the same URLs, memory in fresh processes,
the product path, and the reconciliation with the independent harness (benchmarks/independent_serving.py)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from benchmarks._common import LOG, REPO, Log
from benchmarks._graphs import graph_facts, member_parts
from benchmarks._inputs import Inputs
from benchmarks._onnx_timing import (
    latency,
    onnx_fn,
    ort_session,
    sklearn_threads,
    throughput,
)
from phishing_url_detector.detector import Detector

BENCH_DIR = Path(__file__).resolve().parent


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


def memory_probe(engine: str, path: Path, urls: np.ndarray) -> dict[str, float]:
    """Load time and RSS of a fresh interpreter that loads the model and scores 1 then 1,024 URLs."""
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


def run_independent(onnx_bytes: bytes, urls: np.ndarray, cfg: dict[str, Any],
                    vary: Sequence[str] = VARY) -> dict[str, Any]:
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


def detector_throughput(onnx_bytes: bytes, urls: np.ndarray, cfg: dict[str, Any]) -> dict[str, Any]:
    """The product path: Detector.predict_proba (normalisation, length order, input order restored)."""
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


def reconciliation(bench_row: dict[str, Any], independent: dict[str, Any], baseline: dict[str, Any] | None,
                   batch: int) -> list[dict[str, Any]]:
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


def _independent_cells(r: dict[str, Any], k: str) -> dict[str, Any]:
    return {"b1_p50_ms": r["b1_p50_ms"], "b1_cpu_p50_ms": r["b1_cpu_p50_ms"],
            "urls_per_s_median": r[f"{k}_urls_per_s_median"], "urls_per_s_best": r[f"{k}_urls_per_s_best"],
            "urls_per_cpu_s": r[f"{k}_urls_per_cpu_s"]}


# --------------------------------------------------------------------------- section: serving
def serving_targets(e: dict[str, Any], independent: dict[str, Any], detector: dict[str, Any],
                    batch: int) -> dict[str, Any]:
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


def run_serving(inp: Inputs, cfg: dict[str, Any], log: Log = LOG.info) -> dict[str, Any]:
    """Both engines on the ensemble and on each member, load time and memory, the product path, targets."""
    x = inp.urls.astype(object)
    out: dict[str, Any] = {"urls": len(inp.urls), "config": {k: cfg[k] for k in (
        "latency_calls", "latency_calls_sklearn", "batch", "throughput_repeats", "threads")}}
    out["load_and_memory"] = load_and_memory(inp, log)
    engines: dict[str, tuple[bytes, Callable[..., Any]]] = {
        "ensemble": (inp.onnx_bytes, lambda b: inp.model.predict_proba(b))}
    engines.update(member_parts(inp.model))
    rows = {}
    for name, (onx, skl) in engines.items():
        log(f"serving: {name} ...")
        rows[name] = engine_row(onx, skl, x, cfg, threads=name == "ensemble")
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


def load_and_memory(inp: Inputs, log: Log = LOG.info) -> dict[str, Any]:
    """Load time (in-process, warm file cache) and peak memory (fresh processes) of both model files."""
    with tempfile.TemporaryDirectory() as tmp:
        model_path, onnx_path = inp.model_path, inp.onnx_path
        if model_path is None:
            model_path = Path(tmp) / "model.joblib"
            joblib.dump(inp.model, model_path, compress=3)
        if onnx_path is None:
            onnx_path = Path(tmp) / "model.onnx"
            onnx_path.write_bytes(inp.onnx_bytes)
        t = time.perf_counter()
        joblib.load(model_path)
        skl_load = time.perf_counter() - t
        t = time.perf_counter()
        ort_session(onnx_path.read_bytes())
        onnx_load = time.perf_counter() - t
        log("serving: memory probes (fresh processes) ...")
        return {
            "onnx": {"file_mb": round(onnx_path.stat().st_size / 1e6, 3), "load_s_in_process": round(onnx_load, 3),
                     **memory_probe("onnx", onnx_path, inp.urls)},
            "sklearn": {"file_mb": round(model_path.stat().st_size / 1e6, 3), "load_s_in_process": round(skl_load, 3),
                        **memory_probe("sklearn", model_path, inp.urls)},
        }


def engine_row(onx: bytes, skl: Callable[..., Any], x: np.ndarray, cfg: dict[str, Any],
               threads: bool) -> dict[str, Any]:
    """One model both ways at 1 thread (``threads``: also at each of cfg['threads'], and sklearn's default pools)."""
    row = {}
    f1 = onnx_fn(ort_session(onx, threads=1))
    row["onnx_b1"] = latency(f1, x, cfg["latency_calls"])
    row["onnx_b1024_t1"] = throughput(f1, x, cfg["batch"], cfg["throughput_repeats"])
    with sklearn_threads(1):
        row["sklearn_b1"] = latency(skl, x, cfg["latency_calls_sklearn"])
        row["sklearn_b1024_t1"] = throughput(skl, x, cfg["batch"], cfg["throughput_repeats_sklearn"])
    if threads:
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
    return row
