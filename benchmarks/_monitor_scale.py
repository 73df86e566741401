"""The monitor at production volume: an N-row Parquet log generated here, the monitor run on it
as a subprocess, peak RSS of its whole process tree (a Spark JVM included) and wall/CPU time.

    python benchmarks/_monitor_scale.py --rows 10000000            # one DuckDB run
    python benchmarks/bench.py --sections monitor                  # 10M, 100M, Spark vs DuckDB

Logs are written under the BENCH_MONITOR scratch folder (pipeline/paths.py; gitignored) and reused when the
same size exists.
"""
from __future__ import annotations

import argparse
import filecmp
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a script (python benchmarks/_monitor_scale.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks._common import (
    BENCH_MONITOR,
    LOG,
    REPO,
    Log,
    configure_logging,
    load_average,
)
from benchmarks._process_tree import TreePoller

WORK = BENCH_MONITOR
CHUNK = 1_000_000
START_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
YEAR_US = 366 * 86_400_000_000
PARAMS = ("monitor:\n  releases: []\n  window: {window}\n  logs:\n    max_rows: 1000000000000\n"
          "    max_decompressed_bytes: 1000000000000000\n")


def generate(rows: int, path: Path, seed: int = 0, mixed: bool = False) -> Path:
    """``rows`` scored URLs over 2024 in time order: timestamp (UTC, microseconds), model_version,
    score (float32, as the product logs it); 1.1.0 shadows 1.0.0 from June and replaces it in
    September. ``mixed`` adds a verdict column and a few bad rows (for the engine comparison)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fields = [("timestamp", pa.timestamp("us", tz="UTC")), ("model_version", pa.string()), ("score", pa.float32())]
    if mixed:
        fields.append(("verdict", pa.int8()))
    schema = pa.schema(fields)
    with pq.ParquetWriter(tmp, schema) as writer:
        for lo in range(0, rows, CHUNK):
            n = min(CHUNK, rows - lo)
            ts = START_US + (np.arange(lo, lo + n, dtype=np.int64) * (YEAR_US // max(rows, 1)))
            frac = (ts - START_US) / YEAR_US
            new = np.where(frac < 0.42, False, np.where(frac < 0.67, rng.random(n) < 0.3, True))
            flagged = rng.random(n) < np.where(new, 0.12, 0.10)
            score = np.where(flagged, 0.5 + 0.5 * rng.beta(2, 2, n), 0.5 * rng.beta(1, 4, n)).astype(np.float32)
            columns = [pa.array(ts, pa.timestamp("us", tz="UTC")),
                       pa.DictionaryArray.from_arrays(new.astype(np.int8), ["1.0.0", "1.1.0"]).cast(pa.string()),
                       pa.array(score)]
            if mixed:
                verdict = flagged.astype(np.int8)
                verdict[rng.random(n) < 0.001] = 7  # "verdict not 0/1"
                columns.append(pa.array(verdict))
            writer.write_table(pa.table(columns, schema=schema))
    tmp.replace(path)
    return path


def run_monitor(log: Path, out: Path, engine: str = "duckdb", window: str = "7D", poll_s: float = 0.1,
                extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """``python -m pipeline monitor`` on ``log``; wall time, CPU time and peak RSS of its process tree."""
    out.mkdir(parents=True, exist_ok=True)
    params = out / "params.yaml"
    params.write_text(PARAMS.format(window=window))
    cmd = [sys.executable, "-m", "pipeline", "monitor", "--log", str(log), "--out", str(out / "result"),
           "--params", str(params), "--threshold", "0.5", "--engine", engine, *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreePoller(proc.pid, interval=poll_s) as tree:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"monitor failed ({proc.returncode}): {stderr[-2000:]}")
    return {"engine": engine, "window": window, "exit_code": proc.returncode, "wall_s": round(wall, 2),
            "cpu_s": round(tree.cpu_s, 2), "peak_rss_mb": round(tree.peak / 2**20, 1),
            "processes": tree.processes, "summary": stdout.strip().splitlines()[-1] if stdout.strip() else ""}


def log_for(rows: int, mixed: bool = False, work: Path = WORK) -> Path:
    """The generated log of ``rows`` rows (made once, kept in build/)."""
    path = work / f"log-{rows}{'-mixed' if mixed else ''}.parquet"
    if not path.exists():
        generate(rows, path, mixed=mixed)
    return path


def scale_run(rows: int, log: Log = LOG.info, work: Path = WORK) -> dict[str, Any]:
    """The DuckDB monitor on ``rows`` rows, with the log's size."""
    path = log_for(rows, work=work)
    log(f"monitor: {rows:,} rows ({path.stat().st_size / 2**20:,.0f} MB Parquet) on duckdb")
    result = run_monitor(path, work / f"out-{rows}")
    return {"rows": rows, "log_mb": round(path.stat().st_size / 2**20, 1), **result,
            "load_average_after": load_average()}


def engines_run(rows: int, windows: tuple[str, ...] = ("7D", "1M"), log: Log = LOG.info,
                work: Path = WORK) -> dict[str, Any]:
    """DuckDB and Spark local on the same mixed log: time, and whether monitor.json and rejects.csv
    are byte-identical."""
    path = log_for(rows, mixed=True, work=work)
    runs: list[dict[str, Any]] = []
    same: dict[str, dict[str, bool]] = {}
    outs: dict[str, Path] = {}
    for window in windows:
        for engine in ("duckdb", "spark"):
            log(f"monitor: {rows:,} rows, window {window}, {engine}")
            out = work / f"engines-{rows}-{window}-{engine}"
            runs.append({"rows": rows, **run_monitor(path, out, engine, window)})
            outs[engine] = out / "result"
        same[window] = {name: filecmp.cmp(outs["duckdb"] / name, outs["spark"] / name, shallow=False)
                        for name in ("monitor.json", "rejects.csv")}
    rejected = json.loads((outs["duckdb"] / "monitor.json").read_text())["input"]["rows_rejected"]
    return {"rows": rows, "rows_rejected": rejected, "runs": runs, "identical": same,
            "load_average_after": load_average()}


def run_section(cfg: dict[str, Any], log: Log = LOG.info, work: Path = WORK) -> dict[str, Any]:
    """bench.py's ``monitor`` section: the DuckDB sizes, then Spark vs DuckDB."""
    scale = [scale_run(rows, log, work) for rows in cfg["monitor_rows"]]
    engines = engines_run(cfg["monitor_engine_rows"], log=log, work=work)
    return {"scale": scale, "engines": engines,
            "bar": {"rows": 100_000_000, "peak_rss_mb": 2048, "wall_s": 60}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--engines", action="store_true", help="compare Spark local with DuckDB instead")
    args = ap.parse_args(argv)
    log = configure_logging("monitor-bench")
    result = engines_run(args.rows, log=log) if args.engines else scale_run(args.rows, log)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
