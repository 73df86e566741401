"""The pinned calling environment (pipeline/determinism.py): pure rules, the check that the pins took
effect in the loaded libraries, and the bytes of a real training under several calling environments."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, sample_project, sh

from pipeline import determinism as D

# The calling environments the issue names: OpenBLAS kernel unset / Haswell, numpy's AVX-512 off;
# plus a thread count, which changes the OpenMP reductions of the gradient-boosted trees.
CALLERS = {
    "OPENBLAS_CORETYPE unset": {},
    "OPENBLAS_CORETYPE=Haswell": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"},
    "numpy AVX-512 off": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"},
    "OMP_NUM_THREADS=2": {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
}
PIN_NAMES = (*D.THREADS, *D.X86_PINS, *D.UNSET, D.MARKER, "PYTHONHASHSEED")


def caller_env(extra: dict) -> dict:
    """This process's environment without any pin, plus ``extra``: a caller that knows nothing of them."""
    env = {k: v for k, v in os.environ.items() if k not in PIN_NAMES}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


# -- pure rules ------------------------------------------------------------------------------------
def test_pinned_env_overrides_the_callers_choices_and_removes_the_unset_ones():
    env = D.pinned_env({"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1", "OMP_NUM_THREADS": "8",
                        "NPY_DISABLE_CPU_FEATURES": "X86_V4", "HOME": "/h"}, machine="x86_64")
    assert env["OPENBLAS_CORETYPE"] == D.OPENBLAS_KERNEL == "Nehalem"
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["NPY_DISABLE_CPU_FEATURES"] == D.NUMPY_DISPATCH_OFF
    assert "OPENBLAS_L2_SIZE" not in env and env["HOME"] == "/h"
    assert env[D.MARKER] == ("NPY_DISABLE_CPU_FEATURES=X86_V4; OMP_NUM_THREADS=8; OPENBLAS_CORETYPE=Haswell; "
                             "OPENBLAS_L2_SIZE=1")  # what the caller had, for the stage's log


def test_on_arm64_only_the_threads_are_pinned():
    env = D.pinned_env({"OPENBLAS_CORETYPE": "ARMV8"}, machine="aarch64")
    assert env["OMP_NUM_THREADS"] == "1" and env["OPENBLAS_CORETYPE"] == "ARMV8"
    assert "NPY_DISABLE_CPU_FEATURES" not in env


def test_reexec_happens_once():
    caller = {"PATH": "/bin", "OPENBLAS_CORETYPE": "Haswell"}
    assert D.needs_reexec(caller, "x86_64")
    pinned = D.pinned_env(caller, "x86_64")
    assert not D.needs_reexec(pinned, "x86_64")
    assert D.needs_reexec({**pinned, "OMP_NUM_THREADS": "4"}, "x86_64")  # changed after the exec: again


def test_problems_name_each_pin_that_did_not_take():
    state = {"machine": "x86_64", "numpy_dispatch_enabled": {"X86_V3": False, "X86_V4": True},
             "libraries": [{"library": "libscipy_openblas", "api": "blas", "threads": 2, "kernel": "SkylakeX"},
                           {"library": "libgomp", "api": "openmp", "threads": 1, "kernel": None}]}
    found = D.problems(state, {D.MARKER: "none"})
    assert any("runs 2 threads" in p for p in found)
    assert any("SkylakeX kernel, not Nehalem" in p for p in found)
    assert any("numpy still dispatches to X86_V4" in p for p in found)
    ok = {**state, "numpy_dispatch_enabled": {"X86_V3": False, "X86_V4": False},
          "libraries": [{**state["libraries"][0], "threads": 1, "kernel": "Nehalem"}, state["libraries"][1]]}
    assert D.problems(ok, {D.MARKER: "none"}) == []
    assert D.problems(ok, {}) == [f"the stage did not re-execute under the pinned environment ({D.MARKER} unset)"]


def test_only_the_dvc_stages_are_pinned():
    from pipeline.cli import pins_environment

    assert all(pins_environment([stage]) for stage in ("prepare", "train", "export", "model-card"))
    assert not any(pins_environment([cmd]) for cmd in ("score", "monitor", "release", "run", "report"))


# -- the pins in the real libraries ---------------------------------------------------------------------
PROBE = "import json; from pipeline import determinism as d; print(json.dumps(d.verify()))"


@pytest.mark.slow  # fresh interpreters in subprocesses
def test_verify_passes_under_the_pins_and_fails_in_the_callers_environment():
    pinned = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True,
                            env=D.pinned_env(caller_env(CALLERS["OPENBLAS_CORETYPE=Haswell"])))
    assert pinned.returncode == 0, pinned.stderr[-2000:]
    state = json.loads(pinned.stdout)
    blas = [lib for lib in state["libraries"] if lib["api"] == "blas"]
    assert len(blas) == 2 and {lib["kernel"] for lib in blas} == {"Nehalem"}  # numpy's and scipy's OpenBLAS
    assert not any(state["numpy_dispatch_enabled"].values())
    unpinned = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True,
                              env=caller_env({}))
    assert unpinned.returncode != 0 and "not the pinned one" in unpinned.stderr


# -- a real training under several calling environments ----------------------------------------------
def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


UNPINNED_FIT = ("import sys; from pathlib import Path; from pipeline.common import load_params; "
                "from pipeline.stages import train; train.run(load_params(), model_path=Path(sys.argv[1]))")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = sample_project(tmp_path_factory.mktemp("determinism") / "project", repro=False)
    sh("dvc", "repro", "operating-point", cwd=root)  # prepare, train, final-fit, operating-point: what export reads
    return root


@pytest.mark.slow
def test_the_environment_changes_the_bytes_of_an_unpinned_fit(prepared, tmp_path):
    """The control: without the pins, these calling environments train different bytes (so the next
    test, where they must not, can fail)."""
    digests = set()
    for extra in CALLERS.values():
        out = tmp_path / f"{len(digests)}.joblib"
        subprocess.run([sys.executable, "-c", UNPINNED_FIT, str(out)], cwd=prepared, env=caller_env(extra),
                       check=True, capture_output=True)
        digests.add(md5(out))
    assert len(digests) >= 3, digests


@pytest.mark.slow
def test_the_stages_train_and_export_the_same_bytes_under_every_calling_environment(prepared):
    seen = {}
    for name, extra in CALLERS.items():
        for stage in ("train", "final-fit", "export"):
            done = subprocess.run([sys.executable, "-m", "pipeline", stage], cwd=prepared, env=caller_env(extra),
                                  capture_output=True, text=True)
            assert done.returncode == 0, (name, stage, done.stderr[-3000:])
        seen[name] = (md5(prepared / "models/model.joblib"), md5(prepared / "models/final.joblib"),
                      md5(prepared / "dist/phishing-url-detector.onnx"))
    assert len(set(seen.values())) == 1, seen
    lock = (prepared / "dvc.lock").read_text()
    assert seen["OPENBLAS_CORETYPE unset"][0] in lock  # and they are the bytes `dvc repro` recorded
    assert seen["OPENBLAS_CORETYPE unset"][1] in lock
