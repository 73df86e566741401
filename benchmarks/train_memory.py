"""Training memory: the train stage alone at k-times data; peak RSS by phase, CPU time, fitted power laws.

    python benchmarks/train_memory.py                        # 1x, 3x, 10x into build/train-memory
    python benchmarks/train_memory.py --factors 1,3 --baseline main   # also measure the code at git ref main
    python benchmarks/bench.py --sections train-memory       # the same, as a bench.py section

k-times data is made the way the ``scaling`` section makes it (benchmarks/_scaling.py: every raw file
scaled with perturbed copies of real rows, same seeds), then the ``prepare`` stage runs on it in a scratch
directory, so the train split grows as it would with k-times raw data. Nothing is written into the
repository's data/ or models/.

Each run is a child process running ``pipeline.stages.train.run``; the parent polls its RSS every
``--interval`` seconds (psutil) and the child marks phases (read, URL split, TF-IDF vocabulary, TF-IDF
transform, logistic regression, lexical features, trees, save) in a file, so every sample is attributed
to a phase. The exact peak is the child's own ``ru_maxrss``. Fits are shortened by default
(``--full-fits`` keeps params.yaml's): memory does not depend on the iteration count (L-BFGS keeps a fixed history,
the trees are a few KB each), time does -- the times here are for shortened fits.
"""
from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a script (python benchmarks/train_memory.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import psutil
import yaml

from benchmarks import _train_child
from benchmarks._common import (
    BENCH_TRAIN_MEMORY,
    LOG,
    MB,
    REPO,
    RESULTS_DIR,
    Log,
    Progress,
    configure_logging,
    load_average,
    repo_params,
    seconds_since,
)
from benchmarks._results import merge_results
from benchmarks._scaling import write_scaled
from pipeline import paths
from pipeline.training.sources import raw_files

CHILD = Path(_train_child.__file__).resolve()
SHORT_FITS = {"logistic_regression": {"max_iter": 30}, "lexical_trees": {"max_iter": 20}}


# --------------------------------------------------------------------------- scaled data
def scaled_workdir(root: Path, factor: int, train_override: dict[str, Any] | None = None,
                   raw_source: Path | None = None, log: Log = LOG.info) -> Path:
    """``root/x<factor>`` with params.yaml and the prepared splits of ``factor``-times raw data.

    Reused when its stamp (factor, raw source, params) matches: making 10x data takes minutes.
    """
    work = root / f"x{factor}"
    params = repo_params({"train": train_override} if train_override else None)
    stamp = {"factor": factor, "raw_source": str(raw_source or REPO / "data/raw"),
             "data": params["data"], "split": params["split"]}
    stamp_path = work / "data-stamp.json"
    if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp and (work / paths.PREPARED).exists():
        (work / paths.PARAMS).write_text(yaml.safe_dump(params, sort_keys=False))
        return work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / paths.PARAMS).write_text(yaml.safe_dump(params, sort_keys=False))
    started = time.perf_counter()
    for i, rel in enumerate(raw_files(params)):
        src = (raw_source / Path(rel).name) if raw_source else REPO / rel
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        if factor == 1:
            shutil.copy2(src, work / rel)
        else:  # the scaling section's seeds: the same k-times data
            write_scaled(src, work / rel, factor, seed=1000 * factor + i)
    log(f"train-memory x{factor}: raw data ready ({time.perf_counter() - started:.0f}s), prepare ...")
    subprocess.run([sys.executable, "-m", "pipeline", "prepare"], cwd=work, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    stamp_path.write_text(json.dumps(stamp))
    return work


# --------------------------------------------------------------------------- the measuring parent
def measure(work: Path, code: Path | None = None, interval: float = 0.02) -> dict[str, Any]:
    """One train-stage run in ``work`` (benchmarks/_train_child.py): exact peak RSS, CPU time, RSS sampled per phase."""
    cmd = [sys.executable, str(CHILD), str(work)] + (["--code", str(code)] if code else [])
    samples: list[tuple[float, int]] = []
    with open(work / "train-stage.log", "w") as log_fh:
        proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": ""})
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                samples.append((time.time(), ps.memory_info().rss))
            time.sleep(interval)
    if proc.returncode:
        raise RuntimeError(f"train stage failed in {work} (rc {proc.returncode}):\n"
                           f"{(work / 'train-stage.log').read_text()[-3000:]}")
    result = json.loads((work / _train_child.RESULT_FILE).read_text())
    result["phases"] = phase_table(_read_marks(work / _train_child.MARKS_FILE), samples)
    result["samples"] = len(samples)
    result["sampled_peak_rss_mb"] = round(max(r for _, r in samples) / MB, 1) if samples else None
    result["load_average_after"] = load_average()
    return result


def _read_marks(path: Path) -> list[tuple[float, str]]:
    return [(float(t), name) for t, name in (line.rstrip("\n").split(" ", 1) for line in path.read_text().splitlines())]


def phase_table(marks: list[tuple[float, str]], samples: list[tuple[float, int]]) -> dict[str, dict[str, Any]]:
    """{phase: {seconds, peak_rss_mb, samples}} in first-seen order; a sample belongs to the latest mark before it."""
    times = [t for t, _ in marks]
    out: dict[str, dict[str, Any]] = {}
    for (t, name), nxt in zip(marks, times[1:] + [times[-1]]):
        out.setdefault(name, {"seconds": 0.0, "peak_rss_mb": 0.0, "samples": 0})["seconds"] += nxt - t
    for t, rss in samples:
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            continue
        p = out[marks[i][1]]
        p["peak_rss_mb"] = max(p["peak_rss_mb"], round(rss / MB, 1))
        p["samples"] += 1
    for p in out.values():
        p["seconds"] = round(p["seconds"], 2)
    return out


# --------------------------------------------------------------------------- fits and projections
def power_law(rows: Sequence[float], values: Sequence[float]) -> dict[str, float] | None:
    """value = a * rows^b, least squares in log-log."""
    x, y = np.log(np.asarray(rows, float)), np.log(np.asarray(values, float))
    if len(x) < 2:
        return None
    b, log_a = np.polyfit(x, y, 1)
    return {"a": float(np.exp(log_a)), "b": float(b)}


def linear(rows: Sequence[float], values: Sequence[float]) -> dict[str, float] | None:
    """value = fixed + per_row * rows, least squares (fixed: interpreter, libraries, model)."""
    if len(rows) < 2:
        return None
    per_row, fixed = np.polyfit(np.asarray(rows, float), np.asarray(values, float), 1)
    return {"fixed": float(fixed), "per_row": float(per_row)}


def _at(fit: dict[str, float], rows: float) -> float:
    return fit["a"] * rows ** fit["b"] if "a" in fit else fit["fixed"] + fit["per_row"] * rows


def projections(runs: list[dict[str, Any]], factors: Sequence[int] = (30, 100), ram_gb: Sequence[int] = (7, 16, 32, 64),
                headroom: float = 0.8) -> dict[str, Any]:
    """Power-law and linear fits of peak RSS and time vs train rows; values at ``factors`` x the 1x rows;
    the largest train split whose projected peak fits in ``headroom`` of each runner's RAM (linear fit)."""
    runs = sorted(runs, key=lambda r: r["rows"])
    rows = [r["rows"] for r in runs]
    base = next((r["rows"] for r in runs if r["factor"] == 1), rows[0])
    out: dict[str, Any] = {"fits": {}, "projected": {}, "max_rows_for_ram": {}, "headroom": headroom,
                           "base_rows": base}
    for key in ("ru_maxrss_mb", "cpu_s", "wall_s"):
        values = [r[key] for r in runs]
        fits = {"power": power_law(rows, values), "linear": linear(rows, values)}
        out["fits"][key] = fits
        out["projected"][key] = {f"{k}x": {kind: round(_at(fit, base * k), 1) for kind, fit in fits.items() if fit}
                                 for k in factors}
    lin = out["fits"]["ru_maxrss_mb"]["linear"]
    if lin and lin["per_row"] > 0:
        for gb in ram_gb:
            out["max_rows_for_ram"][f"{gb} GB"] = int((gb * 1024 * headroom - lin["fixed"]) / lin["per_row"])
    return out


# --------------------------------------------------------------------------- the section
def run_train_memory(factors: Sequence[int] = (1, 3, 10), root: Path = BENCH_TRAIN_MEMORY,
                     train_override: dict[str, Any] | None = SHORT_FITS, raw_source: Path | None = None,
                     baseline: str | None = None, interval: float = 0.02, log: Log = LOG.info,
                     progress: Progress | None = None) -> dict[str, Any]:
    """Measure the train stage at each factor (and the code at git ``baseline`` on the same data);
    ``progress`` gets the section so far after each factor (a long run keeps what it measured)."""
    root.mkdir(parents=True, exist_ok=True)
    code: dict[str, Path | None] = {"current": None}
    if baseline:
        code[baseline] = extract_code(baseline, root / f"code-{baseline.replace('/', '_')}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in code}
    out: dict[str, Any] = {}
    for factor in factors:
        work = scaled_workdir(root, factor, train_override, raw_source, log)
        for name, path in code.items():
            result = {"factor": factor, **measure(work, path, interval)}
            runs[name].append(result)
            log(f"train-memory x{factor} [{name}]: {result['rows']:,} rows, peak {result['ru_maxrss_mb']:,.0f} MB, "
                f"{result['cpu_s']:.0f} CPU s, {result['wall_s']:.0f} s wall")
        out = _section(runs, train_override, interval, baseline)
        if progress and factor != factors[-1]:
            progress({**out, "partial": True})
    return out


def _section(runs: dict[str, list[dict[str, Any]]], train_override: dict[str, Any] | None, interval: float,
             baseline: str | None) -> dict[str, Any]:
    current = sorted(runs["current"], key=lambda r: r["factor"])
    out: dict[str, Any] = {"runs": current, "projections": projections(current), "fit_override": train_override or {},
           "interval_s": interval,
           "note": ("train stage alone (pipeline.stages.train.run) in a child process; exact peak = the child's "
                    "ru_maxrss, per-phase peaks from polling its RSS every "
                    f"{interval * 1000:.0f} ms")}
    if baseline:
        out["baseline"] = {"ref": baseline, "runs": sorted(runs[baseline], key=lambda r: r["factor"])}
    return out


def extract_code(ref: str, dest: Path) -> Path:
    """The ``pipeline`` package as it is at git ``ref`` (to measure before/after on the same data)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref, "pipeline"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factors", default="1,3,10", help="data factors, e.g. 1,3,10")
    ap.add_argument("--workdir", type=Path, default=BENCH_TRAIN_MEMORY, help="scratch dir for scaled data (reused)")
    ap.add_argument("--baseline", default=None, help="also measure the pipeline code at this git ref, same data")
    ap.add_argument("--full-fits", action="store_true", help="the params.yaml iteration counts (slow)")
    ap.add_argument("--interval", type=float, default=0.02, help="RSS polling interval, seconds")
    ap.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where results.json/RESULTS.md go")
    args = ap.parse_args(argv)
    log = configure_logging("train-memory")
    started = time.perf_counter()
    result = run_train_memory(tuple(int(f) for f in args.factors.split(",")), args.workdir,
                              None if args.full_fits else SHORT_FITS, baseline=args.baseline,
                              interval=args.interval, log=log)
    result["section_wall_s"] = seconds_since(started)
    merge_results(args.out_dir, "train-memory", result, smoke=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
