"""``python -m pipeline release``: build a versioned, verifiable model release directory.

The release workflow only runs this command and uploads what it writes, so a
local build of a commit is byte for byte what the workflow publishes for it::

    <out>/release/phishing-url-detector-<version>.onnx   the DVC export, renamed
    <out>/release/manifest.json      dist/manifest.json + version, git_commit, dvc_lock_sha256,
                                     created_at (the commit's time, never the wall clock);
                                     model.file is the versioned name
    <out>/release/MODEL_CARD.md      model_card/MODEL_CARD.md with the version stamped in
    <out>/release/metrics.json       metrics.json as committed
    <out>/release/phishing_url_detector-<client version>-py3-none-any.whl
                                     the client (./client) built with SOURCE_DATE_EPOCH = the
                                     commit's time, and proven on this release before it is attached
    <out>/release/SHA256SUMS         sha256sum format over the five files above
    <out>/release-notes.md           the card's summary + the metric diff against the previous release
    <out>/release.json               the decision (release or not, version, tag, bump, reason, files)

The model release proper is the four model files and SHA256SUMS
(``phishing_url_detector.releases.release_asset_names``). The release workflow's publish
job then attests the ONNX file and SHA256SUMS and attaches their Sigstore bundles
(``provenance_asset_names``: ``<asset>.sigstore.json``, listed in ``release.json``); a local
build has none, so the client loads it only with ``--allow-unverified``. The wheel is an extra
asset that SHA256SUMS also covers, so a release without it still verifies.
Before the wheel is attached it is installed alone into a fresh virtual
environment (its own dependencies only, from ``requirements/client.lock`` with
``--require-hashes``; the wheel itself after them with ``--no-deps``) and its ``phishing-url-detector score``
must verify and score two URLs with this release's ONNX file; otherwise no
release is written.

Nothing under ``dist/`` that DVC tracks is touched. The version comes from
:func:`pipeline.release.versioning.next_release`: the existing tags (``--tags``, else
``git tag --list 'model-v*'``) and the previous release (``--previous-dir``, a
downloaded copy of the latest tag's release, verified before use). When the
ONNX bytes, the contract and the text assets all equal the previous release's,
no release is built (``release.json`` says why; exit code 0).

Before building, the inputs must be exactly what the committed pipeline
produced: each one's md5 equals its entry in ``dvc.lock``, and the git-tracked
ones, the client's sources and ``dvc.lock`` itself equal HEAD (``--allow-dirty``
for experiments; the commit is then recorded as ``<sha>-dirty``). The output is
checked with ``verify_release_dir`` (the product loader's own check) before the
command ends.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypedDict

from phishing_url_detector.digests import sha256_file
from phishing_url_detector.errors import LoaderError
from phishing_url_detector.releases import (
    CARD_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    model_asset_name,
    provenance_asset_names,
    release_asset_names,
    verify_release_dir,
    write_sha256sums,
)
from pipeline import paths as P
from pipeline.common import json_bytes
from pipeline.release import origin
from pipeline.release.card.render import stamp_version
from pipeline.release.inputs import (
    CLIENT_LOCK,
    DIST_ONNX,
    DVC_LOCK,
    Commit,
    Inputs,
    PreviousRelease,
    ReleaseError,
    check_against_lock,
    facts,
    git_tags,
    head_commit,
    load_previous,
    read_inputs,
)
from pipeline.release.notes import release_notes
from pipeline.release.origin import Origin
from pipeline.release.versioning import ReleaseDecision, latest_version, next_release
from pipeline.release.wheel import CheckedWheel, build_client_wheel, check_client_wheel

DEFAULT_OUT = P.DIST
RELEASE_DIR = "release"
NOTES_FILE = "release-notes.md"
DECISION_FILE = "release.json"


class Asset(TypedDict):
    """One file of the release directory, as release.json lists it."""

    name: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class BuildResult:
    """What a build decided and wrote: release.json (:meth:`as_json`) and what the command reports."""

    release: bool
    reason: str
    version: str | None = None
    tag: str | None = None
    bump: str | None = None
    previous_tag: str | None = None
    directory: Path | None = None
    notes: Path | None = None
    files: tuple[Asset, ...] = ()
    wheel: str | None = None
    origin: Origin | None = None  # where the model outputs came from (origin.py), and the release commit

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        # Names relative to --out, so the file does not depend on where the build ran.
        doc["directory"] = self.directory.name if self.directory else None
        doc["notes"] = self.notes.name if self.notes else None
        doc["files"] = list(self.files)
        doc["origin"] = self.origin.as_json() if self.origin else None
        # Attached by the publish job after SHA256SUMS (so not in "files"); the client requires them.
        doc["provenance_assets"] = provenance_asset_names(self.version) if self.release and self.version else []
        return doc


def decide(root: Path, inputs: Inputs, previous_dir: Path | None,
           tags: list[str] | None) -> tuple[ReleaseDecision | None, PreviousRelease | None]:
    """The version decision against the latest model-v* tag and its (downloaded, verified) release."""
    tags = git_tags(root) if tags is None else list(tags)
    latest = latest_version(tags)
    previous = None
    if previous_dir is not None:
        if latest is None:
            raise ReleaseError(f"--previous-dir {previous_dir} was given but no model-vX.Y.Z tag exists")
        previous = load_previous(Path(previous_dir), latest.tag)
    elif latest is not None:
        raise ReleaseError(f"{latest.tag} exists: download it (`gh release download {latest.tag} --dir DIR`) "
                           f"and pass --previous-dir DIR, so this build can be compared with it")
    current = facts(inputs.card, inputs.manifest, inputs.metrics_text)
    try:
        decision = next_release(tags, previous.facts if previous else None, current,
                                contract_major=inputs.manifest["contract_major"])
    except ValueError as exc:
        raise ReleaseError(str(exc)) from None
    return decision, previous


def release_manifest(manifest: dict[str, Any], version: str, commit: str, lock_sha256: str,
                     created_at: str) -> dict[str, Any]:
    """The DVC manifest stamped with what names this build; ``model.file`` is the versioned name."""
    out = json.loads(json.dumps(manifest))  # deep copy
    out["model"]["file"] = model_asset_name(version)
    out.update(version=version, git_commit=commit, dvc_lock_sha256=lock_sha256, created_at=created_at)
    return out


def write_model_assets(root: Path, staging: Path, inputs: Inputs, version: str, tag: str, head: Commit) -> None:
    """The four model files of the release (SHA256SUMS comes once the wheel is there)."""
    shutil.copyfile(root / DIST_ONNX, staging / model_asset_name(version))
    lock_sha = hashlib.sha256(inputs.lock_text.encode("utf-8")).hexdigest()
    (staging / MANIFEST_FILE).write_bytes(
        json_bytes(release_manifest(inputs.manifest, version, head.sha, lock_sha, head.created_at)))
    (staging / CARD_FILE).write_bytes(stamp_version(inputs.card, version, tag, head.sha).encode("utf-8"))
    (staging / METRICS_FILE).write_bytes(inputs.metrics_text.encode("utf-8"))


def release_files(version: str, wheel_name: str) -> list[str]:
    """Every asset of the release directory: the model release's, the wheel before SHA256SUMS."""
    names = release_asset_names(version)
    return [*names[:-1], wheel_name, names[-1]]


