"""results.json and RESULTS.md: one section's numbers merged in (with the machine's facts), the page re-rendered.

Every section runner writes through :func:`merge_results`, so sections can run separately (or in parallel)
and a long run keeps what it measured so far.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import platform
import subprocess
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import REPO, load_average
from benchmarks._report import render

LIBRARIES = ("numpy", "scikit-learn", "onnx", "onnxruntime", "skl2onnx", "dvc", "pandas")


def machine_facts() -> dict[str, Any]:
    """CPU, memory, library versions, git commit and load: what a reader needs to weigh the numbers."""
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
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            libs[name] = metadata.version(name)
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "host": platform.node(),
            "cpu": cpu, "logical_cpus": os.cpu_count(), "memory_gb": mem_gb, "os": platform.platform(),
            "python": platform.python_version(), "libraries": libs,
            "git": f"{commit}{' (dirty)' if dirty else ''}", "load_average": load_average()}


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise writers of results.json (sections may run in parallel) by locking its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def merge_results(out_dir: Path, section: str, payload: dict[str, Any], smoke: bool) -> dict[str, Any]:
    """Store one section's numbers in results.json (other sections are kept) and re-render RESULTS.md."""
    path = out_dir / "results.json"
    with _locked(path):
        doc = json.loads(path.read_text()) if path.exists() else {"sections": {}}
        payload = {**payload, "machine": machine_facts(), "smoke": smoke}
        doc["sections"][section] = payload
        doc["updated"] = payload["machine"]["date"]
        path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=_json_default) + "\n")
        (out_dir / "RESULTS.md").write_text(render(doc))
    return doc


def _json_default(o: object) -> object:
    """numpy scalars as Python numbers, tuples and sets as lists."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, (tuple, set)):
        return list(o)
    raise TypeError(type(o))
