"""What each determinism pin (pipeline/determinism.py) costs in training time, and what it changes.

The train stage's pure code (``pipeline.stages.train.run``) fits the full training split once per
calling environment, each in a fresh interpreter that does NOT re-execute itself (so the pins
measured are exactly the ones given): no pin, each pin alone, and all pins (what every stage
runs under). Wall and CPU seconds of the fit and the model's MD5 are recorded, so the table also
shows which pin changes the bytes. Run after `make run` (it needs data/prepared/train.parquet)::

    python benchmarks/determinism_cost.py --out benchmarks/results-determinism.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import determinism as D
from pipeline import paths

FIT = """
import json, resource, sys, time
from pipeline.common import load_params
from pipeline.common import md5_file
from pipeline.stages import train
from pathlib import Path
started, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
train.run(load_params(sys.argv[1]), train_path=Path(sys.argv[2]), model_path=Path(sys.argv[3]))
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": round(time.perf_counter() - started, 1),
                  "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
                  "model_md5": md5_file(sys.argv[3])}))
"""


def variants(base: dict) -> dict[str, dict]:
    """Calling environments: none, each pin alone, all pins (the stage's own)."""
    clean = {k: v for k, v in base.items() if k not in (*D.THREADS, *D.X86_PINS, *D.UNSET, D.MARKER)}
    return {
        "no pin": clean,
        "threads = 1 (OpenBLAS, OpenMP)": {**clean, **D.THREADS},
        f"OpenBLAS kernel = {D.OPENBLAS_KERNEL}": {**clean, "OPENBLAS_CORETYPE": D.OPENBLAS_KERNEL},
        "numpy dispatch = x86-64-v2 baseline": {**clean, "NPY_DISABLE_CPU_FEATURES": D.NUMPY_DISPATCH_OFF},
        "glibc hwcaps (no FMA/AVX libm)": {**clean, "GLIBC_TUNABLES": D.X86_PINS["GLIBC_TUNABLES"]},
        "all pins (what every stage runs under)": D.pinned_env(clean),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=ROOT / paths.TRAIN)
    ap.add_argument("--params", type=Path, default=ROOT / paths.PARAMS)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):
            for name, env in variants(dict(os.environ)).items():
                done = subprocess.run([sys.executable, "-c", FIT, str(args.params), str(args.train),
                                       str(Path(tmp) / "model.joblib")], cwd=ROOT, env=env, capture_output=True,
                                      text=True, check=True)
                row = {"environment": name, "round": round_, **json.loads(done.stdout.strip().splitlines()[-1]),
                       "load_average": os.getloadavg()[0]}
                print(json.dumps(row), flush=True)
                rows.append(row)
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.processor()
              or platform.machine(), "cpus": os.cpu_count(), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
