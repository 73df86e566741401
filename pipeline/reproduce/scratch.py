"""The scratch copy: one commit cloned into a temporary directory, its raw data pulled, every stage re-run.

The user's repository is only read. ``git clone --no-hardlinks`` copies its objects (the user's
work tree, index and ``.git`` are not written, and a kept scratch clone stays valid after a
``git gc`` there). The clone gets its own, empty DVC cache outside its work tree, so no stage
output and no run-cache entry exists to restore from; ``dvc repro --force --no-run-cache`` runs
every command anyway, and the run fails unless DVC reports each stage of dvc.yaml as re-run.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline import paths
from pipeline.common import PipelineError, md5_file
from pipeline.reproduce.compare import stages_not_rerun
from pipeline.store.dvc import ReproRun, commit_sha, git, remote_info, repro, run

log = logging.getLogger(__name__)

REPRO_ARGS = ("--force", "--no-run-cache")


@dataclass(frozen=True)
class Scratch:
    """The clone (``tree``) and, beside it, its DVC cache and the committed files fetched for scoring."""
    base: Path

    @property
    def tree(self) -> Path:
        return self.base / "repo"

    @property
    def cache(self) -> Path:
        return self.base / "dvc-cache"

    @property
    def committed(self) -> Path:
        return self.base / "committed"


def resolve_commit(root: Path, rev: str) -> str:
    sha = commit_sha(root, rev)
    if sha is None:
        raise PipelineError(f"reproduce: unknown git revision {rev!r} (a shallow clone needs `git fetch --unshallow`)")
    return sha


@contextmanager
def scratch_clone(root: Path, sha: str, workdir: Path | None = None, keep: bool = False):
    """A clone of ``root`` at ``sha`` with a private DVC cache; removed on exit unless ``keep``."""
    if workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    scratch = Scratch(Path(tempfile.mkdtemp(prefix="reproduce-", dir=workdir)))
    try:
        git(scratch.base, "clone", "--quiet", "--no-hardlinks", "--no-checkout", str(root), str(scratch.tree))
        git(scratch.tree, "checkout", "--quiet", "--detach", sha)
        if (scratch.tree / ".dvc").is_dir():  # even a cache.dir in the committed .dvc/config is overridden
            run(["dvc", "config", "--local", "cache.dir", scratch.cache], scratch.tree)
        scratch.committed.mkdir()
        yield scratch
    finally:
        if keep:
            log.info("reproduce: kept the scratch clone in %s", scratch.tree)
        else:
            shutil.rmtree(scratch.base, ignore_errors=True)


def use_roots_remote_if_missing(tree: Path, root: Path) -> None:
    """An in-repo local remote (``../dvc-store`` from .dvc/) resolves inside the clone; when it is
    not committed, the clone reads the user's copy instead (DVC only reads a remote on pull)."""
    name, url = remote_info(tree)
    if not url or "://" in url or Path(url).exists():
        return
    try:
        relative = Path(url).resolve().relative_to(tree.resolve())
    except ValueError:
        return
    if (root / relative).is_dir():
        log.info("reproduce: the clone has no %s; pulling from %s", relative, root / relative)
        run(["dvc", "remote", "modify", "--local", name, "url", (root / relative).resolve()], tree)


def pull_raw_data(tree: Path) -> list[str]:
    """`dvc pull` of the committed ``.dvc`` pointers (raw data) only; every stage output is re-made."""
    pointers = [p for p in git(tree, "ls-files", "--", "*.dvc").splitlines() if not p.startswith(".dvc/")]
    if pointers:
        log.info("reproduce: dvc pull %s", " ".join(pointers))
        run(["dvc", "pull", "--quiet", *pointers], tree)
    return pointers


def _cache_object(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def _committed_candidates(root: Path, scratch: Scratch, path: Path, md5: str):
    """Where the committed bytes may be, cheapest first; the remote is asked only when reached."""
    yield "the work tree", root / path
    user_cache = run(["dvc", "cache", "dir"], root, check=False).stdout.strip()
    if user_cache:
        yield "the DVC cache", _cache_object(Path(user_cache), md5)
    # the commit's dvc.lock again (repro rewrote it), so that `dvc fetch` asks for the committed md5
    run(["git", "checkout", "HEAD", "--", paths.DVC_LOCK], scratch.tree, check=False)
    fetched = run(["dvc", "fetch", "--quiet", path.as_posix()], scratch.tree, check=False)
    log.debug("reproduce: dvc fetch %s: exit %s %s", path, fetched.returncode, fetched.stderr.strip())
    yield "the DVC remote", _cache_object(scratch.cache, md5)


def fetch_committed(root: Path, scratch: Scratch, path: Path, md5: str | None) -> tuple[Path | None, str | None]:
    """A copy of output ``path`` as committed (DVC md5 ``md5``) and where it came from; (None, None)
    when no place has those bytes. Only needed when the bytes differ, so it runs after `dvc repro`."""
    if not md5 or md5.endswith(".dir"):
        return None, None
    for where, source in _committed_candidates(root, scratch, path, md5):
        if source.is_file() and md5_file(source) == md5:
            copy = scratch.committed / path.name
            shutil.copyfile(source, copy)
            log.info("reproduce: the committed %s comes from %s", path, where)
            return copy, where
    log.info("reproduce: the committed %s (md5 %s) is nowhere here", path, md5)
    return None, None


@contextmanager
def committed_client(tree: Path):
    """The stages import the clone's client sources (dvc.yaml deps), not this environment's copy."""
    src = tree / "client" / "src"
    before = os.environ.get("PYTHONPATH")
    if src.is_dir():
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def rerun_every_stage(tree: Path, log_path: Path, echo=None) -> ReproRun:
    """`dvc repro --force --no-run-cache`, teed to ``log_path``; fails unless every stage re-ran."""
    log.info("reproduce: dvc repro %s (every stage runs; log: %s)", " ".join(REPRO_ARGS), log_path)
    with committed_client(tree):
        result = repro(tree, log_path, echo, REPRO_ARGS)
    if result.returncode != 0:
        raise PipelineError(f"reproduce: `dvc repro` failed in the scratch clone (exit {result.returncode}); see "
                            f"{log_path}, and --keep to keep the clone")
    stages = list((yaml.safe_load((tree / paths.DVC_YAML).read_text(encoding="utf-8")) or {}).get("stages") or {})
    skipped = stages_not_rerun(stages, result.ran())
    if skipped:
        raise PipelineError(f"reproduce: DVC did not re-run {', '.join(skipped)} (see {log_path}): their outputs "
                            "would not be re-trained")
    return result
