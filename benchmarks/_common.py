"""What every benchmark script shares: the repository and its scratch folders, progress logging,
params.yaml (with overrides merged in), the load average and wall-clock timing.

Only the standard library and the pipeline's core, so that any benchmark module can import it.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import paths
from pipeline.common import load_params

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks"  # where results.json and RESULTS.md are committed
# scratch data the sections generate and reuse (pipeline/paths.py; never committed)
BENCH_MONITOR = REPO / paths.BENCH_MONITOR
BENCH_BATCH = REPO / paths.BENCH_BATCH
BENCH_TRAIN_MEMORY = REPO / paths.BENCH_TRAIN_MEMORY
MB = 2**20

Log = Callable[[str], None]
Progress = Callable[[dict[str, Any]], object]  # gets a section's numbers so far (a long run keeps them)
LOG = logging.getLogger("benchmarks")


def configure_logging(prefix: str) -> Log:
    """Progress lines ``[<prefix> HH:MM:SS] message`` on stdout (a long run shows where it is); ``log``."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(f"[{prefix} %(asctime)s] %(message)s", datefmt="%H:%M:%S"))
    LOG.handlers[:] = [handler]
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    return LOG.info


def repo_params(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The repository's params.yaml, with ``overrides`` merged in (see :func:`merged`)."""
    params = load_params(REPO / paths.PARAMS)
    return merged(params, overrides) if overrides else params


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in (nested mappings merged, anything else replaced)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages, rounded: how busy the shared machine was."""
    return [round(x, 2) for x in os.getloadavg()]


def seconds_since(started: float, digits: int = 1) -> float:
    """Wall seconds since ``started`` (a ``time.perf_counter()`` reading), rounded."""
    return round(time.perf_counter() - started, digits)


def venv_env() -> dict[str, str]:
    """The environment for a tool of this venv (dvc, the pipeline) in a subprocess: its bin first on PATH,
    no PYTHONPATH (a scratch copy must run its own code)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env
