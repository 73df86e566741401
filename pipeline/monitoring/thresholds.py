"""The threshold that turns a logged score into a verdict, per model version.

Rows that carry no verdict are flagged at ``score >= threshold`` of the
release that scored them. A threshold is only trusted from a release
directory that passes the product loader's own check
(:func:`phishing_url_detector.releases.verify_release_dir`: every asset
against ``SHA256SUMS``, the ONNX file against the manifest, the contract),
looked up in this order of precedence:

1. ``--release-dir DIR`` (repeatable);
2. params ``monitor.releases`` (a list of release directories);
3. the client's fetch cache (``phishing-url-detector fetch``), only for the
   versions still missing; a cached copy that fails verification is skipped
   with a warning, as the client itself would not load it.

``--threshold`` is a last resort for versions that no release covers. A
version with rows to flag and no threshold stops the run with one error
listing every such version, rather than rejecting its rows one by one.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping

from phishing_url_detector.errors import LoaderError
from phishing_url_detector.fetch import cached_manifests, default_cache_dir
from phishing_url_detector.releases import MANIFEST_FILE, load_manifest, parse_tag, verify_release_dir

log = logging.getLogger(__name__)

FROM_FLAG = "--release-dir"
FROM_PARAMS = "monitor.releases"
FROM_CACHE = "fetch cache"
FROM_DEFAULT = "--threshold"


class ReleaseError(ValueError):
    """A release directory that cannot be used, or thresholds that cannot be resolved."""


@dataclass(frozen=True)
class Threshold:
    """A version's operating threshold and where it came from."""

    version: str
    threshold: float
    source: str                  # FROM_FLAG, FROM_PARAMS, FROM_CACHE or FROM_DEFAULT
    release_dir: str | None = None
    data_through: str | None = None  # the newest first-seen month (YYYY-MM) the model trained on

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "version" and (k != "data_through" or v)}


def version_key(version: str) -> tuple:
    """Numeric order for release versions (1.10.0 after 1.9.0); anything else after, as text."""
    parsed = parse_tag(f"model-v{version}")
    return (0, parsed, "") if parsed else (1, None, version)


def verified_release(directory: Path | str, source: str) -> Threshold:
    """The version and threshold of a release directory, after verifying all of it."""
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
    except (LoaderError, OSError) as exc:
        raise ReleaseError(f"{source} {directory}: refused, the release does not verify: {exc}") from None
    return Threshold(version, float(model.threshold), source, str(directory), data_month(manifest))


def data_month(manifest: dict) -> str | None:
    """``training_data.newest_first_seen_month`` of a (verified) manifest when it is a YYYY-MM month."""
    month = (manifest.get("training_data") or {}).get("newest_first_seen_month")
    return month if isinstance(month, str) and re.fullmatch(r"\d{4}-\d{2}", month) else None


def data_months(named: Mapping[str, Threshold], applied: Mapping[str, Threshold]) -> dict[str, str]:
    """{version: newest month of its training data} for every release the monitor knows: the ones it
    flagged rows with and every named release directory, so the report can say how old each model's
    data were in each window even when every row logged its own verdict."""
    releases = {**named, **applied}
    return {v: releases[v].data_through for v in sorted(releases, key=version_key) if releases[v].data_through}


def named_releases(release_dirs: Iterable[Path | str] = (),
                   param_dirs: Iterable[Path | str] = ()) -> dict[str, Threshold]:
    """Every named release directory (``--release-dir`` first, then params ``monitor.releases``), each
    verified, needed or not: a broken one is a configuration error."""
    found: dict[str, Threshold] = {}
    for source, dirs in ((FROM_FLAG, release_dirs), (FROM_PARAMS, param_dirs)):
        for directory in dirs:
            _add(found, verified_release(directory, source))
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


def from_cache(versions: Iterable[str], cache_dir: Path | str | None = None) -> list[Threshold]:
    """Verified cached releases of ``versions`` (cache layout ``<sha256>/<version>/``)."""
    wanted, out = set(versions), []
    for manifest in cached_manifests(cache_dir):
        if manifest.parent.name not in wanted:
            continue
        try:
            out.append(verified_release(manifest.parent, FROM_CACHE))
        except ReleaseError as exc:
            log.warning("skipping a cached release: %s", exc)
    return out


def resolve(needed: Mapping[str, int], named: Mapping[str, Threshold] | None = None,
            default: float | None = None, cache_dir: Path | str | None = None) -> dict[str, Threshold]:
    """A threshold for every version in ``needed`` ({version: rows without a verdict}), from the
    :func:`named_releases`, then the fetch cache, then ``default``. Raises :class:`ReleaseError`
    listing the versions left without a threshold.
    """
    found: dict[str, Threshold] = dict(named or {})
    for version in sorted(set(found) - set(needed), key=version_key):
        log.info("model %s (%s %s): no rows of it lack a verdict", version,
                 found[version].source, found[version].release_dir)
    for release in from_cache([v for v in needed if v not in found], cache_dir):
        _add(found, release)
    missing = {v: n for v, n in needed.items() if v not in found}
    if missing and default is not None:
        log.warning("no release for model version(s) %s: applying --threshold %s",
                    ", ".join(sorted(missing, key=version_key)), default)
        found.update({v: Threshold(v, float(default), FROM_DEFAULT) for v in missing})
        missing = {}
    if missing:
        raise ReleaseError(unknown_versions_message(missing, cache_dir))
    applied = {v: found[v] for v in sorted(needed, key=version_key)}
    for t in applied.values():
        log.info("model %s: rows without a verdict flagged at %g (%s %s)", t.version, t.threshold,
                 t.source, t.release_dir or "")
    return applied


def unknown_versions_message(missing: Mapping[str, int], cache_dir: Path | str | None = None) -> str:
    """One error for every version whose rows have no verdict and no known threshold."""
    versions = sorted(missing, key=version_key)
    width, counts = max(len(v) for v in versions), {v: f"{missing[v]:,}" for v in versions}
    count_width = max(len(c) for c in counts.values())
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    return "\n".join([
        f"no threshold for {len(versions)} model version(s) whose rows carry no verdict:",
        *[f"  {v:<{width}}  {counts[v]:>{count_width}} rows" for v in versions],
        "Each version's threshold is read from its verified release; supply the releases with",
        f"  {FROM_FLAG} DIR        (repeatable) a release directory: OUT/release of `python -m "
        "pipeline release --out OUT`, or `gh release download model-vX.Y.Z --dir DIR`",
        f"  {FROM_PARAMS}: [DIR]  the same, in params.yaml",
        f"  or the client's fetch cache ({cache}; --repo OWNER/NAME or $PHISHING_MODEL_REPO):",
        *[f"      phishing-url-detector fetch --tag model-v{v}" for v in versions],
    ])
