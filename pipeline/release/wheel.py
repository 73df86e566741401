"""The client wheel each release attaches, built reproducibly and proven on the release before it is.

Built from a clean copy of ./client with SOURCE_DATE_EPOCH = the commit's time, so one commit gives
the same bytes. Before the wheel is attached it is installed alone into a fresh virtual environment
(its own dependencies only, from ``requirements/client.lock`` with ``--require-hashes``; the wheel
itself after them with ``--no-deps``), and its ``phishing-url-detector score`` must verify and score
:data:`CHECK_URLS` with this release's ONNX file; otherwise no release is written.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.release.inputs import CLIENT, CLIENT_SOURCES, ReleaseError

log = logging.getLogger(__name__)

WHEEL_NAME = re.compile(r"phishing_url_detector-(\d+\.\d+\.\d+)-py3-none-any\.whl")
# What the wheel check scores with the release's ONNX file, and the line each must give.
CHECK_URLS = ("https://www.wikipedia.org/", "http://paypal.com.secure-login.example.tk/webscr?cmd=_login")
_SCORE_LINE = re.compile(r"(phishing|legitimate)\s+[01]\.\d{4}\s+(\S+)")


@dataclass(frozen=True)
class CheckedWheel:
    """A client wheel that installed alone into a fresh venv and scored with the release."""

    path: Path
    installed: tuple[str, ...]  # `pip list --format=freeze` of that venv

    @property
    def name(self) -> str:
        return self.path.name


def _run(command: list[str | Path], what: str, **kwargs: Any) -> str:
    """Run a step of the wheel build or check; a failure is a ReleaseError that shows its output."""
    try:
        done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    except OSError as exc:
        raise ReleaseError(f"{what}: cannot run {command[0]}: {exc}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise ReleaseError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _pip_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", **extra}


def copy_client_sources(root: Path, dest: Path) -> Path:
    """The client's sources (CLIENT_SOURCES) in ``dest``, modes normalised so the wheel's bytes do not
    depend on the checkout's umask."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in CLIENT_SOURCES:
        src, target = root / rel, dest / rel.relative_to(CLIENT)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        elif src.is_file():
            shutil.copyfile(src, target)
        else:
            raise ReleaseError(f"{rel} is missing: each release attaches the client wheel built from {CLIENT}/")
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def build_client_wheel(root: Path, dest: Path, epoch: int) -> Path:
    """``pip wheel`` of a clean copy of ./client (SOURCE_DATE_EPOCH = ``epoch``): the same commit gives the
    same bytes. No build isolation: the backend is the hash-locked setuptools of this environment
    (requirements/build.lock), checked against the client's [build-system] pin, never a fresh download."""
    with tempfile.TemporaryDirectory(prefix="client-src-") as tmp:
        source = copy_client_sources(root, Path(tmp) / "client")
        out = Path(tmp) / "wheel"
        log.info("release: building the client wheel from %s/", CLIENT)
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation",
              "--check-build-dependencies", "--quiet", "-w", out, source],
             f"building the client wheel (pip wheel {CLIENT})", cwd=tmp, umask=0o022,
             env=_pip_env(SOURCE_DATE_EPOCH=str(epoch)))
        wheels = sorted(out.glob("*.whl"))
        if len(wheels) != 1 or not WHEEL_NAME.fullmatch(wheels[0].name):
            raise ReleaseError(f"pip wheel {CLIENT} gave {[w.name for w in wheels]}, expected one "
                               f"phishing_url_detector-X.Y.Z-py3-none-any.whl")
        return Path(shutil.copyfile(wheels[0], dest / wheels[0].name))


def _venv_script(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def install_alone(wheel: Path, venv: Path, lock: Path) -> tuple[str, ...]:
    """A new venv (no pip, no system site-packages) holding ``wheel`` and its dependencies only;
    returns its ``pip list --format=freeze``. The dependencies come from ``lock``, every file checked
    against its sha256; the wheel is the file just built, installed without resolving anything."""
    _run([sys.executable, "-m", "venv", "--without-pip", venv], "creating a fresh venv for the wheel check")
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", _venv_script(venv, "python")]
    _run([*pip, "install", "--quiet", "--require-hashes", "--only-binary", ":all:", "-r", lock],
         f"pip install --require-hashes -r {lock.name} into a fresh venv", env=_pip_env())
    _run([*pip, "install", "--quiet", "--no-deps", "--no-index", wheel], f"pip install {wheel.name} into a fresh venv",
         env=_pip_env())
    _run([*pip, "check"], f"pip check after installing {wheel.name} (is {lock.name} missing one of its dependencies?)",
         env=_pip_env())
    frozen = _run([*pip, "list", "--format=freeze"], "pip list of the wheel check's venv", env=_pip_env())
    return tuple(sorted(frozen.split(), key=str.lower))


def score_with(venv: Path, onnx: Path) -> None:
    """The installed console script must verify ``onnx`` (against the SHA256SUMS and manifest beside it)
    and score every CHECK_URLS, one verdict line each, in order.

    ``--allow-unverified``: this is the local build of a release the publish job has not attested yet
    (provenance bundles are made after this check, in the job that may sign), so there is no bundle to
    check; the integrity checks still run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = _run([_venv_script(venv, "phishing-url-detector"), "score", "--allow-unverified", "--model",
                onnx.resolve(), *CHECK_URLS],
               f"phishing-url-detector score --model {onnx.name} (from the wheel, in a fresh venv)",
               cwd=venv, env={**env, "PYTHONNOUSERSITE": "1"})
    scored = [m.group(2) if (m := _SCORE_LINE.fullmatch(line.strip())) else None for line in out.splitlines()]
    if scored != list(CHECK_URLS):
        raise ReleaseError(f"phishing-url-detector score (from the wheel) did not score {list(CHECK_URLS)}:\n{out}")


def check_client_wheel(wheel: Path, onnx: Path, lock: Path) -> CheckedWheel:
    """Prove ``wheel`` works before it is attached: alone in a fresh venv, it verifies and scores ``onnx``."""
    log.info("release: checking %s in a fresh venv with %s", wheel.name, onnx.name)
    with tempfile.TemporaryDirectory(prefix="client-wheel-check-") as tmp:
        venv = Path(tmp) / "venv"
        installed = install_alone(wheel, venv, lock)
        score_with(venv, onnx)
    return CheckedWheel(wheel, installed)
