"""Download a model release from GitHub, verify it, and keep it in a cache.

Verified releases are cached under ``<cache>/<sha256 of the onnx>/<version>/``
and re-verified on every use, so a corrupted cache is noticed and healed rather
than trusted. Everything is verified in a staging directory before it enters
the cache. Each entry records the repository it was fetched from (the file
``repository``, written at fetch time); an entry of another repository, or one
that records none, is never used for this one.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypedDict, Unpack

from phishing_url_detector import contract as C
from phishing_url_detector import github as gh
from phishing_url_detector import provenance
from phishing_url_detector.errors import FetchError, LoaderError, VerificationError
from phishing_url_detector.releases import (
    REPO_ENV,
    REPOSITORY,
    SUMS_FILE,
    VerifiedModel,
    configured_repo,
    model_asset_name,
    parse_sha256sums,
    provenance_asset_names,
    release_asset_names,
    verify_local_model,
    verify_release_dir,
    warn,
)
from phishing_url_detector.text import shell_command, terminal
from phishing_url_detector.versions import TAG_PREFIX, parse_tag

CACHE_ENV = "PHISHING_MODEL_CACHE"
REPOSITORY_RECORD = "repository"  # in each cache entry: OWNER/NAME it was fetched from
_RECORD_MAX_BYTES = 256


class NetworkOptions(TypedDict, total=False):
    """How :func:`fetch` talks to GitHub (its keyword arguments of that kind)."""

    api_url: str | None
    token: str | None
    timeout: float
    retries: int
    backoff: float
    warn: Callable[[str], None]


class FetchOptions(NetworkOptions, total=False):
    """Every keyword argument of :func:`fetch`: how it talks to GitHub and what provenance it requires."""

    trusted_root: str | os.PathLike[str] | None
    allow_unverified: bool


def default_cache_dir() -> Path:
    """$PHISHING_MODEL_CACHE, else $XDG_CACHE_HOME/phishing-url-detector, else ~/.cache/..."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / C.MODEL_NAME


def _refuse_unsafe(path: Path) -> None:
    """Refuse a cache path that is a symbolic link or a group/world-writable directory.

    A link is refused, not followed or replaced: whatever it points at can change after
    verification, and the loader does not delete what it did not create; the error says
    how to clear it. A directory others can write lets them swap a verified model.
    """
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise VerificationError(f"cache entry {path} is a symbolic link (to {os.readlink(path)}); the loader "
                                "never follows links in its cache: remove it "
                                f"({shell_command('rm', path)}) and fetch again")
    if stat.S_ISDIR(info.st_mode) and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise VerificationError(f"cache directory {path} is group- or world-writable (mode "
                                f"{stat.S_IMODE(info.st_mode):04o}); others could swap a verified model: "
                                f"run {shell_command('chmod', 'go-w', path)}")


def _prepare_cache(cache: Path) -> None:
    """Create the cache private to this user (0700), or check that an existing one is not
    writable by others. The cache path itself may be a link (e.g. to another disk): its
    target is what is checked."""
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    _refuse_unsafe(cache.resolve())


def _make_private(directory: Path) -> None:
    """0700 for a digest directory just made (mkdir obeys the umask, which may allow group writes).
    One that existed before was already checked by :func:`_check_entry`, so only ours is changed."""
    if stat.S_IMODE(os.lstat(directory).st_mode) & 0o077:
        os.chmod(directory, 0o700)


def _check_entry(target: Path) -> None:
    """``<cache>/<sha256>/<version>/`` and every file in it: no links, no shared-writable directories."""
    for path in (target.parent, target):
        if os.path.lexists(path):
            _refuse_unsafe(path)
    if target.is_dir():
        for child in target.iterdir():
            _refuse_unsafe(child)


def record_repository(entry: Path, repo: str) -> None:
    """Write which repository ``entry`` (a staged or cached release) was fetched from."""
    (entry / REPOSITORY_RECORD).write_text(f"{repo}\n", encoding="utf-8")


def recorded_repository(entry: Path) -> str | None:
    """The repository ``entry`` records (None when it records none), as written: compared, never trusted."""
    path = entry / REPOSITORY_RECORD
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        return fh.read(_RECORD_MAX_BYTES).decode("utf-8", "replace").removesuffix("\n")


def check_recorded_repository(entry: Path, repo: str) -> None:
    """Refuse a cache entry that was not fetched from ``repo``: another repository's release (its
    thresholds, its model) is never used for this one, nor an entry that records no repository."""
    recorded = recorded_repository(entry)
    if recorded is None:
        again = shell_command("phishing-url-detector", "fetch", "--repo", repo, "--tag", TAG_PREFIX + entry.name)
        raise VerificationError(f"cache entry {entry} records no repository (no {REPOSITORY_RECORD} file; cached "
                                f"by an older client), so it cannot be tied to {repo}: fetch it again ({again})")
    if recorded != repo:
        raise VerificationError(f"cache entry {entry} was fetched from {terminal(recorded)!r}, not {repo}; "
                                "another repository's release is never used")


