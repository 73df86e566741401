"""Batch scoring at scale: `score --file urls.txt --output x.parquet` timed as a user runs it.

The input is generated here (never committed): the test split's URLs, cycled to N lines, in
the BENCH_BATCH scratch folder (pipeline/paths.py). Each run is a subprocess of the product's command line; a poller sums the RSS
of its process tree (the scorer and its workers; shared library pages are counted once per process,
so this is an upper bound) every 0.2 s, and CPU time is the children's rusage (workers included: the
scorer waits for them). The parallel modes are compared on the same smaller file in the same run, so
that a busy machine penalises all alike; then the default mode scores the big file.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import Log
from benchmarks._process_tree import TreePoller
from phishing_url_detector.batch import DEFAULT_PARALLEL, default_workers

MODES = (("processes", None), ("threads", None), ("intra-op", None), ("single", 1))  # (parallel, workers)


def url_file(path: Path, n: int, urls: list[str]) -> Path:
    """``n`` lines cycling through ``urls`` (reused when it already has n lines: 10M lines take a while)."""
    marker = path.with_name(path.name + ".lines")
    if path.exists() and marker.exists() and marker.read_text().strip() == str(n):
        return path
    urls = [u for u in urls if u and "\n" not in u and "\r" not in u]
    block = ("\n".join(urls) + "\n").encode("utf-8", "surrogateescape")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.writelines(block for _ in range(n // len(urls)))
        rest = n % len(urls)
        if rest:
            fh.write(("\n".join(urls[:rest]) + "\n").encode("utf-8", "surrogateescape"))
    marker.write_text(f"{n}\n")
    return path


def run_score(onnx: Path, src: Path, out: Path, n: int, parallel: str, workers: int | None) -> dict[str, Any]:
    """One `phishing-url-detector score --file src --output out` run: wall, CPU, peak RSS, rows."""
    cmd = [sys.executable, "-m", "phishing_url_detector", "score", "--allow-unverified", "--model", str(onnx),
           "--file", str(src), "--output", str(out), "--json"]
    if workers:
        cmd += ["--workers", str(workers)]
    if parallel != "single":
        cmd += ["--parallel", parallel]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreePoller(proc.pid, interval=0.2) as peak:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {proc.returncode}\n{stderr[-3000:]}")
    summary = json.loads(stdout)["batch"]
    if summary["rows"] != n or summary["errors"]:
        raise RuntimeError(f"expected {n} rows and no errors, got {summary}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    used = summary["workers"]
    out.unlink()  # a scratch file: only its row count mattered
    return {"mode": parallel, "workers": used, "urls": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "scoring_s": round(summary["seconds"], 2), "urls_per_s": round(n / wall),
            "urls_per_s_per_core": round(n / wall / min(used, os.cpu_count() or 1)),
            "urls_per_cpu_s": round(n / cpu), "peak_rss_tree_mb": round(peak.peak / 2**20, 1),
            "processes": peak.processes, "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2)}


def run_batch(onnx: Path, urls: list[str], workdir: Path, cfg: dict[str, Any], log: Log) -> dict[str, Any]:
    """The ``batch`` section: every mode on ``batch_compare_urls``, the default on ``batch_urls``."""
    compare_n, big_n = cfg["batch_compare_urls"], cfg["batch_urls"]
    small = url_file(workdir / f"urls-{compare_n}.txt", compare_n, urls)
    runs = []
    for parallel, workers in MODES:
        log(f"batch: {compare_n:,} URLs, {parallel}{f' x{workers}' if workers else ''} ...")
        runs.append(run_score(onnx, small, workdir / "scores.parquet", compare_n, parallel, workers))
        log(f"batch: {runs[-1]['urls_per_s']:,} URLs/s, peak RSS {runs[-1]['peak_rss_tree_mb']:,.0f} MB")
    log(f"batch: writing {big_n:,} URLs ...")
    big = url_file(workdir / f"urls-{big_n}.txt", big_n, urls)
    log(f"batch: {big_n:,} URLs, {DEFAULT_PARALLEL} ...")
    large = run_score(onnx, big, workdir / "scores.parquet", big_n, DEFAULT_PARALLEL, None)
    log(f"batch: {large['urls_per_s']:,} URLs/s, peak RSS {large['peak_rss_tree_mb']:,.0f} MB")
    fastest = max(runs, key=lambda r: r["urls_per_s"])
    return {"compare": runs, "large": large, "default_mode": DEFAULT_PARALLEL, "fastest_mode": fastest["mode"],
            "cores": default_workers(), "input_bytes": big.stat().st_size,
            "note": f"input: the test split's {len(urls):,} URLs cycled; output Parquet; chunks of 16,384 rows, "
                    "at most 2 per worker in flight"}
