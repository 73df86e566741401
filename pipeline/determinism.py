"""The calling environment that decides a model's bytes, pinned for every pipeline stage.

The same code and data trained other bytes on other machines: OpenBLAS picks its kernel from the
CPU (or from ``OPENBLAS_CORETYPE``, which some machines set), numpy dispatches its loops to the
widest SIMD the CPU has (AVX-512 sums and exp/log round differently from SSE ones), glibc's libm
picks FMA variants of exp/log, and OpenMP reductions add partial sums in a thread-count-dependent
order. So a stage never runs in the caller's environment: ``python -m pipeline STAGE`` re-executes
itself once, before numpy is imported, under :data:`PINNED_ENV` (the lowest common denominator of
x86-64 machines that run numpy 2.x), and :func:`verify` then checks that the pins took effect in
the libraries actually loaded.

On other CPU architectures (arm64 laptops) only the thread counts can be pinned: their bytes may
differ, and ``make reproduce`` measures by how much.
"""
from __future__ import annotations

import logging
import os
import platform
import sys

from pipeline.common import PipelineError

log = logging.getLogger(__name__)

# Set once per stage process: that the re-exec happened, and what the caller had set (for the log).
MARKER = "PHISHING_PIPELINE_PINNED"
X86_64 = ("x86_64", "amd64")
# numpy 2.4's dispatch targets above its x86-64-v2 baseline; verify() fails if a numpy upgrade adds one.
NUMPY_DISPATCH_OFF = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
OPENBLAS_KERNEL = "Nehalem"  # SSE4.2 = x86-64-v2, numpy's own baseline: every machine numpy runs on has it
THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
X86_PINS = {
    "OPENBLAS_CORETYPE": OPENBLAS_KERNEL,
    "NPY_DISABLE_CPU_FEATURES": NUMPY_DISPATCH_OFF,
    # glibc's ifunc choice (exp/log with or without FMA) follows these CPU bits, not the CPU itself
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX,-AVX2,-FMA,-FMA4,-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ",
}
# Variables that would otherwise still steer a kernel choice (removed, not set).
UNSET = ("OPENBLAS_L2_SIZE", "NPY_ENABLE_CPU_FEATURES", "OPENBLAS_DEFAULT_NUM_THREADS", "GOTO_NUM_THREADS")


class PinError(PipelineError):
    """A pin did not take effect in the loaded libraries: the bytes would depend on this machine."""


def is_x86_64(machine: str | None = None) -> bool:
    return (machine or platform.machine()).lower() in X86_64


def caller_settings(environ: dict) -> str:
    """The caller's own values of every pinned or removed variable ("none" when it set none of them)."""
    names = sorted({*THREADS, *X86_PINS, *UNSET, "PYTHONHASHSEED"})
    return "; ".join(f"{n}={environ[n]}" for n in names if n in environ) or "none"


def pinned_env(environ: dict, machine: str | None = None) -> dict:
    """``environ`` with the pins applied (pure: the caller's mapping is not changed)."""
    caller = environ.get(MARKER) or caller_settings(environ)
    env = {k: v for k, v in environ.items() if k not in UNSET}
    env.update(THREADS)
    env["PYTHONHASHSEED"] = "0"
    if is_x86_64(machine):
        env.update(X86_PINS)
    env[MARKER] = caller
    return env


def needs_reexec(environ: dict, machine: str | None = None) -> bool:
    """True unless ``environ`` already is exactly the pinned environment."""
    return not environ.get(MARKER) or pinned_env(environ, machine) != dict(environ)


def reexec_pinned(argv: list[str]) -> None:
    """Replace this process by the same command under the pinned environment (once)."""
    if not needs_reexec(dict(os.environ)):
        return
    os.execve(sys.executable, [sys.executable, "-m", "pipeline", *argv], pinned_env(dict(os.environ)))


def loaded_state() -> dict:
    """What the loaded numeric libraries actually use: BLAS kernels and threads, numpy's SIMD."""
    # lazy: loading these libraries is what is being checked, so only when asked
    import scipy.linalg  # noqa: F401  (loads scipy's own OpenBLAS, so it is checked too)
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime the gradient-boosted trees use)
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    from threadpoolctl import threadpool_info

    libs = [{"library": i["prefix"], "api": i["user_api"], "threads": i["num_threads"],
             "kernel": i.get("architecture")} for i in threadpool_info()]
    dispatch = {t: bool(__cpu_features__.get(t)) for t in __cpu_dispatch__}
    return {"machine": platform.machine(), "libraries": libs, "numpy_dispatch_enabled": dispatch}


def problems(state: dict, environ: dict) -> list[str]:
    """Every way ``state`` (from :func:`loaded_state`) departs from the pins (pure)."""
    found = []
    if not environ.get(MARKER):
        found.append(f"the stage did not re-execute under the pinned environment ({MARKER} unset)")
    for lib in state["libraries"]:
        if lib["threads"] != 1:
            found.append(f"{lib['library']} ({lib['api']}) runs {lib['threads']} threads, not 1")
        if is_x86_64(state["machine"]) and lib["api"] == "blas" and lib["kernel"] != OPENBLAS_KERNEL:
            found.append(f"{lib['library']} uses the {lib['kernel']} kernel, not {OPENBLAS_KERNEL}")
    if is_x86_64(state["machine"]):
        on = sorted(t for t, enabled in state["numpy_dispatch_enabled"].items() if enabled)
        if on:
            found.append(f"numpy still dispatches to {', '.join(on)}: add them to NUMPY_DISPATCH_OFF in "
                         f"pipeline/determinism.py")
    return found


def verify() -> dict:
    """Fail unless every pin took effect; returns the state for the log."""
    state = loaded_state()
    found = problems(state, dict(os.environ))
    if found:
        raise PinError("the stage's numeric environment is not the pinned one, so its bytes would depend on "
                       "this machine: " + "; ".join(found))
    kernels = sorted({lib["kernel"] for lib in state["libraries"] if lib["kernel"]})
    log.info("pinned environment: OpenBLAS %s, 1 thread, numpy SIMD at the baseline (the caller had: %s)",
             "/".join(kernels) or "-", os.environ.get(MARKER))
    return state
