"""Benchmarks: serving speed of the exported model, pipeline scaling, CI overhead, profiles.

    python benchmarks/bench.py                       # everything (make bench), ~1 h on 2 cores
    python benchmarks/bench.py --sections serving,profile
    python benchmarks/bench.py --smoke --out-dir /tmp/b   # tiny sizes, the test suite runs this

Sections (``--sections``, comma separated):
  serving   ONNX (onnxruntime) vs the same fitted sklearn estimator on the same URLs: batch-1 latency
            p50/p99, batch-1024 throughput at 1 and 2 threads, load time, peak RSS; each member alone;
            the product path (Detector); benchmarks/independent_serving.py in a fresh process, with
            one factor changed at a time (the reconciliation of the two harnesses).
  levers    speed levers: onnxruntime graph-optimisation level, exact graph rewrites (URL split and path
            Tokenizer computed once, idf folded into the TfIdfVectorizer), TF-IDF vocabulary sizes (host,
            path), gradient-boosting iterations and leaves -- each with ROC AUC and TPR@FPR=1e-2 on the
            test split when it changes the model.
  candidates the shortlisted configurations (shipped; exact graph rewrites; fewer/smaller trees, a smaller
            vocabulary), timed in interleaved rounds so a busy machine penalises all alike, with their
            test accuracy.
  profile   onnxruntime per-node profile of the ensemble (by member and op), cProfile of the slowest stage.
  scaling   `dvc repro --force` wall time and peak RSS per stage at 1x, 3x, 10x data (scratch copies).
  ci        no-op `dvc repro` and a params change that only affects evaluation.
  monitor   `python -m pipeline monitor` on generated Parquet logs of 10M and 100M rows (DuckDB): wall/CPU
            time and peak RSS of the process tree; Spark local vs DuckDB on a ~1M-row log (time, identical
            monitor.json and rejects.csv). Logs are generated into a scratch folder (never committed).
  batch     `score --file --output x.parquet` (a subprocess) on 10M generated URLs: URLs/s,
            per core, peak RSS of the process tree; process pool vs threads vs intra-op vs 1 worker on 1M.
  train-memory  the train stage alone at 1x, 3x, 10x data: peak RSS (by phase), CPU time, power-law and
            linear fits projected to 100x (benchmarks/train_memory.py; --train-baseline REF also measures
            the code at a git ref on the same data).

Results are merged into ``<out-dir>/results.json`` (raw numbers, one key per section, so sections can
be run separately) and rendered to ``<out-dir>/RESULTS.md`` with machine facts and date.
Numbers live here, never in timed unit tests; tests/test_bench_smoke.py only checks this still runs.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if not __package__:  # run as a script (python benchmarks/bench.py): make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from benchmarks import _monitor_scale, _scaling, train_memory
from benchmarks._batch_scoring import run_batch
from benchmarks._common import (
    BENCH_BATCH,
    BENCH_TRAIN_MEMORY,
    REPO,
    RESULTS_DIR,
    Log,
    configure_logging,
    repo_params,
    seconds_since,
)
from benchmarks._inputs import Inputs, load_inputs
from benchmarks._levers import run_candidates, run_levers
from benchmarks._profile import run_profile
from benchmarks._results import merge_results
from benchmarks._serving import run_serving
from benchmarks._smoke import SMOKE_TRAIN, smoke_pipeline_params, smoke_raw
from pipeline import paths

SECTIONS = ("serving", "levers", "candidates", "profile", "scaling", "ci", "train-memory", "monitor", "batch")
SERVING_SECTIONS: dict[str, Callable[[Inputs, dict[str, Any], Log], dict[str, Any]]] = {
    "serving": run_serving, "levers": run_levers, "profile": run_profile, "candidates": run_candidates}


# --------------------------------------------------------------------------- configuration
# vocab_sizes: (host_features, path_features); tree_variants: (max_iter, max_leaf_nodes);
# candidates: (vocab or None, trees or None), None = the shipped member.
FULL = {
    "latency_calls": 2000, "latency_calls_sklearn": 300, "batch": 1024, "throughput_repeats": 7,
    "throughput_repeats_sklearn": 3, "threads": (1, 2), "scaling_factors": (1, 3, 10),
    "vocab_sizes": ((6000, 4000), (3000, 2000), (1500, 1000), (12000, 8000, 3)),
    "tree_variants": ((300, 63), (150, 63), (150, 31), (100, 31), (60, 15)),
    "profile_batches": 30, "candidates": ((None, (150, 31)), (None, (100, 31)), ((6000, 4000), (150, 31))),
    "monitor_rows": (10_000_000, 100_000_000), "monitor_engine_rows": 1_000_000,
    "independent_calls": 2000, "independent_repeats": 8, "detector_repeats": 5,
    "batch_compare_urls": 1_000_000, "batch_urls": 10_000_000,
    "candidate_rounds": 5, "candidate_calls": 500, "train_memory_factors": (1, 3, 10),
}
SMOKE = {
    "latency_calls": 30, "latency_calls_sklearn": 5, "batch": 64, "throughput_repeats": 2,
    "throughput_repeats_sklearn": 1, "threads": (1, 2), "scaling_factors": (1, 2),
    "vocab_sizes": ((150, 100),), "tree_variants": ((5, 7),),
    "profile_batches": 3, "candidates": ((None, (5, 7)),), "candidate_rounds": 2, "candidate_calls": 20,
    "monitor_rows": (20_000,), "monitor_engine_rows": 5_000,
    "independent_calls": 20, "independent_repeats": 2, "detector_repeats": 1,
    "batch_compare_urls": 3000, "batch_urls": 6000,
    "train_memory_factors": (1, 2),
}


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {SECTIONS}")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (what the test suite runs)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where results.json and RESULTS.md go")
    ap.add_argument("--model", type=Path, default=REPO / paths.MODEL)
    ap.add_argument("--onnx", type=Path, default=REPO / paths.ONNX)
    ap.add_argument("--prepared", type=Path, default=REPO / paths.PREPARED)
    ap.add_argument("--baseline-onnx", type=Path, default=None,
                    help="serving: also time this graph (e.g. an export by an older checkout) in the reconciliation")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch dir for scaling/ci (default: a temp dir)")
    ap.add_argument("--factors", default=None, help="data factors for scaling, e.g. 1,3,10 (<1: subsample)")
    ap.add_argument("--train-baseline", default=None,
                    help="train-memory: also measure the pipeline code at this git ref on the same data")
    ap.add_argument("--keep-runs", action="store_true",
                    help="scaling: keep factors already in results.json that this run does not repeat")
    args = ap.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    cfg = dict(SMOKE if args.smoke else FULL)
    if args.factors:
        cfg["scaling_factors"] = tuple(float(f) if "." in f else int(f) for f in args.factors.split(","))
    log = configure_logging("bench")
    inputs = None
    if set(SERVING_SECTIONS) & set(sections):
        inputs = load_inputs(args.model, args.onnx, args.prepared, args.smoke, args.baseline_onnx)
    for section in sections:
        log(f"section {section} ...")
        started = time.perf_counter()
        if section in ("scaling", "ci"):
            result = run_pipeline_section(section, args, cfg, log)
        elif section == "monitor":
            result = run_monitor_section(args, cfg, log)
        elif section == "batch":
            result = run_batch_section(args, cfg, log)
        elif section == "train-memory":
            result = run_train_memory_section(args, cfg, log)
        else:
            assert inputs is not None  # loaded above for every serving section
            result = SERVING_SECTIONS[section](inputs, cfg, log)
        result["section_wall_s"] = seconds_since(started)
        merge_results(args.out_dir, section, result, args.smoke)
        log(f"section {section} done in {result['section_wall_s']:.0f}s -> {args.out_dir / 'RESULTS.md'}")
    return 0


def run_pipeline_section(section: str, args: argparse.Namespace, cfg: dict[str, Any], log: Log) -> dict[str, Any]:
    """``scaling`` or ``ci`` (benchmarks/_scaling.py) in --workdir or a temporary directory."""
    params = repo_params()
    override = smoke_pipeline_params(params) if args.smoke else None
    with contextlib.ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        root.mkdir(parents=True, exist_ok=True)
        raw = smoke_raw(root / "smoke-raw", params) if args.smoke else None
        if section == "scaling":
            return _scaling_section(root, args, cfg, override, raw, log)
        built = root / "scaling" / "x1"  # reuse the 1x scaling run's work dir: its cache is complete
        work = built if (built / paths.DVC_LOCK).exists() and (built / "models").exists() else None
        return _scaling.run_ci(root / "ci", override, raw, log, work=work, noop_runs=1 if args.smoke else 3)


def _scaling_section(root: Path, args: argparse.Namespace, cfg: dict[str, Any], override: dict[str, Any] | None,
                     raw: Path | None, log: Log) -> dict[str, Any]:
    previous: list[dict[str, Any]] = []
    results = args.out_dir / "results.json"
    if args.keep_runs and results.exists():  # factors measured earlier (e.g. a long 10x run)
        previous = json.loads(results.read_text())["sections"].get("scaling", {}).get("runs", [])

    def progress(partial: dict[str, Any]) -> None:  # keep what is measured even if a long factor is interrupted
        measured = {x["factor"] for x in partial["runs"]}
        runs = partial["runs"] + [r for r in previous if r["factor"] not in measured]
        merge_results(args.out_dir, "scaling", {**partial, "runs": runs, "note": "partial"}, args.smoke)
    return _scaling.run_scaling(root / "scaling", cfg["scaling_factors"], override, raw, log, progress, previous)


def run_monitor_section(args: argparse.Namespace, cfg: dict[str, Any], log: Log) -> dict[str, Any]:
    """The monitor at 10M and 100M rows, and Spark local vs DuckDB (benchmarks/_monitor_scale.py)."""
    work = args.workdir / "monitor" if args.workdir else _monitor_scale.WORK
    return _monitor_scale.run_section(cfg, log, work)


def run_batch_section(args: argparse.Namespace, cfg: dict[str, Any], log: Log) -> dict[str, Any]:
    """Batch scoring of generated URL files (the BENCH_BATCH scratch folder, or --workdir) with the exported model."""
    urls = pd.read_parquet(args.prepared / paths.TEST.name, columns=["url"])["url"].tolist()
    workdir = args.workdir / BENCH_BATCH.name if args.workdir else BENCH_BATCH
    return run_batch(args.onnx, urls, workdir, cfg, log)


def run_train_memory_section(args: argparse.Namespace, cfg: dict[str, Any], log: Log) -> dict[str, Any]:
    """The train stage alone at each factor (benchmarks/train_memory.py); scaled data kept for reuse."""
    with contextlib.ExitStack() as stack:
        if args.workdir or args.smoke:
            scratch = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
            root = scratch / BENCH_TRAIN_MEMORY.name
        else:
            root = BENCH_TRAIN_MEMORY
        raw, override = None, train_memory.SHORT_FITS
        if args.smoke:
            raw, override = smoke_raw(root / "smoke-raw", repo_params()), SMOKE_TRAIN
        factors = tuple(int(f) for f in args.factors.split(",")) if args.factors else cfg["train_memory_factors"]
        return train_memory.run_train_memory(
            factors, root, override, raw, args.train_baseline, log=log,
            progress=lambda partial: merge_results(args.out_dir, "train-memory", partial, args.smoke))


if __name__ == "__main__":
    sys.exit(main())
