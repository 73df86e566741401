"""Everything the review reads from git and DVC: pulls, repro runs, the base revision's outputs.

The base commit is checked out into a temporary ``git worktree`` that shares this
repository's DVC cache; its stored outputs (the model, ONNX file and plots its
dvc.lock names: the model the product runs) are restored from the cache or the
DVC remote, and ``dvc repro`` recomputes only what no store has: ``prepare``
(never stored) and, for a base whose outputs were never pushed, the training.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Self, TextIO

import numpy as np
import yaml

from pipeline import paths
from pipeline.determinism import pinned_env
from pipeline.store import dvc, outputs
from pipeline.store.dvc import RESTORED, ReproRun, remote_info, repro
from pipeline.store.remote import Diagnosis, diagnose

log = logging.getLogger(__name__)

PULL_FACTS = "pull.json"  # what `pull-data` restored, beside the report: the PR side's stage table reads it

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


def run(args, cwd, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """store.dvc.run, its failure reported as the review's own error (the report explains it)."""
    try:
        return dvc.run(args, cwd, check, env)
    except dvc.DvcError as exc:
        raise ReviewError(str(exc)) from None


def git(cwd, *args) -> str:
    return run(["git", *args], cwd).stdout.strip()


def repo_root() -> Path:
    """The top of the git repository the command runs in."""
    return Path(git(Path.cwd(), "rev-parse", "--show-toplevel"))


def git_show(cwd, rev: str, path: str) -> str | None:
    result = run(["git", "show", f"{rev}:{path}"], cwd, check=False)
    return result.stdout if result.returncode == 0 else None


def rev_sha(cwd, rev: str) -> str:
    sha = dvc.commit_sha(cwd, rev)
    if sha is None:
        raise ReviewError(f"unknown git revision {rev!r} (with a shallow clone, fetch with full history)")
    return sha


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

def cache_dir(cwd: Path) -> Path:
    return Path(run(["dvc", "cache", "dir"], cwd).stdout.strip()).resolve()


def missing_pointer_data(cwd: Path, pointers) -> list[str]:
    """The pointers whose data is not in the workspace (after a checkout from the cache)."""
    missing = []
    for pointer in pointers:
        doc = yaml.safe_load((cwd / pointer).read_text()) or {}
        for out in doc.get("outs", []):
            if not (cwd / Path(pointer).parent / out["path"]).exists():
                missing.append(pointer)
                break
    return missing


def pull(cwd: Path, base: str = "main", from_fork: bool | None = None) -> dict:
    """Check out everything the DVC cache has; `dvc pull` the ``.dvc`` data still missing, then the
    stored outputs (model, ONNX file, plots) this revision's dvc.lock names.

    The remote is contacted only when the cache lacks something, so a warm CI cache needs no
    credentials at all. A failure to get raw data raises PullError with a diagnosis; outputs the
    remote does not have are no error (``dvc repro`` computes them, and the comment says so).
    """
    if from_fork is None:
        from_fork = os.environ.get("PR_FROM_FORK", "").lower() == "true"
    run(["dvc", "checkout", "--allow-missing", "--quiet"], cwd, check=False)
    pointers = sorted(tracked_pointers(cwd))
    missing = missing_pointer_data(cwd, pointers)
    if missing:
        result = run(["dvc", "pull", *missing], cwd, check=False)
        if result.returncode != 0:
            output = result.stdout + result.stderr
            name, url = remote_info(cwd)
            raise PullError(diagnose(output, name, url, os.environ, from_fork, base), output)
    stored = list(outputs.stored_in_lock(cwd))
    try:
        pulled = outputs.pull_outputs(cwd)
        restored, not_stored = pulled.restored, pulled.not_stored
    except dvc.DvcError as exc:  # no stored output is no error: `dvc repro` computes them, the comment says so
        log.warning("pull-data: the stored outputs could not be pulled, so they are computed: %s", exc)
        restored, not_stored = [], outputs.missing(cwd, stored)
    return {"pointers": pointers, "pulled": missing, "outputs_restored": restored, "outputs_not_stored": not_stored}


def mark_restored(run_: ReproRun, lock_doc: dict, restored) -> ReproRun:
    """Stages that `dvc repro` skipped because `pull` restored their outputs from the remote say so."""
    recorded = outputs.lock_outputs(lock_doc)
    stages = {recorded[p].stage for p in restored if p in recorded}
    run_.stages = {s: (RESTORED if s in stages and status == "up to date" else status)
                   for s, status in run_.stages.items()}
    return run_


def status_stages(cwd: Path) -> list[str]:
    """Stages `dvc status` reports as changed (outputs out of date with code, params or data)."""
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
    # under the stages' pinned environment, so the comparison does not depend on the runner's CPU either
    run([sys.executable, "-c", SCORE_SCRIPT, model, urls_parquet, out_npy], tree, env=pinned_env(dvc.tool_env()))
    return np.load(out_npy)


class BaseTree:
    """The base revision in a temporary git worktree that shares this repository's DVC cache."""

    def __init__(self, root: Path, rev: str, keep: bool = False):
        self.root, self.rev, self.keep = root, rev, keep
        self.sha = rev_sha(root, rev)
        self.path: Path | None = None  # the worktree, while the context is open
        self._tmp: str | None = None
        self.pulled: dict = {}

    @property
    def worktree(self) -> Path:
        """The worktree's path (only inside ``with tree:``)."""
        if self.path is None:
            raise ReviewError("the base worktree is used outside `with BaseTree(...)`")
        return self.path

    def __enter__(self) -> Self:
        self._tmp = tempfile.mkdtemp(prefix="review-base-")
        self.path = path = Path(self._tmp) / "base"
        git(self.root, "worktree", "add", "--detach", "--force", str(path), self.sha)
        local = self.root / ".dvc" / "config.local"
        if local.is_file() and (path / ".dvc").is_dir():
            shutil.copy(local, path / ".dvc" / "config.local")
        if (path / ".dvc").is_dir():
            run(["dvc", "config", "--local", "cache.dir", cache_dir(self.root)], path)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.keep or self._tmp is None:
            return
        run(["git", "worktree", "remove", "--force", str(self.path)], self.root, check=False)
        run(["git", "worktree", "prune"], self.root, check=False)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def build(self, log_path: Path, base_name: str, echo: TextIO | None = None) -> ReproRun:
        """Restore the base's stored outputs (cache, then remote), reproduce only what is missing: the
        base model is the one its dvc.lock names, trained again only when no store has it."""
        tree = self.worktree
        if not (tree / paths.DVC_YAML).is_file():
            raise ReviewError(f"the base revision {self.rev} has no dvc.yaml: nothing to compare against")
        self.pulled = pull(tree, base_name)
        run_ = repro(tree, log_path, echo)
        if run_.returncode != 0:
            raise ReviewError(f"`dvc repro` of the base revision {self.rev} failed (log: {log_path})")
        require(tree, (paths.MODEL, paths.OPERATING_POINT), f"the base revision {self.rev}",
                "its pipeline does not produce what the review compares")
        return mark_restored(run_, outputs.read_lock(tree), self.pulled["outputs_restored"])