def assemble(root: Path, staging: Path, inputs: Inputs, decision: ReleaseDecision, head: Commit) -> CheckedWheel:
    """Write, sum and verify every asset in ``staging``; the wheel must then work with the release."""
    write_model_assets(root, staging, inputs, decision.version, decision.tag, head)
    wheel = build_client_wheel(root, staging, head.seconds)
    write_sha256sums(staging, release_files(decision.version, wheel.name)[:-1])
    try:
        verify_release_dir(staging, decision.version)
    except LoaderError as exc:  # a bug here, never the user's doing
        raise ReleaseError(f"the built release does not verify: {exc}") from None
    lock = root / CLIENT_LOCK
    if not lock.is_file():
        raise ReleaseError(f"{CLIENT_LOCK} is missing: the wheel check installs the client's dependencies from it "
                           "by hash (`make lock` writes it)")
    return check_client_wheel(wheel, staging / model_asset_name(decision.version), lock)


def write_release_dir(root: Path, out: Path, inputs: Inputs, decision: ReleaseDecision,
                      head: Commit) -> tuple[Path, CheckedWheel]:
    """``out/release/``, replaced only once the new one is complete and proven."""
    release_dir, staging = out / RELEASE_DIR, out / f".{RELEASE_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        wheel = assemble(root, staging, inputs, decision, head)
        shutil.rmtree(release_dir, ignore_errors=True)
        staging.rename(release_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return release_dir, CheckedWheel(release_dir / wheel.name, wheel.installed)


def _relative(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path


def record_release(root: Path, out: Path, release_dir: Path, wheel: CheckedWheel, inputs: Inputs,
                   decision: ReleaseDecision, previous: PreviousRelease | None, origin: Origin) -> BuildResult:
    """The release notes and release.json of a built release."""
    notes_path = out / NOTES_FILE
    onnx_name = model_asset_name(decision.version)
    notes_path.write_bytes(release_notes(inputs.card, decision, json.loads(inputs.metrics_text), previous,
                                         onnx_name, wheel, origin).encode("utf-8"))
    files = tuple(Asset(name=n, size_bytes=(release_dir / n).stat().st_size, sha256=sha256_file(release_dir / n))
                  for n in release_files(decision.version, wheel.name))
    result = BuildResult(True, decision.reason, decision.version, decision.tag, decision.bump, decision.previous_tag,
                         _relative(release_dir, root), _relative(notes_path, root), files, wheel.name, origin)
    (out / DECISION_FILE).write_bytes(json_bytes(result.as_json()))
    return result


def record_no_release(out: Path, latest_tag: str) -> BuildResult:
    """release.json saying why nothing was built; an older release directory and notes are removed."""
    result = BuildResult(False, f"nothing changed since {latest_tag}: same contract, ONNX bytes and "
                                f"card/manifest/metrics text", previous_tag=latest_tag)
    shutil.rmtree(out / RELEASE_DIR, ignore_errors=True)
    (out / NOTES_FILE).unlink(missing_ok=True)
    (out / DECISION_FILE).write_bytes(json_bytes(result.as_json()))
    return result


def build(root: Path = Path("."), out: Path = DEFAULT_OUT, previous_dir: Path | None = None,
          tags: list[str] | None = None, allow_dirty: bool = False, commit_outputs: bool = False) -> BuildResult:
    """Check the inputs, decide the version, then write, verify and record the release (or why there is none)."""
    root = Path(root)
    out = out if Path(out).is_absolute() else root / out
    if not (root / DVC_LOCK).is_file():
        raise ReleaseError(f"{DVC_LOCK} is missing: run `dvc repro` first")
    lock_text = (root / DVC_LOCK).read_text(encoding="utf-8")
    check_against_lock(root, lock_text)  # before the release bot may commit anything
    settled = origin.settle(root, may_commit=commit_outputs)  # commits dvc.lock as it is, never changes it
    head = head_commit(root, allow_dirty)
    settled = settled or origin.Origin(origin.COMMITTED, head.sha, head.sha)
    inputs = read_inputs(root, lock_text)
    decision, previous = decide(root, inputs, previous_dir, tags)
    out.mkdir(parents=True, exist_ok=True)
    if decision is None:
        assert previous is not None, "next_release decides 'no release' only against a previous release"
        return record_no_release(out, previous.tag)
    release_dir, wheel = write_release_dir(root, out, inputs, decision, head)
    if commit_outputs:
        settled = origin.tag_and_bundle(root, settled, decision.tag, out)
    return record_release(root, out, release_dir, wheel, inputs, decision, previous, settled)
