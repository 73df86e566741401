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

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from phishing_url_detector import contract as C
from phishing_url_detector.errors import LoaderError, VerificationError
from phishing_url_detector.releases import (
    CARD_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    SUMS_FILE,
    bundle_asset_name,
    model_asset_name,
    parse_sha256sums,
    provenance_asset_names,
    release_asset_names,
    sha256_file,
    verify_release_dir,
    write_sha256sums,
)
from phishing_url_detector.versions import TAG_GLOB, TAG_PREFIX
from pipeline import paths as P
from pipeline.common import ExitCode, PipelineError, json_bytes, terminal
from pipeline.release import model_card, origin
from pipeline.release.origin import Origin
from pipeline.release.versioning import (
    BUMP_INITIAL,
    ReleaseDecision,
    ReleaseFacts,
    latest_version,
    next_release,
    release_text_digest,
)
from pipeline.store.outputs import lock_outputs, output_problems

log = logging.getLogger(__name__)

DIST_ONNX = P.ONNX
DIST_MANIFEST = P.MANIFEST
METRICS = P.METRICS
CARD = model_card.CARD
DVC_LOCK = P.DVC_LOCK
# The client distribution whose wheel each release attaches: built from exactly these (never from
# build/ or *.egg-info leftovers of an in-tree build), which must also equal HEAD.
CLIENT = Path("client")
CLIENT_SOURCES = (CLIENT / "pyproject.toml", CLIENT / "README.md", CLIENT / "src")
CLIENT_LOCK = Path("requirements/client.lock")  # the wheel check's dependencies, every file by sha256
# What a release is built from: each must match dvc.lock; the git-tracked ones must also match HEAD.
INPUTS = (DIST_ONNX, DIST_MANIFEST, METRICS, CARD)
GIT_TRACKED = (DIST_MANIFEST, METRICS, CARD, DVC_LOCK, *CLIENT_SOURCES)

DEFAULT_OUT = Path("dist")
RELEASE_DIR = "release"
NOTES_FILE = "release-notes.md"
DECISION_FILE = "release.json"
# Manifest fields that name the build rather than describe the model: left out of the PATCH digest.
STAMP_FIELDS = ("version", "git_commit", "dvc_lock_sha256", "created_at")
NOTES_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "fpr")
WHEEL_NAME = re.compile(r"phishing_url_detector-(\d+\.\d+\.\d+)-py3-none-any\.whl")
# What the wheel check scores with the release's ONNX file, and the line each must give.
CHECK_URLS = ("https://www.wikipedia.org/", "http://paypal.com.secure-login.example.tk/webscr?cmd=_login")
_SCORE_LINE = re.compile(r"(phishing|legitimate)\s+[01]\.\d{4}\s+(\S+)")


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


def check_against_lock(root: Path, lock_text: str, paths=INPUTS) -> None:
    """Every release input must be a stage output recorded in dvc.lock with this exact content."""
    problems = output_problems(root, lock_outputs(yaml.safe_load(lock_text)), paths)
    if problems:
        raise ReleaseError("the release inputs are not the committed pipeline's outputs:\n  " + "\n  ".join(problems))


def text_digest(card: str, manifest: dict, metrics_text: str) -> str:
    """Digest of the text assets without the fields that name the build (version, commit, time)."""
    stripped = {k: v for k, v in manifest.items() if k not in STAMP_FIELDS}
    return release_text_digest(card=model_card.unstamp_version(card), manifest=stripped, metrics=metrics_text)


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


def release_manifest(manifest: dict, version: str, commit: str, lock_sha256: str, created_at: str) -> dict:
    out = json.loads(json.dumps(manifest))  # deep copy
    out["model"]["file"] = model_asset_name(version)
    out.update(version=version, git_commit=commit, dvc_lock_sha256=lock_sha256, created_at=created_at)
    return out


# -- release notes --------------------------------------------------------------------------
def _metric_row(label: str, old, new, ci: str = "", digits: int = 4) -> str:
    def fmt(x):
        return model_card.num(x, digits)
    if old is None:
        return f"| {label} | - | {fmt(new)} | - | {ci} |"
    return f"| {label} | {fmt(old)} | {fmt(new)} | {new - old:+.{digits}f} | {ci} |"


def _newest(metrics: dict) -> dict | None:
    """The future split's newest-months headline (``future.newest_<N>_months``), if the metrics have one."""
    return next((v for k, v in metrics.get("future", {}).items() if k.startswith("newest_")), None)


