"""The threshold that turns a logged score into a verdict, per model version.

Rows that carry no verdict are flagged at ``score >= threshold`` of the
release that scored them. A threshold is only trusted from a release
directory that passes the product loader's own checks: integrity
(:func:`phishing_url_detector.releases.verify_release_dir`: every asset
against ``SHA256SUMS``, the ONNX file against the manifest, the contract) and
provenance (:func:`phishing_url_detector.provenance.check_model`: the Sigstore
bundles of the ONNX file and of ``SHA256SUMS``, which covers the manifest, were
made by the release workflow on main of the repository the monitor is
configured for: ``--repo``, $PHISHING_MODEL_REPO or params ``monitor.repo``).
A self-consistent copy with its thresholds raised and SHA256SUMS rewritten is
refused. ``--allow-unverified`` skips provenance (local development builds)
with a warning on every run, and the report says so. Releases are looked up
in this order of precedence:

1. ``--release-dir DIR`` (repeatable);
2. params ``monitor.releases`` (a list of release directories);
3. the client's fetch cache (``phishing-url-detector fetch``), only for the
   versions still missing and only entries fetched from the configured
   repository; a cached copy that fails verification, was fetched from another
   repository or records none is skipped with a warning, as the client itself
   would not load it.

``--threshold`` is a last resort for versions that no release covers. A
version with rows to flag and no threshold stops the run with one error
listing every such version, rather than rejecting its rows one by one.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from phishing_url_detector import provenance
from phishing_url_detector.errors import LoaderError
from phishing_url_detector.fetch import cached_manifests, default_cache_dir
from phishing_url_detector.releases import (
    MANIFEST_FILE,
    REPO_ENV,
    configured_repo,
    load_manifest,
    verify_release_dir,
)
from phishing_url_detector.text import shell_command, terminal
from phishing_url_detector.versions import tag_of, version_key

log = logging.getLogger(__name__)

FROM_FLAG = "--release-dir"
FROM_PARAMS = "monitor.releases"
FROM_CACHE = "fetch cache"
FROM_DEFAULT = "--threshold"


class ThresholdRecord(TypedDict):
    """monitor.json's record of the threshold one version's rows without a verdict were flagged at."""

    threshold: float
    source: str
    release_dir: str | None
    data_through: NotRequired[str]
    verified: bool | None


class ProvenanceRecord(TypedDict):
    """monitor.json's record of whose releases were trusted, and whether that was checked."""

    repository: str | None
    checked: bool


class ReleaseError(ValueError):
    """A release directory that cannot be used, or thresholds that cannot be resolved."""


@dataclass(frozen=True)
class Trust:
    """Whose releases give thresholds: ``policy`` (the configured repository's release workflow on
    main), or nobody's check at all with ``allow_unverified`` (local development builds)."""

    policy: provenance.Policy | None = None
    allow_unverified: bool = False

    @property
    def repo(self) -> str | None:
        return self.policy.repository if self.policy else None

    def as_dict(self) -> ProvenanceRecord:
        return {"repository": self.repo, "checked": not self.allow_unverified}


def trust_for(repo: str | None = None, params_repo: str | None = None, trusted_root: str | None = None,
              allow_unverified: bool = False) -> Trust:
    """The repository from ``--repo``, else $PHISHING_MODEL_REPO, else params ``monitor.repo``."""
    repo = configured_repo(repo, params_repo)
    try:
        return Trust(provenance.policy_for(repo, trusted_root), allow_unverified)
    except LoaderError as exc:
        raise ReleaseError(f"--repo / ${REPO_ENV} / params monitor.repo: {exc}") from None


@dataclass(frozen=True)
class Threshold:
    """A version's operating threshold and where it came from."""

    version: str
    threshold: float
    source: str                  # FROM_FLAG, FROM_PARAMS, FROM_CACHE or FROM_DEFAULT
    release_dir: str | None = None
    data_through: str | None = None  # the newest first-seen month (YYYY-MM) the model trained on
    verified: bool | None = None  # provenance checked (False: --allow-unverified; None: --threshold)

    def as_dict(self) -> ThresholdRecord:
        record: ThresholdRecord = {"threshold": self.threshold, "source": self.source,
                                   "release_dir": self.release_dir, "verified": self.verified}
        if self.data_through:
            record["data_through"] = self.data_through
        return record


