"""Everything the review reads from git and DVC: pulls, repro runs, the base revision's outputs.

The base revision's model is not in the DVC remote (pipeline outputs are
``push: false``), so the base side is rebuilt the way DVC itself would: the
base commit is checked out into a temporary ``git worktree`` that shares this
repository's DVC cache (and with it the run-cache); ``dvc checkout`` restores
every output the cache already has and ``dvc repro`` recomputes the rest. On a
laptop and in CI (which caches ``.dvc/cache``) that is usually a checkout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import paths
from pipeline.review.diffs import parse_repro_log
from pipeline.review.remote import Diagnosis, diagnose


# Scores a model with the code of the tree it runs in (the base model with the base code:
# unpickling it with the PR's code could silently compute different features).
SCORE_SCRIPT = """
import sys, joblib, numpy as np, pandas as pd
model = joblib.load(sys.argv[1])
urls = pd.read_parquet(sys.argv[2])["url"]
np.save(sys.argv[3], model.predict_proba(np.asarray(list(urls), dtype=object))[:, 1])
"""


class ReviewError(RuntimeError):
    """A problem the report explains instead of a traceback."""


class PullError(ReviewError):
    def __init__(self, diagnosis: Diagnosis, output: str):
        super().__init__(diagnosis.title)
        self.diagnosis = diagnosis
        self.output = output


def tool_env() -> dict:
    """This interpreter's bin directory first on PATH, so `dvc` and the stages' `python` are ours."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def run(args, cwd, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ReviewError(f"`{' '.join(map(str, args))}` failed in {cwd}:\n{result.stdout}{result.stderr}")
    return result


def git(cwd, *args) -> str:
    return run(["git", *args], cwd).stdout.strip()


def git_show(cwd, rev: str, path: str) -> str | None:
    result = run(["git", "show", f"{rev}:{path}"], cwd, check=False)
    return result.stdout if result.returncode == 0 else None


def rev_sha(cwd, rev: str) -> str:
    result = run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd, check=False)
    if result.returncode != 0:
        raise ReviewError(f"unknown git revision {rev!r} (with a shallow clone, fetch with full history)")
    return result.stdout.strip()