def metric_diff(current: dict, previous: dict | None, previous_tag: str | None, tag: str) -> str:
    ens, prev = current["ensemble"], (previous or {}).get("ensemble", {})
    rows = []
    keys = [k for k in model_card.metric_keys(ens) if k in NOTES_METRICS or k.startswith("tpr_at_fpr_")]
    for k in keys:
        old = prev.get(k, {}).get("value") if isinstance(prev.get(k), dict) else None
        rows.append(_metric_row(model_card.metric_label(k), old, ens[k]["value"], model_card.interval(ens[k])))
    oos, prev_oos = current.get("out_of_source", {}), (previous or {}).get("out_of_source", {})
    if "recall" in oos:
        rows.append(_metric_row("out-of-source recall (PhishTank)", prev_oos.get("recall"), oos["recall"]))
        year = model_card.latest_year(oos["recall_by_year"])
        if year is not None:
            old = model_card.dig(prev_oos, "recall_by_year", year, "recall")
            rows.append(_metric_row(f"out-of-source recall, {year}", old, oos["recall_by_year"][year]["recall"]))
    newest, prev_newest = _newest(current), _newest(previous or {})
    if newest and newest.get("recall") is not None:
        rows.append(_metric_row(f"recall on the newest {len(newest['months'])} months (future split)",
                                (prev_newest or {}).get("recall"), newest["recall"]))
    rows.append(_metric_row("threshold", (previous or {}).get("threshold"), current["threshold"], digits=6))
    head = f"| metric | {previous_tag or 'previous'} | {tag} | change | 95% interval ({tag}) |"
    title = (f"### Metrics against {previous_tag}" if previous_tag
             else "### Metrics (first release: nothing to compare with)")
    return "\n".join([title, "", "Test split unless noted, at each release's own threshold.", "", head,
                      "|---|---:|---:|---:|---:|", *rows])


def release_notes(card: str, decision: ReleaseDecision, current_metrics: dict,
                  previous: PreviousRelease | None, onnx_name: str, wheel: CheckedWheel, origin: Origin) -> str:
    parts = [model_card.section(card, "Summary"), "",
             f"**Why {decision.tag}:** {decision.reason}"
             + ("." if decision.bump == BUMP_INITIAL else f" ({decision.bump} version bump)."), "",
             origin.sentence(), "",
             metric_diff(current_metrics, previous.metrics if previous else None,
                         previous.tag if previous else None, decision.tag), "",
             *client_notes(decision.tag, onnx_name, wheel), "",
             "### Verify", "",
             "```sh",
             "sha256sum -c SHA256SUMS   # every asset, the wheel included",
             "# build provenance, offline with the attached bundles (what the client checks before loading)",
             *(f"gh attestation verify {name} --repo OWNER/NAME --bundle {bundle_asset_name(name)} "
               "--signer-workflow OWNER/NAME/.github/workflows/release.yml --source-ref refs/heads/main"
               for name in (onnx_name, SUMS_FILE)),
             f"gh attestation verify {wheel.name} --repo OWNER/NAME",
             "```", "",
             "The full model card is the `MODEL_CARD.md` asset."]
    return "\n".join(parts) + "\n"


def client_notes(tag: str, onnx_name: str, wheel: CheckedWheel) -> list[str]:
    """The notes' "Use it" section: the attached client wheel, how to install it, what it was tested with."""
    deps = ", ".join(f"`{d}`" for d in wheel.installed if not d.lower().startswith("phishing-url-detector=="))
    return ["### Use it", "",
            f"`{wheel.name}` is the client this release was tested with: before it was attached it was "
            f"installed alone into a fresh virtual environment (with only its dependencies: {deps}), where "
            f"its `phishing-url-detector score` verified `{onnx_name}` and scored URLs with it.", "",
            "```sh",
            f"pip install {wheel.name}   # or: pip install https://github.com/OWNER/NAME/releases/download/"
            f"{tag}/{wheel.name}",
            f"phishing-url-detector score --repo OWNER/NAME --model {onnx_name} http://example.com/"
            "   # verifies (provenance too), then scores",
            "```", "",
            "```python",
            "from phishing_url_detector import Detector",
            f'detector = Detector.from_release("OWNER/NAME", "{tag}")   # fetch, verify, cache, load',
            'print(detector.score(["http://example.com/login"])[0].verdict)',
            "```"]


