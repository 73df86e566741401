#!/usr/bin/env python
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
            monitor.json and rejects.csv). Logs are generated into build/monitor-bench/ (never committed).
  batch     `score --file --output x.parquet` (a subprocess) on 10M URLs generated into build/: URLs/s,
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
import csv
import datetime as dt
import fcntl
import gzip
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

SECTIONS = ("serving", "levers", "candidates", "profile", "scaling", "ci", "train-memory", "monitor", "batch")
DEFAULT_OUT = REPO / "benchmarks"


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
# A small model for --smoke (params['train'] overrides): fits in seconds on a few thousand URLs.
SMOKE_TRAIN = {"char_tfidf": {"host_features": 300, "path_features": 200, "min_df": 2},
               "logistic_regression": {"max_iter": 300},
               "lexical_trees": {"max_iter": 20, "max_leaf_nodes": 15, "min_samples_leaf": 5}}


def smoke_train_params(train: dict) -> dict:
    """``params['train']`` shrunk for smoke runs."""
    from _scaling import merged

    return merged(train, SMOKE_TRAIN)


def smoke_pipeline_params(params: dict) -> dict:
    """params.yaml overrides for --smoke scaling/ci runs (a few hundred raw rows per source): a small
    model, small refits (one backtest cut-off, one month ahead), few bootstrap resamples."""
    refits = {"max_train_rows": 1000, "n_jobs": 1}
    return {"train": SMOKE_TRAIN,
            "leave_one_source_out": {**refits, "max_test_rows": 500},
            "backtest": {**refits, "cutoffs": params["backtest"]["cutoffs"][-1:], "horizon_months": 1},
            "evaluate": {"bootstrap_resamples": 10},
            "export": {"parity_batch_sizes": [1, 64]}}


# --------------------------------------------------------------------------- machine facts
def machine_facts() -> dict:
    from importlib import metadata

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError):
        kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
        mem_gb = round(kb / 2**20, 1)
    libs = {}
    for name in ("numpy", "scikit-learn", "onnx", "onnxruntime", "skl2onnx", "dvc", "pandas"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            libs[name] = metadata.version(name)
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip())
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "host": platform.node(),
            "cpu": cpu, "logical_cpus": os.cpu_count(), "memory_gb": mem_gb, "os": platform.platform(),
            "python": platform.python_version(), "libraries": libs,
            "git": f"{commit}{' (dirty)' if dirty else ''}", "load_average": [round(x, 2) for x in os.getloadavg()]}


# --------------------------------------------------------------------------- results file
@contextlib.contextmanager
def _locked(path: Path):
    """Serialise writers of results.json (sections may run in parallel) by locking its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def merge_results(out_dir: Path, section: str, payload: dict, smoke: bool) -> dict:
    """Store one section's numbers in results.json (other sections are kept) and re-render RESULTS.md."""
    path = out_dir / "results.json"
    with _locked(path):
        doc = json.loads(path.read_text()) if path.exists() else {"sections": {}}
        payload = {**payload, "machine": machine_facts(), "smoke": smoke}
        doc["sections"][section] = payload
        doc["updated"] = payload["machine"]["date"]
        path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=_json_default) + "\n")
        from _report import render

        (out_dir / "RESULTS.md").write_text(render(doc))
    return doc


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(type(o))


# --------------------------------------------------------------------------- CLI
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {SECTIONS}")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (what the test suite runs)")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where results.json and RESULTS.md go")
    ap.add_argument("--model", type=Path, default=REPO / "models/model.joblib")
    ap.add_argument("--onnx", type=Path, default=REPO / "dist/phishing-url-detector.onnx")
    ap.add_argument("--prepared", type=Path, default=REPO / "data/prepared")
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
    log = lambda msg: print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)

    inputs = None
    if {"serving", "levers", "candidates", "profile"} & set(sections):
        inputs = load_inputs(args, cfg)
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
            result = SECTION_FUNCS[section](inputs, cfg, log)
        result["section_wall_s"] = round(time.perf_counter() - started, 1)
        merge_results(args.out_dir, section, result, args.smoke)
        log(f"section {section} done in {result['section_wall_s']:.0f}s -> {args.out_dir / 'RESULTS.md'}")
    return 0


def run_pipeline_section(section: str, args, cfg: dict, log) -> dict:
    import _scaling

    from pipeline.common import load_params

    params = load_params(REPO / "params.yaml")
    override = smoke_pipeline_params(params) if args.smoke else None
    with contextlib.ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        root.mkdir(parents=True, exist_ok=True)
        raw = smoke_raw(root / "smoke-raw", params) if args.smoke else None
        if section == "scaling":
            previous = []
            results = args.out_dir / "results.json"
            if args.keep_runs and results.exists():  # factors measured earlier (e.g. a long 10x run)
                previous = json.loads(results.read_text())["sections"].get("scaling", {}).get("runs", [])

            def progress(partial):  # keep what is measured even if a long factor is interrupted
                merge_results(args.out_dir, "scaling", {**partial, "runs": partial["runs"] + [
                    r for r in previous if r["factor"] not in {x["factor"] for x in partial["runs"]}],
                    "note": "partial"}, args.smoke)
            return _scaling.run_scaling(root / "scaling", cfg["scaling_factors"], override, raw, log, progress,
                                        previous)
        built = root / "scaling" / "x1"  # reuse the 1x scaling run's work dir: its cache is complete
        work = built if (built / "dvc.lock").exists() and (built / "models").exists() else None
        return _scaling.run_ci(root / "ci", override, raw, log, work=work, noop_runs=1 if args.smoke else 3)


