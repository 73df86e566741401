"""What a model release is, and how one is verified before anything loads it.

A release is the tag ``model-vMAJOR.MINOR.PATCH`` (:mod:`phishing_url_detector.versions`)
and five assets: the ONNX file, ``manifest.json``, ``MODEL_CARD.md``, ``metrics.json`` and
``SHA256SUMS`` (which covers the other four). Nothing is handed to
onnxruntime until every file has been checked: each against ``SHA256SUMS``,
the ONNX bytes against the manifest's sha256 and size, the manifest's contract
against its own digest, and its ``contract_major`` against the MAJOR this
package was built for (:data:`contract.CONTRACT_MAJOR`). Beside them the release
carries the Sigstore provenance bundles of the ONNX file and of ``SHA256SUMS``
(:func:`provenance_asset_names`), checked by :mod:`phishing_url_detector.provenance`. The release builder
of the training repository writes releases with these same functions.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from phishing_url_detector import contract as C
from phishing_url_detector.digests import sha256_file
from phishing_url_detector.errors import LoaderError, VerificationError
from phishing_url_detector.text import terminal
from phishing_url_detector.versions import tag_of

SUMS_FILE = "SHA256SUMS"
BUNDLE_SUFFIX = ".sigstore.json"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "MODEL_CARD.md"
METRICS_FILE = "metrics.json"
REPO_ENV = "PHISHING_MODEL_REPO"  # the repository releases must come from, when not passed
REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")  # OWNER/NAME as GitHub spells it
_SUMS_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *]([^\n]+)")


def configured_repo(flag: str | None = None, fallback: str | None = None) -> str | None:
    """The repository releases must come from: ``flag`` (``--repo``), else $PHISHING_MODEL_REPO, else ``fallback``
    (the monitor's params ``monitor.repo``). The one place that reads the variable."""
    return flag or os.environ.get(REPO_ENV) or fallback


def warn(message: str) -> None:
    print(terminal(message, newlines=True), file=sys.stderr)


# -- layout and digests -----------------------------------------------------------
def model_asset_name(version: str) -> str:
    """Release asset name of the ONNX file: ``phishing-url-detector-1.2.0.onnx``."""
    return f"{C.MODEL_NAME}-{version}.onnx"


def release_asset_names(version: str) -> list[str]:
    """Every asset a model release must carry (SHA256SUMS last: it covers the rest)."""
    return [model_asset_name(version), MANIFEST_FILE, CARD_FILE, METRICS_FILE, SUMS_FILE]


def bundle_asset_name(asset: str) -> str:
    """Release asset name of the Sigstore provenance bundle of ``asset``: ``<asset>.sigstore.json``."""
    return f"{asset}{BUNDLE_SUFFIX}"


def provenance_asset_names(version: str) -> list[str]:
    """The provenance bundles a release carries beside its assets (made by the release workflow's
    ``publish`` job, after SHA256SUMS, so SHA256SUMS does not list them): the ONNX file's and SHA256SUMS'."""
    return [bundle_asset_name(model_asset_name(version)), bundle_asset_name(SUMS_FILE)]


def format_sha256sums(digests: dict[str, str]) -> str:
    """``sha256sum`` format (``<hex>  <name>``), sorted by name, so
    ``sha256sum -c SHA256SUMS`` works on the downloaded release too."""
    return "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))


def write_sha256sums(directory: str | os.PathLike[str], names: Iterable[str]) -> Path:
    """Hash ``names`` inside ``directory`` and write ``directory/SHA256SUMS``."""
    directory = Path(directory)
    target = directory / SUMS_FILE
    target.write_text(format_sha256sums({n: sha256_file(directory / n) for n in names}), encoding="utf-8")
    return target


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _sums_text(data: str | bytes, source: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VerificationError(f"{source}: not UTF-8 text (invalid byte at offset {exc.start})") from None


def parse_sha256sums(data: str | bytes, source: str = SUMS_FILE) -> dict[str, str]:
    """Parse ``SHA256SUMS`` the way ``sha256sum -c`` reads it, strictly.

    Lines end at ``\\n`` only (not at ``\\r``, form feeds or the other breaks ``splitlines``
    knows); each is ``<64 hex><space><space or *><name>``. A malformed line, a CR, a blank
    line, a name listed twice or a name that is a path (``/``, ``\\``, ``..``) is refused rather
    than skipped, because a skipped line is a file nobody checked. Pass the file's bytes:
    reading it as text would translate ``\\r\\n`` before we could see it.
    """
    text = _sums_text(data, source)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    sums: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        match = _SUMS_LINE.fullmatch(line)
        if not match or "\r" in line or not _plain_name(match.group(2)):
            raise VerificationError(f"{source}: line {lineno} is not '<64 hex digits><space><space or *>"
                                    f"<file name>' with a plain file name: {line!r}")
        digest, name = match.group(1).lower(), match.group(2)
        if name in sums:
            raise VerificationError(f"{source}: line {lineno}: {name} is listed twice")
        sums[name] = digest
    if not sums:
        raise VerificationError(f"{source}: lists no files")
    return sums


# -- verification -----------------------------------------------------------------
class ModelFile(TypedDict):
    """The manifest's ``model``: the ONNX file it describes."""

    file: str
    sha256: str
    size_bytes: int


class Manifest(TypedDict):
    """``manifest.json`` as the client reads it, once :func:`check_manifest` has passed it: each field
    is checked but ``version`` (:func:`verify_release_dir` checks it) and ``target_fpr`` (only shown).
    The training repository writes more fields; the client ignores them."""

    contract_major: int
    contract: dict[str, Any]
    contract_digest: str
    model: ModelFile
    threshold: float
    version: NotRequired[str]
    target_fpr: NotRequired[float]


@dataclass(frozen=True)
class VerifiedModel:
    """A model file that passed verification (or, for a bare local file, that
    the user chose to load unverified: ``verified`` is False then)."""

    onnx_path: Path
    sha256: str
    manifest: Manifest | None
    source: str
    verified: bool = True
    from_cache: bool = False

    @property
    def directory(self) -> Path:
        return self.onnx_path.parent

    @property
    def version(self) -> str | None:
        return None if self.manifest is None else self.manifest.get("version")

    @property
    def threshold(self) -> float | None:
        return None if self.manifest is None else self.manifest.get("threshold")

    @property
    def target_fpr(self) -> float | None:
        return None if self.manifest is None else self.manifest.get("target_fpr")


def _check_against_sums(directory: Path, sums: dict[str, str], names: Iterable[str],
                        known: dict[str, str]) -> None:
    for name in names:
        path = directory / name
        if name not in sums:
            raise VerificationError(f"{SUMS_FILE} in {directory} does not list {name}; refusing an unlisted file")
        if not path.is_file():
            raise VerificationError(f"{name} is missing from {directory}")
        actual = known.get(name) or sha256_file(path)
        known[name] = actual
        if actual != sums[name]:
            raise VerificationError(f"{name}: sha256 {actual} does not match the {SUMS_FILE} entry "
                                    f"{sums[name]}; the file was altered or corrupted")


def load_manifest(path: Path) -> dict[str, Any]:
    """A JSON object, as written: nothing in it is checked yet (:func:`check_manifest`)."""
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise VerificationError(f"{path}: expected a JSON object")
    return manifest


def _check_contract(manifest: dict[str, Any], where: str) -> str:
    """The manifest's contract must be ours: MAJOR first (it needs another loader, not a
    re-download), then the digest of the contract it carries. Returns that digest."""
    major = manifest.get("contract_major")
    if not isinstance(major, int) or isinstance(major, bool):
        raise VerificationError(f"{where}: missing or non-integer 'contract_major'")
    if major != C.CONTRACT_MAJOR:
        raise VerificationError(
            f"{where}: model contract major is {major} but this loader was built for contract "
            f"major {C.CONTRACT_MAJOR}; use a {tag_of(f'{C.CONTRACT_MAJOR}.x.y')} release or a loader "
            f"built for major {major}")
    contract, claimed = manifest.get("contract"), manifest.get("contract_digest")
    if not isinstance(contract, dict) or not isinstance(claimed, str):
        raise VerificationError(f"{where}: missing 'contract' object or 'contract_digest'")
    actual = C.contract_digest(contract)
    if actual != claimed:
        raise VerificationError(f"{where}: contract_digest {claimed} does not match the digest of its "
                                f"contract {actual}")
    return claimed


def _check_model_file(manifest: dict[str, Any], onnx_path: Path, onnx_sha256: str, expect_file: str | None,
                      where: str) -> None:
    model = manifest.get("model")
    if not isinstance(model, dict):
        raise VerificationError(f"{where}: missing 'model' object")
    if expect_file is not None and model.get("file") != expect_file:
        raise VerificationError(f"{where}: model.file is {model.get('file')!r}, expected {expect_file!r}")
    if model.get("sha256") != onnx_sha256:
        described = f" (it describes {model.get('file')!r})" if model.get("file") != onnx_path.name else ""
        raise VerificationError(f"{onnx_path.name}: sha256 {onnx_sha256} does not match {where} "
                                f"model.sha256 {model.get('sha256')}{described}")
    size = onnx_path.stat().st_size
    if model.get("size_bytes") != size:
        raise VerificationError(f"{onnx_path.name}: size {size} bytes does not match {where} "
                                f"model.size_bytes {model.get('size_bytes')}")


def check_manifest(manifest: dict[str, Any], onnx_path: Path, onnx_sha256: str, *, expect_file: str | None = None,
                   where: str = MANIFEST_FILE) -> Manifest:
    """Refuse a manifest that does not describe ``onnx_path`` under our contract; return it, checked."""
    claimed = _check_contract(manifest, where)
    _check_model_file(manifest, onnx_path, onnx_sha256, expect_file, where)
    threshold = manifest.get("threshold")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) \
            or not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise VerificationError(f"{where}: 'threshold' must be a number in [0, 1], got {threshold!r}")
    if claimed != C.contract_digest():
        # Same MAJOR yet another contract: the release changed the I/O contract without the MAJOR bump
        # that the contract promises for any change, so this loader cannot know what it would feed.
        raise VerificationError(
            f"{where}: contract_digest {claimed} differs from this loader's {C.contract_digest()} although "
            f"both are contract major {C.CONTRACT_MAJOR}; any contract change must bump the major, so this "
            "release's contract is not the one this loader implements; refusing it")
    return cast(Manifest, manifest)


def verify_release_dir(directory: str | os.PathLike[str], version: str) -> VerifiedModel:
    """Verify a complete release directory (as downloaded, or before upload).

    Every asset is checked against SHA256SUMS before the manifest is even
    parsed; then the manifest must describe exactly this ONNX file and version.
    """
    directory, version = Path(directory), str(version)
    onnx_name = model_asset_name(version)
    sums_path = directory / SUMS_FILE
    if not sums_path.is_file():
        raise VerificationError(f"{SUMS_FILE} is missing from {directory}")
    sums = parse_sha256sums(sums_path.read_bytes(), str(sums_path))
    known: dict[str, str] = {}
    _check_against_sums(directory, sums, [onnx_name, MANIFEST_FILE, CARD_FILE, METRICS_FILE], known)
    onnx_path = directory / onnx_name
    manifest = check_manifest(load_manifest(directory / MANIFEST_FILE), onnx_path, known[onnx_name],
                              expect_file=onnx_name)
    if manifest.get("version") != version:
        raise VerificationError(f"{MANIFEST_FILE}: version is {manifest.get('version')!r} but the "
                                f"release is {version}")
    return VerifiedModel(onnx_path, known[onnx_name], manifest, source=str(directory))


def verify_local_model(path: str | os.PathLike[str], *, warn: Callable[[str], None] = warn,
                       allow_unverified: bool = False) -> VerifiedModel:
    """Verify a local ONNX file against the SHA256SUMS and/or manifest.json beside it.

    With neither present there is nothing to check against: that is refused unless
    ``allow_unverified`` (a local development build), which loads it with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise LoaderError(f"model file {path} not found")
    directory, actual = path.parent, sha256_file(path)
    sums_path, manifest_path = directory / SUMS_FILE, directory / MANIFEST_FILE
    has_sums, has_manifest = sums_path.is_file(), manifest_path.is_file()
    if has_sums:
        sums = parse_sha256sums(sums_path.read_bytes(), str(sums_path))
        if path.name not in sums:
            raise VerificationError(f"{sums_path} does not list {path.name}; refusing a model it does "
                                    f"not vouch for")
        # Listed files that are not here are not needed to score; present ones must match.
        present = [n for n in sums if n == path.name or (directory / n).is_file()]
        _check_against_sums(directory, sums, present, {path.name: actual})
    manifest = None
    if has_manifest:
        manifest = check_manifest(load_manifest(manifest_path), path, actual, where=str(manifest_path))
    if not (has_sums or has_manifest):
        if not allow_unverified:
            raise VerificationError(f"{path}: no {SUMS_FILE} or {MANIFEST_FILE} beside it, so nothing vouches for "
                                    f"it; refusing it (--allow-unverified loads a local development build)")
        warn(f"warning: no {SUMS_FILE} or {MANIFEST_FILE} beside {path}; loading it UNVERIFIED (sha256 {actual})")
    return VerifiedModel(path, actual, manifest, source=str(path), verified=has_sums or has_manifest)