# -- the client wheel -----------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedWheel:
    """A client wheel that installed alone into a fresh venv and scored with the release."""

    path: Path
    installed: tuple[str, ...]  # `pip list --format=freeze` of that venv

    @property
    def name(self) -> str:
        return self.path.name


def _run(command: list, what: str, **kwargs) -> str:
    """Run a step of the wheel build or check; a failure is a ReleaseError that shows its output."""
    try:
        done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    except OSError as exc:
        raise ReleaseError(f"{what}: cannot run {command[0]}: {exc}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise ReleaseError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _pip_env(**extra: str) -> dict:
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
    pip = [sys.executable, "-m", "pip", "--python", _venv_script(venv, "python")]
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


# -- the build ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildResult:
    release: bool
    reason: str
    version: str | None = None
    tag: str | None = None
    bump: str | None = None
    previous_tag: str | None = None
    directory: Path | None = None
    notes: Path | None = None
    files: tuple = ()
    wheel: str | None = None
    origin: Origin | None = None  # where the model outputs came from (origin.py), and the release commit

    def as_json(self) -> dict:
        doc = asdict(self)
        # Names relative to --out, so the file does not depend on where the build ran.
        doc["directory"] = self.directory.name if self.directory else None
        doc["notes"] = self.notes.name if self.notes else None
        doc["files"] = list(self.files)
        doc["origin"] = self.origin.as_json() if self.origin else None
        # Attached by the publish job after SHA256SUMS (so not in "files"); the client requires them.
        doc["provenance_assets"] = provenance_asset_names(self.version) if self.release else []
        return doc


@dataclass(frozen=True)
class Inputs:
    """The committed pipeline outputs a release is made of, checked."""

    lock_text: str
    manifest: dict
    metrics_text: str
    card: str


def head_commit(root: Path, allow_dirty: bool) -> Commit:
    """HEAD, once the inputs (already checked against dvc.lock) are shown to be what it holds."""
    head = commit_facts(root)
    dirty = dirty_paths(root, GIT_TRACKED)
    if dirty and not allow_dirty:
        raise ReleaseError("these release inputs differ from HEAD, so no commit describes them: "
                           f"{', '.join(dirty)}; commit them (the release job passes --commit-outputs to commit "
                           f"them as the release bot; --allow-dirty for a local experiment)")
    return Commit(head.sha + "-dirty", head.seconds, head.created_at) if dirty else head


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
    if model_card.unstamp_version(card) != card:
        raise ReleaseError(f"{CARD} already carries a version; it must be the card DVC renders")
    if model_card.render_card(root) != card:
        raise ReleaseError(f"{CARD} is stale: it is not what the outputs render to (`dvc repro model-card`)")
    return Inputs(lock_text, manifest, (root / METRICS).read_text(encoding="utf-8"), card)


def decide(root: Path, inputs: Inputs, previous_dir: Path | None,
           tags: list[str] | None) -> tuple[ReleaseDecision | None, PreviousRelease | None, list[str]]:
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
    return decision, previous, tags


def write_model_assets(root: Path, staging: Path, inputs: Inputs, version: str, tag: str, head: Commit) -> None:
    """The four model files of the release (SHA256SUMS comes once the wheel is there)."""
    shutil.copyfile(root / DIST_ONNX, staging / model_asset_name(version))
    lock_sha = hashlib.sha256(inputs.lock_text.encode("utf-8")).hexdigest()
    (staging / MANIFEST_FILE).write_bytes(
        json_bytes(release_manifest(inputs.manifest, version, head.sha, lock_sha, head.created_at)))
    (staging / CARD_FILE).write_bytes(model_card.stamp_version(inputs.card, version, tag, head.sha).encode("utf-8"))
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
    files = tuple({"name": n, "size_bytes": (release_dir / n).stat().st_size, "sha256": sha256_file(release_dir / n)}
                  for n in release_files(decision.version, wheel.name))
    result = BuildResult(True, decision.reason, decision.version, decision.tag, decision.bump, decision.previous_tag,
                         _relative(release_dir, root), _relative(notes_path, root), files, wheel.name, origin)
    (out / DECISION_FILE).write_bytes(json_bytes(result.as_json()))
    return result


def record_no_release(out: Path, latest_tag: str) -> BuildResult:
    result = BuildResult(False, f"nothing changed since {latest_tag}: same contract, ONNX bytes and "
                                f"card/manifest/metrics text", previous_tag=latest_tag)
    shutil.rmtree(out / RELEASE_DIR, ignore_errors=True)
    (out / NOTES_FILE).unlink(missing_ok=True)
    (out / DECISION_FILE).write_bytes(json_bytes(result.as_json()))
    return result


def build(root: Path = Path("."), out: Path = DEFAULT_OUT, previous_dir: Path | None = None,
          tags: list[str] | None = None, allow_dirty: bool = False, commit_outputs: bool = False) -> BuildResult:
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
    decision, previous, tags = decide(root, inputs, previous_dir, tags)
    out.mkdir(parents=True, exist_ok=True)
    if decision is None:
        return record_no_release(out, latest_version(tags).tag)
    release_dir, wheel = write_release_dir(root, out, inputs, decision, head)
    if commit_outputs:
        settled = origin.tag_and_bundle(root, settled, decision.tag, out)
    return record_release(root, out, release_dir, wheel, inputs, decision, previous, settled)


# -- CLI ------------------------------------------------------------------------------------
def _write_github_output(path: str, result: BuildResult) -> None:
    values = {"release": "true" if result.release else "false", "tag": result.tag or "",
              "version": result.version or "", "previous-tag": result.previous_tag or "",
              "dir": result.directory.as_posix() if result.directory else "",
              "notes": result.notes.as_posix() if result.notes else "",
              "onnx": (result.directory / model_asset_name(result.version)).as_posix() if result.release else "",
              "wheel": result.wheel or "",
              "outputs": result.origin.path if result.origin else "",
              "commit": result.origin.release_commit if result.origin else "",
              "bundle": result.origin.bundle or "" if result.origin else ""}
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(f"{k}={v}\n" for k, v in values.items())


def _cmd_release(args: argparse.Namespace) -> int:
    if args.latest_tag:
        latest = latest_version(git_tags(Path(".")) if args.tags is None else args.tags)
        if latest:
            print(latest.tag)
        return ExitCode.OK
    try:
        result = build(Path("."), Path(args.out), Path(args.previous_dir) if args.previous_dir else None,
                       args.tags, args.allow_dirty, args.commit_outputs)
    except ReleaseError as exc:
        print(f"release: error: {terminal(exc, newlines=True)}", file=sys.stderr)
        return ExitCode.ERROR
    if args.github_output:
        _write_github_output(args.github_output, result)
    if not result.release:
        print(f"release: no release: {terminal(result.reason)}")
        return ExitCode.OK
    print(f"release: {result.tag} ({result.bump}: {terminal(result.reason)})")
    print(f"release: outputs {result.origin.path}; release commit {result.origin.release_commit}"
          + (f"; bot commit bundled in {result.origin.bundle}" if result.origin.bundle else ""))
    print(f"release: verified {terminal(result.directory)}/ with the loader's checks:")
    for f in result.files:
        print(f"  {f['sha256']}  {f['size_bytes']:>10}  {terminal(f['name'])}")
    print(f"release: {result.wheel} installed alone into a fresh venv, verified and scored with the release")
    print(f"release: notes in {result.notes}")
    return ExitCode.OK


def register(subparsers) -> None:
    p = subparsers.add_parser("release", help="build the versioned release directory the workflow uploads",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                   help="write DIR/release/ (the assets), DIR/release-notes.md and DIR/release.json "
                        "(default: %(default)s)")
    p.add_argument("--previous-dir", metavar="DIR",
                   help="the latest model release, downloaded (gh release download TAG --dir DIR); "
                        "required when a model-v* tag exists")
    p.add_argument("--tags", nargs="*", metavar="TAG",
                   help="the repository's tags (default: git tag --list 'model-v*'); '--tags' alone = none")
    p.add_argument("--allow-dirty", action="store_true",
                   help="build even if dvc.lock or the committed outputs differ from HEAD "
                        "(git_commit is then recorded as <sha>-dirty)")
    p.add_argument("--github-output", metavar="FILE",
                   help="append release, tag, version, previous-tag, dir, notes, onnx, wheel as KEY=VALUE lines "
                        "(the workflow passes $GITHUB_OUTPUT)")
    p.add_argument("--commit-outputs", action="store_true",
                   help="the release job: when dvc.lock or the outputs changed on this runner (trained here), "
                        "commit them as the release bot and release that commit; tag the release commit and "
                        "bundle a bot commit for the publish job (release-commit.bundle)")
    p.add_argument("--latest-tag", action="store_true",
                   help="only print the latest model-vX.Y.Z tag (nothing if none) and exit")
    p.set_defaults(func=_cmd_release)
