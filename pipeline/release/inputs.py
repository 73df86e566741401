"""What a release is built from, checked: the committed pipeline outputs, HEAD, and the previous release.

Before anything is written the inputs must be exactly what the committed pipeline produced: each
one's md5 equals its entry in ``dvc.lock`` (:func:`check_against_lock`), and the git-tracked ones,
the client's sources and ``dvc.lock`` itself equal HEAD (:func:`head_commit`). The previous release,
downloaded, is verified before the version decision compares anything with it (:func:`load_previous`).
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from phishing_url_detector import contract as C
from phishing_url_detector.digests import sha256_file
from phishing_url_detector.errors import LoaderError, VerificationError
from phishing_url_detector.releases import (
    CARD_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    SUMS_FILE,
    model_asset_name,
    parse_sha256sums,
    release_asset_names,
)
from phishing_url_detector.versions import TAG_GLOB, TAG_PREFIX
from pipeline import paths as P
from pipeline.common import PipelineError
from pipeline.release.card.render import CARD, render_card, unstamp_version
from pipeline.release.versioning import ReleaseFacts, release_text_digest
from pipeline.store.outputs import lock_outputs, output_problems

DIST_ONNX = P.ONNX
DIST_MANIFEST = P.MANIFEST
METRICS = P.METRICS
DVC_LOCK = P.DVC_LOCK
# The client distribution whose wheel each release attaches: built from exactly these (never from
# build/ or *.egg-info leftovers of an in-tree build), which must also equal HEAD.
CLIENT = Path("client")
CLIENT_SOURCES = (CLIENT / "pyproject.toml", CLIENT / "README.md", CLIENT / "src")
CLIENT_LOCK = Path("requirements/client.lock")  # the wheel check's dependencies, every file by sha256
# What a release is built from: each must match dvc.lock; the git-tracked ones must also match HEAD.
INPUTS = (DIST_ONNX, DIST_MANIFEST, METRICS, CARD)
GIT_TRACKED = (DIST_MANIFEST, METRICS, CARD, DVC_LOCK, *CLIENT_SOURCES)
# Manifest fields that name the build rather than describe the model: left out of the PATCH digest.
STAMP_FIELDS = ("version", "git_commit", "dvc_lock_sha256", "created_at")


class ReleaseError(PipelineError):
    """The release cannot be built as asked; nothing was written."""


# -- git and dvc.lock -----------------------------------------------------------------------
def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise ReleaseError("git is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise ReleaseError(f"git {' '.join(args)} failed: {exc.stderr.strip()}") from None
    return done.stdout


@dataclass(frozen=True)
class Commit:
    """What a build records about HEAD: the same for every build of one commit."""

    sha: str         # with "-dirty" appended when --allow-dirty let differing inputs through
    seconds: int     # committer time: SOURCE_DATE_EPOCH of the wheel
    created_at: str  # the same time as UTC ISO 8601, for the manifest


def commit_facts(root: Path) -> Commit:
    """HEAD's sha and committer time."""
    sha = _git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()
    seconds = int(_git(root, "show", "-s", "--format=%ct", sha).strip())
    return Commit(sha, seconds, datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def git_tags(root: Path) -> list[str]:
    return _git(root, "tag", "--list", TAG_GLOB).split()


def dirty_paths(root: Path, paths) -> list[str]:
    """Those of ``paths`` whose working copy differs from HEAD (modified, untracked or missing)."""
    out = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *map(str, paths))
    return [line[3:] for line in out.splitlines() if line.strip()]


def head_commit(root: Path, allow_dirty: bool) -> Commit:
    """HEAD, once the inputs (already checked against dvc.lock) are shown to be what it holds."""
    head = commit_facts(root)
    dirty = dirty_paths(root, GIT_TRACKED)
    if dirty and not allow_dirty:
        raise ReleaseError("these release inputs differ from HEAD, so no commit describes them: "
                           f"{', '.join(dirty)}; commit them (the release job passes --commit-outputs to commit "
                           f"them as the release bot; --allow-dirty for a local experiment)")
    return Commit(head.sha + "-dirty", head.seconds, head.created_at) if dirty else head


def check_against_lock(root: Path, lock_text: str, paths=INPUTS) -> None:
    """Every release input must be a stage output recorded in dvc.lock with this exact content."""
    problems = output_problems(root, lock_outputs(yaml.safe_load(lock_text)), paths)
    if problems:
        raise ReleaseError("the release inputs are not the committed pipeline's outputs:\n  " + "\n  ".join(problems))