def _release(client: gh.GitHubReleases, repo: str, tag: str) -> tuple[str, str, Assets]:
    """(tag name, version, {asset name: asset}) of the release, refusing what is not a complete model release."""
    try:
        release = client.get_release(repo, tag)
    except gh.GitHubError as exc:
        raise FetchError(str(exc)) from None
    tag_name = release.get("tag_name")
    if not isinstance(tag_name, str) or (version := parse_tag(tag_name)) is None:
        raise FetchError(f"release {tag} of {repo} has tag {tag_name!r}, which is not a "
                         f"model-vMAJOR.MINOR.PATCH release; pass an explicit --tag")
    if tag != "latest" and tag_name != tag:
        raise VerificationError(f"asked for release {tag} of {repo} but GitHub returned {tag_name}")
    assets: Assets = {}
    for asset in release["assets"]:
        if isinstance(asset, dict) and isinstance(asset.get("name"), str):
            assets.setdefault(asset["name"], asset)
    missing = [n for n in release_asset_names(str(version)) if n not in assets]
    if missing:
        raise VerificationError(f"release {tag_name} of {repo} is missing asset(s): "
                                f"{', '.join(missing)}; refusing an incomplete release")
    return tag_name, str(version), assets


Check = Callable[[VerifiedModel], VerifiedModel]
Assets = dict[str, gh.Asset]  # a release's assets by name


def _require_bundles(assets: Assets, tag_name: str, repo: str, version: str, allow_unverified: bool) -> None:
    """Refuse an unattested release before downloading it (the bundles are verified after download)."""
    missing = [n for n in provenance_asset_names(version) if n not in assets]
    if missing and not allow_unverified:
        raise VerificationError(f"release {tag_name} of {repo}: no provenance bundle {', '.join(missing)} among "
                                "its assets; refusing a release nobody attested (--allow-unverified for a "
                                "development build)")


def _verified_dir(directory: Path, version: str, check: Check) -> VerifiedModel:
    """Integrity (every file against SHA256SUMS and the manifest), then provenance (``check``)."""
    return check(verify_release_dir(directory, version))


def _cached(target: Path, sums_bytes: bytes, version: str, label: str, repo: str,
            warn: Callable[[str], None], check: Check) -> VerifiedModel | None:
    """The cached copy, re-verified; None (and the copy removed) when it is absent or fails, or was
    fetched from another repository (or records none)."""
    _check_entry(target)  # a link or a shared-writable directory is refused, not healed: see _refuse_unsafe
    if not target.is_dir():
        return None
    try:
        check_recorded_repository(target, repo)
        if (target / SUMS_FILE).read_bytes() != sums_bytes:
            raise VerificationError(f"cached {SUMS_FILE} differs from the release's")
        return dataclasses.replace(_verified_dir(target, version, check), source=label, from_cache=True)
    except (VerificationError, OSError) as exc:
        warn(f"warning: cached copy in {target} failed verification ({exc}); downloading again")
        shutil.rmtree(target, ignore_errors=True)
        return None


def _promote(staging: Path, target: Path, version: str, label: str, repo: str, check: Check) -> VerifiedModel:
    """Verify the staged download, record its repository and move it into the cache."""
    verified = _verified_dir(staging, version, check)
    record_repository(staging, repo)
    target.parent.mkdir(parents=True, exist_ok=True)
    _make_private(target.parent)
    try:
        staging.rename(target)
    except OSError:  # another process cached it first (or a link sits there): check it as _cached does
        _check_entry(target)
        check_recorded_repository(target, repo)
        return dataclasses.replace(_verified_dir(target, version, check), source=label)
    return dataclasses.replace(verified, onnx_path=target / verified.onnx_path.name, source=label)


def _check_reference(repo: str, tag: str) -> None:
    if not REPOSITORY.fullmatch(repo or ""):
        raise LoaderError(f"repository must look like OWNER/NAME, got {repo!r}")
    if tag != "latest" and parse_tag(tag) is None:
        raise LoaderError(f"tag must be 'latest' or look like model-vMAJOR.MINOR.PATCH, got {tag!r}")


def _model_digest(client: gh.GitHubReleases, assets: Assets, staging: Path, version: str,
                  label: str) -> tuple[bytes, str]:
    """SHA256SUMS first: the model's digest names its cache entry, so a cached copy costs one small download."""
    client.download_asset(assets[SUMS_FILE], staging / SUMS_FILE)
    sums_bytes = (staging / SUMS_FILE).read_bytes()
    digest = parse_sha256sums(sums_bytes, f"{SUMS_FILE} of {label}").get(model_asset_name(version))
    if digest is None:  # parse_sha256sums accepts only 64 hex digits, lower-cased
        raise VerificationError(f"{SUMS_FILE} of {label} does not list {model_asset_name(version)}")
    return sums_bytes, digest