def verified_release(directory: Path | str, source: str, trust: Trust = Trust()) -> Threshold:
    """The version and threshold of a release directory, after verifying all of it: integrity, then
    provenance under ``trust``."""
    directory = Path(directory)
    if not (directory / MANIFEST_FILE).is_file():
        raise ReleaseError(f"{source} {directory}: not a release directory (no {MANIFEST_FILE}); "
                           "expected the files of one model release")
    try:
        manifest = load_manifest(directory / MANIFEST_FILE)
        version = manifest.get("version")
        if not isinstance(version, str) or not version:
            raise ReleaseError(f"{source} {directory}: {MANIFEST_FILE} names no version, so its "
                               "threshold cannot be tied to the rows it applies to")
        model = verify_release_dir(directory, version)
        if trust.policy is None and not trust.allow_unverified:
            raise ReleaseError(f"{source} {directory}: cannot check whose release it is: no repository is "
                               f"configured (--repo OWNER/NAME, ${REPO_ENV} or params monitor.repo; "
                               "--allow-unverified for a local development build)")
        model = provenance.check_model(model, trust.policy, allow_unverified=trust.allow_unverified,
                                       warn=log.warning)
    except (LoaderError, OSError) as exc:
        raise ReleaseError(f"{source} {directory}: refused, the release does not verify: {exc}") from None
    if model.threshold is None:
        raise ReleaseError(f"{source} {directory}: {MANIFEST_FILE} names no threshold")
    return Threshold(version, float(model.threshold), source, str(directory), data_month(manifest), model.verified)


def data_month(manifest: dict) -> str | None:
    """``training_data.newest_first_seen_month`` of a (verified) manifest when it is a YYYY-MM month."""
    month = (manifest.get("training_data") or {}).get("newest_first_seen_month")
    return month if isinstance(month, str) and re.fullmatch(r"\d{4}-\d{2}", month) else None


def data_months(named: Mapping[str, Threshold], applied: Mapping[str, Threshold]) -> dict[str, str]:
    """{version: newest month of its training data} for every release the monitor knows: the ones it
    flagged rows with and every named release directory, so the report can say how old each model's
    data were in each window even when every row logged its own verdict."""
    releases = {**named, **applied}
    return {v: month for v in sorted(releases, key=version_key) if (month := releases[v].data_through)}


def named_releases(release_dirs: Iterable[Path | str] = (), param_dirs: Iterable[Path | str] = (),
                   trust: Trust = Trust()) -> dict[str, Threshold]:
    """Every named release directory (``--release-dir`` first, then params ``monitor.releases``), each
    verified, needed or not: a broken one (or one nobody can vouch for) is a configuration error."""
    found: dict[str, Threshold] = {}
    for source, dirs in ((FROM_FLAG, release_dirs), (FROM_PARAMS, param_dirs)):
        for directory in dirs:
            _add(found, verified_release(directory, source, trust))
    return found


def _add(found: dict[str, Threshold], new: Threshold) -> None:
    """Keep the first source's threshold; two of one source that disagree are an error."""
    old = found.get(new.version)
    if old is None:
        found[new.version] = new
    elif old.source != new.source:
        log.info("model %s: threshold %s from %s %s wins over %s from %s %s", new.version,
                 old.threshold, old.source, old.release_dir, new.threshold, new.source, new.release_dir)
    elif old.threshold != new.threshold:
        raise ReleaseError(f"model {new.version}: {new.source} gives two thresholds, {old.threshold} "
                           f"({old.release_dir}) and {new.threshold} ({new.release_dir}); pass the "
                           f"intended one with {FROM_FLAG}")


def from_cache(versions: Iterable[str], cache_dir: Path | str | None = None,
               trust: Trust = Trust()) -> list[Threshold]:
    """Verified cached releases of ``versions`` fetched from the configured repository (cache layout
    ``<sha256>/<version>/``); without a configured repository the cache cannot be tied to one and is
    not read."""
    wanted = set(versions)
    out: list[Threshold] = []
    if not wanted:
        return out
    if trust.repo is None:
        log.warning("the fetch cache is not read: no repository is configured (--repo OWNER/NAME, $%s or "
                    "params monitor.repo), so its entries cannot be tied to one", REPO_ENV)
        return out
    for manifest in cached_manifests(trust.repo, cache_dir, wanted, warn=log.warning):
        try:
            out.append(verified_release(manifest.parent, FROM_CACHE, trust))
        except ReleaseError as exc:
            log.warning("skipping a cached release: %s", exc)
    return out