# -- the committed outputs -------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    """The committed pipeline outputs a release is made of, checked."""

    lock_text: str
    manifest: dict
    metrics_text: str
    card: str


def read_inputs(root: Path, lock_text: str) -> Inputs:
    """The DVC manifest (under this contract, describing the ONNX file), the metrics and the card (as rendered)."""
    manifest = json.loads((root / DIST_MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("contract_digest") != C.contract_digest() or manifest.get("contract_major") != C.CONTRACT_MAJOR:
        raise ReleaseError(f"{DIST_MANIFEST} was exported under another contract than phishing_url_detector/contract.py "
                           f"(digest {manifest.get('contract_digest')}, major {manifest.get('contract_major')}); "
                           f"run `dvc repro`")
    if manifest["model"].get("sha256") != sha256_file(root / DIST_ONNX):
        raise ReleaseError(f"{DIST_MANIFEST} describes another ONNX file than {DIST_ONNX}")
    card = (root / CARD).read_text(encoding="utf-8")
    if unstamp_version(card) != card:
        raise ReleaseError(f"{CARD} already carries a version; it must be the card DVC renders")
    if render_card(root) != card:
        raise ReleaseError(f"{CARD} is stale: it is not what the outputs render to (`dvc repro model-card`)")
    return Inputs(lock_text, manifest, (root / METRICS).read_text(encoding="utf-8"), card)


# -- the previous release ---------------------------------------------------------------------
def text_digest(card: str, manifest: dict, metrics_text: str) -> str:
    """Digest of the text assets without the fields that name the build (version, commit, time)."""
    stripped = {k: v for k, v in manifest.items() if k not in STAMP_FIELDS}
    return release_text_digest(card=unstamp_version(card), manifest=stripped, metrics=metrics_text)


def facts(card: str, manifest: dict, metrics_text: str) -> ReleaseFacts:
    return ReleaseFacts(contract_digest=manifest["contract_digest"], model_sha256=manifest["model"]["sha256"],
                        text_digest=text_digest(card, manifest, metrics_text))


@dataclass(frozen=True)
class PreviousRelease:
    tag: str
    facts: ReleaseFacts
    metrics: dict


def verify_previous(directory: Path, version: str) -> dict:
    """Integrity of a downloaded release, as the loader checks it, except the contract MAJOR:
    the previous release may be of an older MAJOR (that is what a MAJOR bump compares with)."""
    names = release_asset_names(version)
    sums_path = directory / SUMS_FILE
    if not sums_path.is_file():
        raise VerificationError(f"{SUMS_FILE} is missing from {directory}")
    sums = parse_sha256sums(sums_path.read_bytes(), str(sums_path))
    for name in names[:-1]:
        if name not in sums or not (directory / name).is_file():
            raise VerificationError(f"{name} is missing from {directory} or not listed in {SUMS_FILE}")
        if sha256_file(directory / name) != sums[name]:
            raise VerificationError(f"{name} does not match {SUMS_FILE}")
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    onnx = directory / model_asset_name(version)
    if manifest.get("version") != version or manifest.get("model", {}).get("sha256") != sums[onnx.name] \
            or manifest.get("model", {}).get("file") != onnx.name:
        raise VerificationError(f"{MANIFEST_FILE} does not describe release {version} and its ONNX file")
    if C.contract_digest(manifest.get("contract", {})) != manifest.get("contract_digest"):
        raise VerificationError(f"{MANIFEST_FILE}: contract_digest does not match its contract")
    return manifest


def load_previous(directory: Path, tag: str) -> PreviousRelease:
    """A downloaded release, verified before anything is compared with it."""
    version = tag.removeprefix(TAG_PREFIX)
    try:
        manifest = verify_previous(directory, version)
    except (LoaderError, ValueError, OSError) as exc:
        raise ReleaseError(f"--previous-dir {directory} is not a valid release {tag}: {exc}") from None
    metrics_text = (directory / METRICS_FILE).read_text(encoding="utf-8")
    card = (directory / CARD_FILE).read_text(encoding="utf-8")
    return PreviousRelease(tag, facts(card, manifest, metrics_text), json.loads(metrics_text))
