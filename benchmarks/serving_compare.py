"""Serving speed of two exported models in one run: batch-1024 URLs/s on one core, interleaved rounds.

A model change must not make serving slower. Two numbers from two days on a shared 2-core machine say
little, so both files are timed here in the same process, round after round (A, B, A, B ...), on the
same batches of test URLs, each batch sorted by length as the client sorts it; the ratio of the medians
is the result.

    python benchmarks/serving_compare.py --before /tmp/old.onnx --after dist/phishing-url-detector.onnx \\
        --urls data/prepared/test.parquet --out benchmarks/results-serving-compare.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

BATCH = 1024


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def batches(urls: list[str], rounds: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        picked = sorted((urls[i] for i in rng.choice(len(urls), BATCH, replace=False)), key=len)
        out.append(np.array(picked, dtype=object).reshape(-1, 1))
    return out


def rate(sess: ort.InferenceSession, feed: np.ndarray) -> float:
    started = time.perf_counter()
    sess.run(None, {"url": feed})
    return len(feed) / (time.perf_counter() - started)


def compare(before: Path, after: Path, urls: list[str], rounds: int, seed: int) -> dict:
    sessions = {"before": session(before), "after": session(after)}
    feeds = batches(urls, rounds, seed)
    for sess in sessions.values():  # warm-up, not timed
        rate(sess, feeds[0])
    rates: dict[str, list[float]] = {"before": [], "after": []}
    for i, feed in enumerate(feeds):
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        for name in order:
            rates[name].append(rate(sessions[name], feed))
    median = {k: statistics.median(v) for k, v in rates.items()}
    return {"batch": BATCH, "rounds": rounds, "threads": 1,
            "urls_per_second": {k: round(v) for k, v in median.items()},
            "min_max": {k: [round(min(v)), round(max(v))] for k, v in rates.items()},
            "after_over_before": round(median["after"] / median["before"], 3),
            "files": {"before": str(before), "after": str(after)},
            "sizes_bytes": {"before": before.stat().st_size, "after": after.stat().st_size},
            "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "load_average": list(os.getloadavg())}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--urls", type=Path, default=Path("data/prepared/test.parquet"))
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    urls = pd.read_parquet(args.urls, columns=["url"])["url"].tolist()
    result = compare(args.before, args.after, urls, args.rounds, args.seed)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