def resolve(needed: Mapping[str, int], named: Mapping[str, Threshold] | None = None,
            default: float | None = None, cache_dir: Path | str | None = None,
            trust: Trust = Trust()) -> dict[str, Threshold]:
    """A threshold for every version in ``needed`` ({version: rows without a verdict}), from the
    :func:`named_releases`, then the fetch cache, then ``default``. Raises :class:`ReleaseError`
    listing the versions left without a threshold.
    """
    found: dict[str, Threshold] = dict(named or {})
    for version in sorted(set(found) - set(needed), key=version_key):
        log.info("model %s (%s %s): no rows of it lack a verdict", version,
                 found[version].source, found[version].release_dir)
    for release in from_cache([v for v in needed if v not in found], cache_dir, trust):
        _add(found, release)
    missing = {v: n for v, n in needed.items() if v not in found}
    if missing and default is not None:
        log.warning("no release for model version(s) %s: applying --threshold %s",
                    ", ".join(sorted(missing, key=version_key)), default)
        found.update({v: Threshold(v, float(default), FROM_DEFAULT) for v in missing})
        missing = {}
    if missing:
        raise ReleaseError(unknown_versions_message(missing, cache_dir, trust.repo))
    applied = {v: found[v] for v in sorted(needed, key=version_key)}
    for t in applied.values():
        log.info("model %s: rows without a verdict flagged at %g (%s %s)", t.version, t.threshold,
                 t.source, t.release_dir or "")
    return applied


class Resolver:
    """The ``resolve`` a log scan calls with {version: rows without a verdict}: :func:`resolve` over the
    named releases, remembering every threshold it applied (for monitor.json and the data ages)."""

    def __init__(self, named: Mapping[str, Threshold], default: float | None = None,
                 cache_dir: Path | str | None = None, trust: Trust = Trust()):
        self.named, self.default, self.cache_dir, self.trust = dict(named), default, cache_dir, trust
        self.applied: dict[str, Threshold] = {}

    def __call__(self, needed: Mapping[str, int]) -> dict[str, float]:
        self.applied.update(resolve(needed, self.named, self.default, self.cache_dir, self.trust))
        return {v: t.threshold for v, t in self.applied.items()}

    def records(self) -> dict[str, ThresholdRecord]:
        """The thresholds applied, as monitor.json records them."""
        return {v: t.as_dict() for v, t in self.applied.items()}

    def data_months(self) -> dict[str, str]:
        """:func:`data_months` of the named releases and the ones applied."""
        return data_months(self.named, self.applied)


def unknown_versions_message(missing: Mapping[str, int], cache_dir: Path | str | None = None,
                             repo: str | None = None) -> str:
    """One error for every version whose rows have no verdict and no known threshold; the fetch
    commands it suggests are quoted for a shell (a version is whatever the log says)."""
    versions = sorted(missing, key=version_key)
    width, counts = max(len(terminal(v)) for v in versions), {v: f"{missing[v]:,}" for v in versions}
    count_width = max(len(c) for c in counts.values())
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return "\n".join([
        f"no threshold for {len(versions)} model version(s) whose rows carry no verdict:",
        *[f"  {terminal(v):<{width}}  {counts[v]:>{count_width}} rows" for v in versions],
        "Each version's threshold is read from its verified release; supply the releases with",
        (f"  {FROM_FLAG} DIR        (repeatable) a release directory: OUT/release of `python -m "
         "pipeline release --out OUT`, or `gh release download model-vX.Y.Z --dir DIR`"),
        f"  {FROM_PARAMS}: [DIR]  the same, in params.yaml",
        f"  or the client's fetch cache ({cache}; --repo OWNER/NAME or ${REPO_ENV}):",
        *[f"      {fetch_hint(v, repo)}" for v in versions],
    ])


def fetch_hint(version: str, repo: str | None = None) -> str:
    """The client command that caches ``version``'s release, quoted for a shell."""
    return shell_command("phishing-url-detector", "fetch", *(("--repo", repo) if repo else ()), "--tag",
                         tag_of(version))
