"""An independent serving benchmark: shares no code with bench.py / _serving.py.

Only onnxruntime, numpy and the standard library; meant to run in a fresh process:

    python benchmarks/independent_serving.py --onnx dist/phishing-url-detector.onnx --urls build/urls.txt

Defaults are what a product would do: ``SessionOptions()`` with ``intra_op_num_threads=1`` and
nothing else, both outputs (``label`` and ``probabilities``) requested, an object array of ``str``,
and a different slice of the URL file for every call, so no two timed calls see the same batch.
``--vary`` re-measures with one factor changed at a time (the reconciliation with bench.py):

    same-batch     every batch-1024 call scores the same 1,024 URLs (what bench.py's throughput does)
    unicode-dtype  the feed is a numpy '<U' array instead of dtype=object
    proba-only     only ``probabilities`` is requested
    bench-options  inter_op_num_threads=1 and ORT_ENABLE_ALL set explicitly (bench.py's options)
    sorted         each batch sorted by URL length before scoring (string ops pad to the longest)
    busy           as default, while one spinning process per CPU competes for the cores (load)

It prints one JSON object: wall and CPU figures per configuration, the load average before and after.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

VARIANTS = ("same-batch", "unicode-dtype", "proba-only", "bench-options", "sorted", "busy")


def read_urls(path: str) -> list[str]:
    """A JSON list of strings (``*.json``: URLs may hold newlines), else one URL per line (UTF-8)."""
    with open(path, encoding="utf-8", newline="\n") as fh:
        if path.endswith(".json"):
            urls = json.load(fh)
        else:
            urls = [line.removesuffix("\n") for line in fh]
    if not urls:
        raise SystemExit(f"{path}: no URLs")
    return urls


def make_session(path: str, bench_options: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if bench_options:
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def batches(urls: list[str], size: int, count: int, same: bool, unicode: bool, by_length: bool):
    """``count`` feeds of ``size`` URLs, each a different slice of ``urls`` (cycled) unless ``same``."""
    out = []
    for i in range(count):
        start = 0 if same else (i * size) % len(urls)
        chunk = [urls[(start + j) % len(urls)] for j in range(size)]
        if by_length:
            chunk.sort(key=len)
        out.append(np.array(chunk, dtype=str if unicode else object).reshape(-1, 1))
    return out


def timed(run, feeds) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) of ``run(feed)`` for each feed, after one untimed call."""
    run(feeds[0])
    wall, cpu = [], []
    for feed in feeds:
        c0, t0 = time.process_time(), time.perf_counter()
        run(feed)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


@contextlib.contextmanager
def competing_load(on: bool):
    """One busy-looping process per CPU for the duration (the 'busy' variant): a loaded machine."""
    if not on:
        yield
        return
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 1)]
    for p in procs:
        p.start()
    try:
        time.sleep(0.5)
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=5)


def measure(path: str, urls: list[str], variant: str | None, calls: int, batch: int, repeats: int) -> dict:
    sess = make_session(path, variant == "bench-options")
    outputs = [o.name for o in sess.get_outputs()]
    if variant == "proba-only":
        outputs = [n for n in outputs if n == "probabilities"]
    name = sess.get_inputs()[0].name
    run = lambda feed: sess.run(outputs, {name: feed})
    unicode, same, by_length = variant == "unicode-dtype", variant == "same-batch", variant == "sorted"
    feeds1, feeds_b = batches(urls, 1, calls, False, unicode, False), batches(urls, batch, repeats, same, unicode, by_length)
    with competing_load(variant == "busy"):
        wall1, cpu1 = timed(run, feeds1)
        wall_b, cpu_b = timed(run, feeds_b)
    return {"variant": variant or "default", "outputs": outputs,
            "b1_p50_ms": round(statistics.median(wall1) * 1e3, 4),
            "b1_p99_ms": round(float(np.percentile(wall1, 99)) * 1e3, 4),
            "b1_cpu_p50_ms": round(statistics.median(cpu1) * 1e3, 4),
            f"b{batch}_urls_per_s_median": round(batch / statistics.median(wall_b), 1),
            f"b{batch}_urls_per_s_best": round(batch / min(wall_b), 1),
            f"b{batch}_urls_per_cpu_s": round(batch / statistics.median(cpu_b), 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True, help="the exported model")
    ap.add_argument("--urls", required=True, help="a JSON list of URLs (*.json) or a text file, one URL per line")
    ap.add_argument("--calls", type=int, default=2000, help="batch-1 calls (each a different URL)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=8, help="batch calls (each a different slice)")
    ap.add_argument("--vary", default="", help=f"comma list of {VARIANTS} (one factor changed at a time)")
    args = ap.parse_args(argv)
    variants = [v for v in args.vary.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown --vary {sorted(unknown)}; choose from {VARIANTS}")
    urls = read_urls(args.urls)
    load_before = os.getloadavg()
    runs = [measure(args.onnx, urls, v, args.calls, args.batch, args.repeats) for v in [None, *variants]]
    json.dump({"harness": "benchmarks/independent_serving.py", "urls": len(urls), "batch": args.batch,
               "calls": args.calls, "repeats": args.repeats, "onnxruntime": ort.__version__,
               "load_average_before": [round(x, 2) for x in load_before],
               "load_average_after": [round(x, 2) for x in os.getloadavg()], "runs": runs}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