def run_monitor_section(args, cfg: dict, log) -> dict:
    """The monitor at 10M and 100M rows, and Spark local vs DuckDB (benchmarks/_monitor_scale.py)."""
    import _monitor_scale

    work = args.workdir / "monitor" if args.workdir else _monitor_scale.WORK
    return _monitor_scale.run_section(cfg, log, work)
def run_batch_section(args, cfg: dict, log) -> dict:
    """Batch scoring of generated URL files (build/bench-batch/, or --workdir) with the exported model."""
    import pandas as pd
    from _batch_scoring import run_batch

    urls = pd.read_parquet(args.prepared / "test.parquet", columns=["url"])["url"].tolist()
    workdir = (args.workdir or REPO / "build") / "bench-batch"
    return run_batch(args.onnx, urls, workdir, cfg, log)
def run_train_memory_section(args, cfg: dict, log) -> dict:
    """The train stage alone at each factor (benchmarks/train_memory.py); scaled data kept in build/ for reuse."""
    import train_memory

    with contextlib.ExitStack() as stack:
        if args.workdir or args.smoke:
            root = (args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))) / "train-memory"
        else:
            root = train_memory.DEFAULT_WORKDIR
        raw, override = None, train_memory.SHORT_FITS
        if args.smoke:
            from pipeline.common import load_params

            raw, override = smoke_raw(root / "smoke-raw", load_params(REPO / "params.yaml")), SMOKE_TRAIN
        factors = tuple(int(f) for f in args.factors.split(",")) if args.factors else cfg["train_memory_factors"]
        return train_memory.run_train_memory(
            factors, root, override, raw, args.train_baseline, log=log,
            progress=lambda partial: merge_results(args.out_dir, "train-memory", partial, args.smoke))


def smoke_raw(dest: Path, params: dict, per_label: int = 150) -> Path:
    """A tiny version of every raw file params.yaml names: a seeded sample of up to ``per_label`` rows per label."""
    from pipeline.training.sources import out_of_source, training_sources

    dest.mkdir(parents=True, exist_ok=True)
    for source in [*training_sources(params), out_of_source(params)]:
        for rel in source.files:
            name = Path(rel).name
            header, rows = _read_csv(_smoke_source(source.name, rel))
            by_label = {}
            for row in rows:
                by_label.setdefault(row[header.index("label")], []).append(row)
            rng = random.Random(name)
            picked = [row for label in sorted(by_label)
                      for row in rng.sample(by_label[label], min(per_label, len(by_label[label])))]
            with gzip.open(dest / name, "wt", encoding="utf-8", newline="") as fh:
                csv.writer(fh, lineterminator="\n").writerows([header, *picked])
    return dest


def _smoke_source(source: str | None, rel: str) -> Path:
    """The tests/data sample of raw file ``rel`` (``<file>_sample.csv``, else ``<source>_sample.csv``: a monthly
    shard `ingest` added has no sample of its own, and its source's stands in) when there is one, else the
    raw file itself (DVC-pulled)."""
    samples = REPO / "tests" / "data"
    candidates = [samples / Path(rel).name.replace(".csv.gz", "_sample.csv"),
                  *([samples / f"{source}_sample.csv"] if source else []), REPO / rel]
    for path in candidates:
        if path.exists():
            return path
    raise FileNotFoundError(f"--smoke needs one of {[str(c.relative_to(REPO)) for c in candidates]} "
                            f"(`dvc pull {rel}.dvc`)")


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        header, *rows = csv.reader(fh)
    return header, rows


def load_inputs(args, cfg):
    """The shipped model, its ONNX export and URLs from the prepared test split."""
    import joblib
    import pandas as pd
    import yaml
    from _serving import Inputs

    test = pd.read_parquet(args.prepared / "test.parquet", columns=["url", "label"])
    train = pd.read_parquet(args.prepared / "train.parquet", columns=["url", "label"])
    future = pd.read_parquet(args.prepared / "future.parquet", columns=["url", "label"])
    n = 256 if args.smoke else 4096
    urls = test["url"].sample(n=min(n, len(test)), random_state=0).to_numpy(dtype=object)
    model = joblib.load(args.model)
    params = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    if args.smoke:  # levers retrain on a slice
        train = train.sample(n=min(3000, len(train)), random_state=0)
        test = test.sample(n=min(2000, len(test)), random_state=0)
        future = future.sample(n=min(1000, len(future)), random_state=0)
        params = smoke_train_params(params)
    return Inputs(model=model, onnx_bytes=args.onnx.read_bytes(), urls=urls, train=train, test=test,
                  train_params=params, model_path=args.model, onnx_path=args.onnx,
                  baseline_onnx=args.baseline_onnx.read_bytes() if args.baseline_onnx else None, future=future)


def _serving(inputs, cfg, log):
    from _serving import run_serving

    return run_serving(inputs, cfg, log)


def _levers(inputs, cfg, log):
    from _serving import run_levers

    return run_levers(inputs, cfg, log)


def _profile(inputs, cfg, log):
    from _serving import run_profile

    return run_profile(inputs, cfg, log)


def _candidates(inputs, cfg, log):
    from _serving import run_candidates

    return run_candidates(inputs, cfg, log)


SECTION_FUNCS: dict = {"serving": _serving, "levers": _levers, "profile": _profile, "candidates": _candidates}

if __name__ == "__main__":
    sys.exit(main())
