"""Where a release's model outputs came from, and the release bot's commit when they were trained
on the release runner. The release notes name the path taken:

- ``reviewed``: every stored output dvc.lock names was restored from the DVC remote, the bytes the
  PR's review evaluated; nothing was trained on the release runner.
- ``reproduced``: the remote lacked some outputs, the release runner trained them, and the bytes
  equal what the merged dvc.lock records (the pinned environment at work); nothing to commit.
- ``trained``: trained on the release runner, and the result is not all in the merged commit (its
  dvc.lock was stale, or the in-repository remote lacked the objects, as after a fork PR). The
  release bot commits dvc.lock, the changed outputs and the new remote objects on top of the
  merge; the release (and its tag) is that commit, shipped to the publish job as a git bundle.
- ``committed``: a local build with no record of the run (``build/run/run.json``): the outputs
  are the ones committed with dvc.lock, origin unknown.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from pipeline import paths
from pipeline.common import read_json
from pipeline.store.dvc import changed_paths, git
from pipeline.store.outputs import git_tracked_outputs, lock_sha256, remote_inside

log = logging.getLogger(__name__)

REVIEWED, REPRODUCED, TRAINED, COMMITTED = "reviewed", "reproduced", "trained", "committed"
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
BUNDLE_FILE = "release-commit.bundle"


@dataclass(frozen=True)
class Origin:
    path: str                    # reviewed | reproduced | trained | committed
    merged_commit: str           # HEAD when the release job started
    release_commit: str          # what the release describes and its tag points at
    re_ran: list[str] = field(default_factory=list)      # stages the run job computed on the runner
    committed: list[str] = field(default_factory=list)   # files in the bot commit
    bundle: str | None = None    # the bot commit as a git bundle, relative to --out

    def as_json(self) -> dict:
        return asdict(self)

    def sentence(self) -> str:
        """The release notes' line (markdown; shas and stage names are ours, not user text)."""
        merged, release = self.merged_commit[:12], self.release_commit[:12]
        if self.path == REVIEWED:
            return (f"**Outputs:** the reviewed bytes. Every output `dvc.lock` of `{merged}` names was restored from "
                    f"the DVC remote and matched its MD5; nothing was trained on the release runner.")
        if self.path == REPRODUCED:
            return (f"**Outputs:** trained on the release runner ({', '.join(self.re_ran)}): the DVC remote lacked "
                    f"them. The bytes equal what `dvc.lock` of `{merged}` records, so no commit was needed.")
        if self.path == TRAINED:
            how = ", ".join(self.re_ran) or "restored from the run-cache"
            return (f"**Outputs:** trained on the release runner ({how}) because `{merged}` did not record them in a form the DVC remote had. The release "
                    f"bot committed `dvc.lock`, the outputs and the remote's new objects as `{release}` on top of "
                    f"the merge ({len(self.committed)} files); this release and its tag are that commit.")
        return (f"**Outputs:** the ones committed with `dvc.lock` at `{release}` (a build without a record of how "
                f"they were obtained).")


def run_facts(root: Path) -> dict | None:
    """The record of the `python -m pipeline run` that produced this work tree, if it still describes it."""
    path = root / paths.RUN_FACTS
    facts = read_json(path) if path.is_file() else None
    return facts if facts and facts.get("lock_sha256") == lock_sha256(root) else None


def to_commit(root: Path) -> list[str]:
    """What a run changed that the release commit must hold: dvc.lock, git-tracked outputs, remote objects."""
    store = remote_inside(root)
    dvc_yaml = root / paths.DVC_YAML
    tracked = git_tracked_outputs(yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))) if dvc_yaml.is_file() else []
    candidates = [paths.DVC_LOCK.as_posix(), *tracked, *([store.as_posix()] if store else [])]
    return changed_paths(root, *candidates)


def settle(root: Path, may_commit: bool) -> Origin | None:
    """The origin of the work tree's outputs; commits them as the release bot when they are new and
    ``may_commit``. None: they are new and may not be committed (the caller refuses to release)."""
    merged = git(root, "rev-parse", "HEAD")
    facts = run_facts(root)
    re_ran = list((facts or {}).get("re_ran") or [])
    changes = to_commit(root)
    if not changes:
        path = COMMITTED if facts is None else REPRODUCED if facts.get("model_trained") else REVIEWED
        return Origin(path, merged, merged, re_ran)
    if not may_commit:
        return None
    git(root, "add", "--", *changes)
    message = (f"Release outputs of {merged[:12]}, trained on the release runner\n\n"
               f"The DVC remote did not hold the outputs the merged dvc.lock names (re-ran: "
               f"{', '.join(re_ran) or 'none'}). This commit records dvc.lock and the outputs as reproduced.")
    git(root, "-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}", "commit", "--quiet",
        "--no-verify", "-m", message)
    release = git(root, "rev-parse", "HEAD")
    log.info("release: committed %d files as %s (the release bot)", len(changes), release[:12])
    return Origin(TRAINED, merged, release, re_ran, changes)


def tag_and_bundle(root: Path, origin: Origin, tag: str, out: Path) -> Origin:
    """Tag the release commit; a bot commit also goes into a git bundle the publish job pushes."""
    git(root, "-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}", "tag", "-a", tag,
        origin.release_commit, "-m", f"{tag}: {origin.path} outputs")
    if origin.path != TRAINED:
        return origin
    bundle = out / BUNDLE_FILE
    git(root, "bundle", "create", str(bundle.resolve()), f"refs/tags/{tag}", f"^{origin.merged_commit}")
    return replace(origin, bundle=BUNDLE_FILE)
