"""Timing primitives of the serving sections: an onnxruntime session, batch-1 latency, batch throughput."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import onnxruntime as ort
from threadpoolctl import threadpool_limits

Scorer = Callable[[np.ndarray], Any]  # scores a batch of URLs (an onnxruntime session or an sklearn model)

LEVELS = ("disable_all", "basic", "extended", "all")


def ort_session(onnx_bytes: bytes, threads: int = 1, level: str = "all",
                profile_prefix: str | None = None) -> ort.InferenceSession:
    """The same options as pipeline.training.onnx_export.session, plus a selectable optimisation level."""
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


def onnx_fn(sess: ort.InferenceSession) -> Scorer:
    """Score with ``sess``: its probabilities (or a feature graph's output) for a 1-D array of URLs."""
    name = sess.get_inputs()[0].name
    outs = [o.name for o in sess.get_outputs()]
    want = [n for n in outs if n in ("probabilities", "features", "variable")] or outs[-1:]
    return lambda batch: sess.run(want, {name: batch.reshape(-1, 1)})


def latency(fn: Scorer, urls: np.ndarray, calls: int) -> dict[str, Any]:
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


def throughput(fn: Scorer, urls: np.ndarray, batch: int, repeats: int) -> dict[str, Any]:
    """URLs/s scoring one batch of ``batch`` distinct URLs; best and median of ``repeats``."""
    x = np.resize(urls, batch)  # np.resize cycles when there are fewer URLs than the batch
    fn(x)
    secs, cpu = np.empty(repeats), np.empty(repeats)
    for i in range(repeats):
        c = time.process_time()
        t = time.perf_counter()
        fn(x)
        secs[i] = time.perf_counter() - t
        cpu[i] = time.process_time() - c
    return {"batch": batch, "repeats": repeats, "urls_per_s_best": round(float(batch / secs.min()), 1),
            "urls_per_s_median": round(float(batch / np.median(secs)), 1),
            # URLs per CPU-second of this process (all its threads): the single-core rate when threads=1
            "urls_per_cpu_s": round(float(batch / np.median(cpu)), 1)}


@contextlib.contextmanager
def sklearn_threads(n: int) -> Iterator[None]:
    """Cap sklearn's parallelism: the BLAS and OpenMP pools (HistGradientBoosting predicts in OpenMP threads)."""
    with threadpool_limits(n):
        yield

