"""Running DVC (and git) as this project does: our interpreter's tools first on PATH, output kept.

``dvc repro`` output is parsed into one status per stage, so a person reads "re-ran" or
"restored" instead of a log.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipeline.common import PipelineError


class DvcError(PipelineError):
    """A DVC or git command failed; the message carries its output."""


def tool_env() -> dict:
    """This interpreter's bin directory first on PATH, so `dvc` and the stages' `python` are ours."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def run(args, cwd, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env or tool_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise DvcError(f"`{' '.join(map(str, args))}` failed in {cwd}:\n{result.stdout}{result.stderr}")
    return result


def git(cwd, *args) -> str:
    return run(["git", *args], cwd).stdout.strip()


def commit_sha(cwd, rev: str) -> str | None:
    """The commit ``rev`` names, None when it names none (or the clone is too shallow to have it)."""
    result = run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def changed_paths(cwd, *pathspec: str, untracked: bool = True) -> list[str]:
    """Paths whose working copy differs from HEAD (``git status``), limited to ``pathspec``."""
    out = run(["git", "status", "--porcelain", "-z", f"--untracked-files={'all' if untracked else 'no'}",
               "--", *pathspec], cwd).stdout
    return sorted(entry[3:] for entry in out.split("\0") if len(entry) > 3)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_REPRO_PATTERNS = (
    (re.compile(r"^Running stage '([^']+)':", re.MULTILINE), "re-ran"),
    (re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs", re.MULTILINE), "restored from run-cache"),
    (re.compile(r"^Stage '([^']+)' didn't change, skipping", re.MULTILINE), "up to date"),
)
STATUS_ORDER = ("re-ran", "restored from run-cache", "up to date")
# Beside dvc repro's own: a stage it skipped because `dvc pull` had restored its outputs from the remote.
RESTORED = "restored from the remote"


def parse_repro_log(text: str) -> dict[str, str]:
    """{stage: 're-ran' | 'restored from run-cache' | 'up to date'} from `dvc repro` output."""
    text = _ANSI.sub("", text.replace("\r", "\n"))
    found: dict[str, tuple[int, str]] = {}
    for pattern, status in _REPRO_PATTERNS:
        for match in pattern.finditer(text):
            found[match.group(1)] = (match.start(), status)
    return {stage: status for stage, (_, status) in sorted(found.items(), key=lambda kv: kv[1][0])}


@dataclass
class ReproRun:
    """One `dvc repro`: exit code, wall time, per-stage status (re-ran / restored / up to date)."""
    returncode: int
    seconds: float | None
    stages: dict[str, str] = field(default_factory=dict)
    log: str = ""

    def to_dict(self) -> dict:
        return {"returncode": self.returncode, "seconds": self.seconds, "stages": self.stages}

    def ran(self) -> list[str]:
        return [s for s, status in self.stages.items() if status == "re-ran"]


class Echo(Protocol):
    """Where `dvc repro`'s progress goes: sys.stdout, or a filter of it."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


def repro(cwd: Path, log_path: Path, echo: Echo | None = None, args: tuple[str, ...] = ()) -> ReproRun:
    """`dvc repro`, its output teed to ``log_path`` (and to ``echo``, e.g. stdout, as progress)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    lines: list[str] = []
    with open(log_path, "w", encoding="utf-8") as log, subprocess.Popen(
            ["dvc", "repro", *args], cwd=cwd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace") as proc:
        for line in proc.stdout or ():
            lines.append(line)
            log.write(line)
            if echo:
                echo.write(line)
                echo.flush()
        returncode = proc.wait()
    text = "".join(lines)
    return ReproRun(returncode, round(time.perf_counter() - started, 1), parse_repro_log(text), text)


def repro_from_log(log_path: Path, seconds: float | None) -> ReproRun:
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return ReproRun(0, seconds, parse_repro_log(text), text)


def remote_info(cwd: Path, name: str | None = None) -> tuple[str | None, str | None]:
    """(name, url) of the remote ``name`` (default: the default remote); (None, None) if there is none."""
    # lazy: dvc's Python API is slow to import; only this function needs it (the rest runs the dvc CLI)
    from dvc.repo import Repo

    if not (Path(cwd) / ".dvc").is_dir():  # git only (a release built from committed outputs)
        return None, None
    with Repo(str(cwd)) as repo:
        config = repo.config
        name = name or config["core"].get("remote")
        url = config["remote"].get(name, {}).get("url") if name else None
    return name, url