def read_text(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def tracked_pointers(cwd: Path, rev: str | None = None) -> dict[str, str | None]:
    """{path: text} of every git-tracked ``.dvc`` pointer, at ``rev`` or in the working tree."""
    if rev is None:
        names = git(cwd, "ls-files", "--", "*.dvc").splitlines()
        return {n: read_text(cwd / n) for n in names if not n.startswith(".dvc/")}
    names = git(cwd, "ls-tree", "-r", "--name-only", rev).splitlines()
    return {n: git_show(cwd, rev, n) for n in names if n.endswith(".dvc") and not n.startswith(".dvc/")}


# -- dvc ---------------------------------------------------------------------------------------

def remote_info(cwd: Path) -> tuple[str | None, str | None]:
    """(name, url) of the default DVC remote, (None, None) if there is none."""
    from dvc.repo import Repo

    with Repo(str(cwd)) as repo:
        config = repo.config
        name = config["core"].get("remote")
        url = config["remote"].get(name, {}).get("url") if name else None
    return name, url


def cache_dir(cwd: Path) -> Path:
    return Path(run(["dvc", "cache", "dir"], cwd).stdout.strip()).resolve()


def missing_pointer_data(cwd: Path, pointers) -> list[str]:
    """The pointers whose data is not in the workspace (after a checkout from the cache)."""
    import yaml

    missing = []
    for pointer in pointers:
        doc = yaml.safe_load((cwd / pointer).read_text()) or {}
        for out in doc.get("outs", []):
            if not (cwd / Path(pointer).parent / out["path"]).exists():
                missing.append(pointer)
                break
    return missing


def pull(cwd: Path, base: str = "main", from_fork: bool | None = None) -> dict:
    """Check out everything the DVC cache has; `dvc pull` only the ``.dvc`` data still missing.

    The remote is contacted only when the cache lacks raw data, so a warm CI cache
    needs no credentials at all. A failure raises PullError with a diagnosis.
    """
    if from_fork is None:
        from_fork = os.environ.get("PR_FROM_FORK", "").lower() == "true"
    run(["dvc", "checkout", "--allow-missing", "--quiet"], cwd, check=False)
    pointers = sorted(tracked_pointers(cwd))
    missing = missing_pointer_data(cwd, pointers)
    facts = {"pointers": pointers, "pulled": missing}
    if not missing:
        return facts
    result = run(["dvc", "pull", *missing], cwd, check=False)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        name, url = remote_info(cwd)
        raise PullError(diagnose(output, name, url, os.environ, from_fork, base), output)
    return facts


@dataclass
class ReproRun:
    """One `dvc repro`: exit code, wall time, per-stage status (re-ran / restored / up to date)."""
    returncode: int
    seconds: float | None
    stages: dict[str, str] = field(default_factory=dict)
    log: str = ""

    def to_dict(self) -> dict:
        return {"returncode": self.returncode, "seconds": self.seconds, "stages": self.stages}


def repro(cwd: Path, log_path: Path, echo=None) -> ReproRun:
    """`dvc repro`, its output teed to ``log_path`` (and to ``echo``, e.g. stdout)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    lines = []
    with open(log_path, "w", encoding="utf-8") as log, subprocess.Popen(
            ["dvc", "repro"], cwd=cwd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace") as proc:
        for line in proc.stdout:
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


def status_stages(cwd: Path) -> list[str]:
    """Stages `dvc status` reports as changed (outputs out of date with code, params or data)."""
    import json

    result = run(["dvc", "status", "--json"], cwd, check=False)
    try:
        doc = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        return []
    return sorted(k.split(":")[-1] for k in doc if not k.endswith(".dvc"))


def require(tree: Path, files, what: str, hint: str) -> None:
    """Fail with a plain message when pipeline outputs the review reads are missing."""
    missing = [str(f) for f in files if not (tree / f).is_file()]
    if missing:
        raise ReviewError(f"{what} lacks {', '.join(missing)}: {hint}")


def score(tree: Path, model: Path, urls_parquet: Path, out_npy: Path):
    """P(phishing) of ``model`` on the URLs, computed by the code checked out in ``tree``."""
    import numpy as np

    run([sys.executable, "-c", SCORE_SCRIPT, model, urls_parquet, out_npy], tree)
    return np.load(out_npy)


class BaseTree:
    """The base revision in a temporary git worktree that shares this repository's DVC cache."""

    def __init__(self, root: Path, rev: str, keep: bool = False):
        self.root, self.rev, self.keep = root, rev, keep
        self.sha = rev_sha(root, rev)
        self.path: Path | None = None
        self._tmp: str | None = None

    def __enter__(self) -> "BaseTree":
        self._tmp = tempfile.mkdtemp(prefix="review-base-")
        self.path = Path(self._tmp) / "base"
        git(self.root, "worktree", "add", "--detach", "--force", str(self.path), self.sha)
        local = self.root / ".dvc" / "config.local"
        if local.is_file() and (self.path / ".dvc").is_dir():
            shutil.copy(local, self.path / ".dvc" / "config.local")
        if (self.path / ".dvc").is_dir():
            run(["dvc", "config", "--local", "cache.dir", cache_dir(self.root)], self.path)
        return self

    def __exit__(self, *exc) -> None:
        if self.keep:
            return
        run(["git", "worktree", "remove", "--force", str(self.path)], self.root, check=False)
        run(["git", "worktree", "prune"], self.root, check=False)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def build(self, log_path: Path, base_name: str, echo=None) -> ReproRun:
        """Restore the base's outputs (cache, then remote for raw data), reproduce whatever is missing."""
        if not (self.path / paths.DVC_YAML).is_file():
            raise ReviewError(f"the base revision {self.rev} has no dvc.yaml: nothing to compare against")
        pull(self.path, base_name)
        run_ = repro(self.path, log_path, echo)
        if run_.returncode != 0:
            raise ReviewError(f"`dvc repro` of the base revision {self.rev} failed (log: {log_path})")
        require(self.path, (paths.MODEL, paths.OPERATING_POINT), f"the base revision {self.rev}",
                "its pipeline does not produce what the review compares")
        return run_
