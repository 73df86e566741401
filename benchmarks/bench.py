#!/usr/bin/env python
"""Benchmarks: serving speed of the exported model, pipeline scaling, CI overhead, profiles.

    python benchmarks/bench.py                       # everything (make bench), ~1 h on 2 cores
    python benchmarks/bench.py --sections serving,profile
    python benchmarks/bench.py --smoke --out-dir /tmp/b   # tiny sizes, the test suite runs this

Sections (``--sections``, comma separated):
  serving   ONNX (onnxruntime) vs the same fitted sklearn estimator on the same URLs: batch-1 latency
            p50/p99, batch-1024 throughput at 1 and 2 threads, load time, peak RSS; each member alone.
  levers    speed levers: onnxruntime graph-optimisation level, graph rewrites (dedupe the shared
            character Tokenizer, Normalizer+LinearClassifier -> MatMul), vocabulary size, tree count and
            depth -- each with ROC AUC and TPR@FPR=1e-2 on the test split when it changes the model.
  candidates the shortlisted configurations (shipped; exact graph rewrites; smaller forests), timed in
            interleaved rounds so a busy machine penalises all alike, with their test accuracy.
  profile   onnxruntime per-node profile of the ensemble (by member and op), cProfile of the slowest stage.
  scaling   `dvc repro --force` wall time and peak RSS per stage at 1x, 3x, 10x data (scratch copies).
  ci        no-op `dvc repro` and a params change that only affects evaluation.

Results are merged into ``<out-dir>/results.json`` (raw numbers, one key per section, so sections can
be run separately) and rendered to ``<out-dir>/RESULTS.md`` with machine facts and date.
Numbers live here, never in timed unit tests; tests/test_bench_smoke.py only checks this still runs.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

SECTIONS = ("serving", "levers", "candidates", "profile", "scaling", "ci")
DEFAULT_OUT = REPO / "benchmarks"


# --------------------------------------------------------------------------- configuration
FULL = {
    "latency_calls": 2000, "latency_calls_sklearn": 300, "batch": 1024, "throughput_repeats": 7,
    "throughput_repeats_sklearn": 3, "threads": (1, 2), "scaling_factors": (1, 3, 10),
    "vocab_sizes": (1000, 2000, 4000),
    "tree_variants": ((120, 18), (60, 18), (60, 14), (30, 14), (30, 10)),
    "profile_batches": 30, "candidate_trees": ((60, 18), (60, 14), (30, 14)), "candidate_rounds": 5,
    "candidate_calls": 500,
}
SMOKE = {
    "latency_calls": 30, "latency_calls_sklearn": 5, "batch": 64, "throughput_repeats": 2,
    "throughput_repeats_sklearn": 1, "threads": (1, 2), "scaling_factors": (1, 2),
    "vocab_sizes": (200,), "tree_variants": ((5, 6),),
    "profile_batches": 3, "candidate_trees": ((5, 6),), "candidate_rounds": 2, "candidate_calls": 20,
}
# Tiny pipeline for --smoke scaling/ci runs (a few hundred raw rows, small model).
SMOKE_PARAMS = {
    "train": {"char_tfidf": {"max_features": 300, "min_df": 2}, "logistic_regression": {"max_iter": 300},
              "lexical_forest": {"n_estimators": 5, "max_depth": 6}},
    "evaluate": {"bootstrap_resamples": 10},
    "export": {"parity_batch_sizes": [1, 64]},
}


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
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
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
    ap.add_argument("--workdir", type=Path, default=None, help="scratch dir for scaling/ci (default: a temp dir)")
    ap.add_argument("--factors", default=None, help="data factors for scaling, e.g. 1,3,10 (<1: subsample)")
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
    log = lambda msg: print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)  # noqa: E731

    inputs = None
    if {"serving", "levers", "candidates", "profile"} & set(sections):
        inputs = load_inputs(args, cfg)
    for section in sections:
        log(f"section {section} ...")
        started = time.perf_counter()
        if section in ("scaling", "ci"):
            result = run_pipeline_section(section, args, cfg, log)
        else:
            result = SECTION_FUNCS[section](inputs, cfg, log)
        result["section_wall_s"] = round(time.perf_counter() - started, 1)
        merge_results(args.out_dir, section, result, args.smoke)
        log(f"section {section} done in {result['section_wall_s']:.0f}s -> {args.out_dir / 'RESULTS.md'}")
    return 0


def run_pipeline_section(section: str, args, cfg: dict, log) -> dict:
    import _scaling

    override = SMOKE_PARAMS if args.smoke else None
    with contextlib.ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        root.mkdir(parents=True, exist_ok=True)
        raw = smoke_raw(root / "smoke-raw") if args.smoke else None
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


def smoke_raw(dest: Path) -> Path:
    """Tiny raw files from tests/data samples (and a dated slice for the out-of-source file)."""
    import gzip
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    samples = REPO / "tests" / "data"
    for name in ("ebbu2017", "phishstorm"):
        lines = (samples / f"{name}_sample.csv").read_text(encoding="utf-8").splitlines(keepends=True)
        picked = [ln for label in ("0", "1") for ln in [x for x in lines[1:] if x.rstrip().endswith("," + label)][:150]]
        with gzip.open(dest / f"{name}.csv.gz", "wt", encoding="utf-8", newline="") as fh:
            fh.writelines(lines[:1] + picked)
    dated = sorted(samples.glob("phishtank*"))
    if dated:
        src = dated[0]
        opener = gzip.open if src.suffix == ".gz" else open
        with opener(src, "rt", encoding="utf-8", newline="") as fin:
            lines = fin.readlines()[:201]
    else:  # fall back to the real file's head
        with gzip.open(REPO / "data/raw/phishtank_dated.csv.gz", "rt", encoding="utf-8", newline="") as fin:
            lines = [next(fin) for _ in range(201)]
    with gzip.open(dest / "phishtank_dated.csv.gz", "wt", encoding="utf-8", newline="") as fh:
        fh.writelines(lines)
    del shutil
    return dest


def load_inputs(args, cfg):
    """The shipped model, its ONNX export and URLs from the prepared test split."""
    import joblib
    import numpy as np
    import pandas as pd
    import yaml

    from _serving import Inputs

    test = pd.read_parquet(args.prepared / "test.parquet", columns=["url", "label"])
    train = pd.read_parquet(args.prepared / "train.parquet", columns=["url", "label"])
    n = 256 if args.smoke else 4096
    urls = test["url"].sample(n=min(n, len(test)), random_state=0).to_numpy(dtype=object)
    model = joblib.load(args.model)
    params = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    if args.smoke:  # levers retrain on a slice
        train = train.sample(n=min(3000, len(train)), random_state=0)
        test = test.sample(n=min(2000, len(test)), random_state=0)
        params = {**params, "char_tfidf": {**params["char_tfidf"], "max_features": 800},
                  "lexical_forest": {**params["lexical_forest"], "n_estimators": 15, "max_depth": 8}}
    return Inputs(model=model, onnx_bytes=args.onnx.read_bytes(), urls=urls, train=train, test=test,
                  train_params=params, model_path=args.model, onnx_path=args.onnx)


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
