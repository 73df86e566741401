"""The outputs dvc.lock records, the ones the DVC remote stores, and the checks between them.

A review evaluates outputs and the release publishes outputs: both must be the bytes dvc.lock
names. Every cached output except ``data/prepared`` is pushed (dvc.yaml), so a fresh clone, the
review's base side and the release job restore them instead of training, and each restored
file's MD5 (DVC's content address) is checked against dvc.lock here, not taken on trust.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline import paths
from pipeline.common import md5_file, sha256_file
from pipeline.store.dvc import DvcError, remote_info, run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockedOutput:
    stage: str
    path: str
    md5: str | None

    @property
    def is_dir(self) -> bool:
        return bool(self.md5 and self.md5.endswith(".dir"))


def lock_outputs(lock_doc: dict | None) -> dict[str, LockedOutput]:
    """{path: output} for every output of every stage in a parsed dvc.lock."""
    found = {}
    for stage, entry in ((lock_doc or {}).get("stages") or {}).items():
        for out in entry.get("outs") or []:
            found[out["path"]] = LockedOutput(stage, out["path"], out.get("md5"))
    return found


def _declared(stage: dict):
    for section in ("outs", "metrics", "plots"):
        for item in stage.get(section) or []:
            path, opts = (next(iter(item.items())) if isinstance(item, dict) else (item, None))
            yield path, opts or {}


def _declared_in(dvc_yaml_doc: dict):
    for stage in (dvc_yaml_doc.get("stages") or {}).values():
        yield from _declared(stage)


def stored_outputs(dvc_yaml_doc: dict) -> list[str]:
    """The outputs dvc.yaml caches and pushes to the remote (``cache`` and ``push`` not false)."""
    return sorted(path for path, opts in _declared_in(dvc_yaml_doc)
                  if opts.get("cache", True) is not False and opts.get("push", True) is not False)


def git_tracked_outputs(dvc_yaml_doc: dict) -> list[str]:
    """The outputs dvc.yaml leaves to git (``cache: false``): metrics, reports, manifest, card."""
    return sorted(path for path, opts in _declared_in(dvc_yaml_doc) if opts.get("cache") is False)


def lock_sha256(root: Path) -> str:
    """SHA-256 of dvc.lock ("" without one): ties a record of a run to the lock it left."""
    lock = root / paths.DVC_LOCK
    return sha256_file(lock) if lock.is_file() else ""


def read_lock(root: Path) -> dict:
    lock = root / paths.DVC_LOCK
    return yaml.safe_load(lock.read_text(encoding="utf-8")) if lock.is_file() else {}


def read_stored(root: Path) -> list[str]:
    return stored_outputs(yaml.safe_load((root / paths.DVC_YAML).read_text(encoding="utf-8")))


def stored_in_lock(root: Path) -> dict[str, LockedOutput]:
    """{path: its dvc.lock record} of every stored output the committed dvc.lock names."""
    recorded = lock_outputs(read_lock(root))
    return {p: recorded[p] for p in read_stored(root) if p in recorded}


def output_problem(root: Path, path: str, entry: LockedOutput | None) -> str | None:
    """Why file ``path`` is not exactly the output dvc.lock records (``entry``); None when it is."""
    if entry is None:
        return f"{path} is not an output in dvc.lock (run `dvc repro` and commit dvc.lock)"
    if not (root / path).is_file():
        return f"{path} is missing (run `dvc pull` / `dvc repro`)"
    if md5_file(root / path) != entry.md5:
        return (f"{path} differs from what dvc.lock records for stage '{entry.stage}' "
                f"(stale output or uncommitted dvc.lock; run `dvc repro` and commit)")
    return None


def output_problems(root: Path, recorded: dict[str, LockedOutput], wanted) -> list[str]:
    """Why each of ``wanted`` (files) is not exactly the output dvc.lock records; [] when all are."""
    found = (output_problem(root, path, recorded.get(path)) for path in (Path(p).as_posix() for p in wanted))
    return [problem for problem in found if problem]


def verify_stored(root: Path) -> tuple[list[str], list[str]]:
    """(verified files, problems): every stored single-file output hashed and compared with dvc.lock."""
    problems = {path: output_problem(root, path, entry)
                for path, entry in stored_in_lock(root).items() if not entry.is_dir}
    return [p for p, problem in problems.items() if not problem], [q for q in problems.values() if q]


def stored_by(root: Path, stages) -> list[str]:
    """The stored outputs that ``stages`` wrote (what a push after running them would send)."""
    return [p for p, entry in stored_in_lock(root).items() if entry.stage in set(stages)]


def remote_inside(root: Path) -> Path | None:
    """The default remote's folder, relative to the repository, when it lies inside it (``dvc-store/``:
    its objects are committed to git); None for an object store or a folder elsewhere."""
    _, url = remote_info(root)
    if not url or "://" in url:
        return None
    folder = (root / ".dvc" / url).resolve()
    return folder.relative_to(root.resolve()) if folder.is_relative_to(root.resolve()) else None


def missing(root: Path, wanted) -> list[str]:
    return [p for p in wanted if not (root / p).exists()]


@dataclass(frozen=True)
class Pull:
    restored: list[str]        # stored outputs that were missing and came from the DVC cache or remote
    not_stored: list[str]      # stored outputs dvc.lock names that neither has: they will be computed
    output: str


def pull_outputs(root: Path, run_cache: bool = False) -> Pull:
    """`dvc pull` of everything the remote may have (raw data and stored outputs; with ``run_cache``
    DVC's run history too); what is absent there is no error: `dvc repro` computes it."""
    stored = list(stored_in_lock(root))
    before = missing(root, stored)
    args = ["dvc", "pull", "--allow-missing", *(["--run-cache"] if run_cache else [])]
    result = run(args, root, check=False)
    if result.returncode != 0:
        raise DvcError(f"`dvc pull` failed:\n{result.stdout}{result.stderr}")
    after = set(missing(root, stored))
    return Pull([p for p in before if p not in after], sorted(after), result.stdout + result.stderr)


def push_outputs(root: Path, run_cache: bool = False) -> str:
    """`dvc push` of every stored output (and raw data), optionally with the run-cache."""
    args = ["dvc", "push", *(["--run-cache"] if run_cache else [])]
    result = run(args, root, check=False)
    if result.returncode != 0:
        raise DvcError(f"`dvc push` failed (the outputs stay in the local cache):\n{result.stdout}{result.stderr}")
    return (result.stdout + result.stderr).strip()


def status_clean(root: Path) -> tuple[bool, str]:
    """`dvc status`: (clean, its output)."""
    result = run(["dvc", "status"], root, check=False)
    text = (result.stdout + result.stderr).strip()
    return result.returncode == 0 and "up to date" in text, text