def fetch(repo: str, tag: str = "latest", cache_dir: str | os.PathLike[str] | None = None, *,
          api_url: str | None = None, token: str | None = None, timeout: float = 30.0,
          retries: int = 3, backoff: float = 1.0, warn: Callable[[str], None] = warn,
          trusted_root: str | os.PathLike[str] | None = None, allow_unverified: bool = False) -> VerifiedModel:
    """Download (or reuse from cache) and verify one model release.

    ``tag`` is ``model-vX.Y.Z`` or ``latest``. ``api_url`` defaults to
    $GITHUB_API_URL or https://api.github.com; ``token`` to $GITHUB_TOKEN.
    Provenance is checked against ``repo``'s release workflow on main (see
    :mod:`provenance`; ``trusted_root`` is a sigstore trusted_root.json); ``allow_unverified``
    skips that check with a warning.
    """
    _check_reference(repo, tag)
    policy = provenance.policy_for(repo, trusted_root)
    check = functools.partial(provenance.check_model, policy=policy, allow_unverified=allow_unverified, warn=warn)
    client = gh.GitHubReleases(api_url, token, timeout=timeout, retries=retries, backoff=backoff)
    tag_name, version, assets = _release(client, repo, tag)
    _require_bundles(assets, tag_name, repo, version, allow_unverified)
    label = f"{repo}@{tag_name}"
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    _prepare_cache(cache)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        try:
            sums_bytes, digest = _model_digest(client, assets, staging, version, label)
            target = cache / digest / version
            cached = _cached(target, sums_bytes, version, label, repo, warn, check)
            if cached is not None:
                return cached
            bundles = [n for n in provenance_asset_names(version) if n in assets]
            for name in release_asset_names(version) + bundles:
                if name != SUMS_FILE:
                    client.download_asset(assets[name], staging / name)
        except gh.GitHubError as exc:
            raise FetchError(str(exc)) from None
        return _promote(staging, target, version, label, repo, check)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_release_ref(model: str) -> bool:
    """True when ``--model`` names a release (``latest`` / ``model-vX.Y.Z``) and no such
    local file exists; an existing file always wins, so paths are never surprising."""
    return (model == "latest" or parse_tag(model) is not None) and not os.path.exists(model)


def verify_local(path: str | os.PathLike[str], *, repo: str | None = None,
                 trusted_root: str | os.PathLike[str] | None = None, allow_unverified: bool = False,
                 warn: Callable[[str], None] = warn) -> VerifiedModel:
    """A local ONNX file: integrity against its sidecars, then provenance against ``repo``
    (default $PHISHING_MODEL_REPO); ``allow_unverified`` is for local development builds."""
    model = verify_local_model(path, warn=warn, allow_unverified=allow_unverified)
    policy = provenance.policy_for(configured_repo(repo), trusted_root)
    return provenance.check_model(model, policy, allow_unverified=allow_unverified, warn=warn)


def resolve_model(model: str, *, repo: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                  trusted_root: str | os.PathLike[str] | None = None, allow_unverified: bool = False,
                  **fetch_kwargs: Unpack[NetworkOptions]) -> VerifiedModel:
    """``--model`` semantics: a release reference is fetched (repo from the argument or
    $PHISHING_MODEL_REPO); anything else is a local path verified against its sidecars
    and its provenance bundle."""
    if is_release_ref(model):
        repo = configured_repo(repo)
        if not repo:
            raise LoaderError(f"--model {model} names a release: pass --repo OWNER/NAME or set {REPO_ENV}")
        return fetch(repo, model, cache_dir, trusted_root=trusted_root, allow_unverified=allow_unverified,
                     **fetch_kwargs)
    return verify_local(model, repo=repo, trusted_root=trusted_root, allow_unverified=allow_unverified)


def cached_manifests(repo: str, cache_dir: str | os.PathLike[str] | None = None, versions: Iterable[str] | None = None,
                     warn: Callable[[str], None] = warn) -> list[Path]:
    """The manifest.json of every release of ``repo`` in the fetch cache (``<cache>/<sha256>/<version>/``),
    only of ``versions`` when given.

    Entries are checked as :func:`fetch` checks them: one that is a link or that others can write, one
    fetched from another repository and one that records no repository are left out with a warning (a
    threshold read from a swapped or foreign manifest could hide alerts), and a cache root that others
    can write is refused. What is returned still has to be verified (integrity and provenance)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    if not cache.is_dir():
        return []
    _refuse_unsafe(cache.resolve())
    wanted = None if versions is None else set(versions)
    found = []
    for manifest in sorted(p for p in cache.glob("*/*/manifest.json") if not p.parent.parent.name.startswith(".")):
        if wanted is not None and manifest.parent.name not in wanted:
            continue
        try:
            _check_entry(manifest.parent)
            check_recorded_repository(manifest.parent, repo)
        except VerificationError as exc:
            warn(f"warning: skipping a cached release: {exc}")
            continue
        found.append(manifest)
    return found
