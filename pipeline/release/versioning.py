"""Decide the next model release version from what changed since the last one.

Release tags are ``model-vMAJOR.MINOR.PATCH``. The bump is derived from
digests rather than chosen by a person, so the version number itself tells a
product team whether an upgrade is safe:

* MAJOR  - the I/O contract changed (a loader built for the old MAJOR refuses it);
* MINOR  - the ONNX bytes changed (new model, same contract);
* PATCH  - only the model card / manifest text changed (same model bytes);
* none   - nothing changed, so no release is cut.

Everything here is pure (no git, no network): the release builder gathers the
tags and digests and this module only decides.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from phishing_url_detector.versions import (  # the tag format is the client's
    Version,
    parse_tag,
)

BUMP_INITIAL = "initial"
BUMP_MAJOR = "major"
BUMP_MINOR = "minor"
BUMP_PATCH = "patch"


def latest_version(tags: Iterable[str]) -> Version | None:
    """Highest model release among ``tags`` by semantic version, not string order."""
    versions = [v for v in map(parse_tag, tags) if v is not None]
    return max(versions) if versions else None


@dataclass(frozen=True)
class ReleaseFacts:
    """The three digests that decide the bump, for one release or one build.

    ``text_digest`` should come from :func:`release_text_digest`, which leaves
    out the fields that name the release itself (they differ every release).
    """

    contract_digest: str
    model_sha256: str
    text_digest: str


@dataclass(frozen=True)
class ReleaseDecision:
    """What to release: ``version`` ("1.3.0"), ``tag`` ("model-v1.3.0"), ``bump``
    (one of initial/major/minor/patch) and a one-line human ``reason``."""

    version: str
    tag: str
    bump: str
    reason: str
    previous_tag: str | None = None


def release_text_digest(*, card: str, manifest: dict, metrics: str = "") -> str:
    """Digest of the release's text assets, for the PATCH decision.

    ``version`` and ``model.file`` are dropped from the manifest because they
    name the release being built; keeping them would make every build look like
    a text change (and the local ``dist/manifest.json`` names the file without
    a version). JSON is canonicalised so key order or whitespace is not a change.
    """
    stripped = {k: v for k, v in manifest.items() if k != "version"}
    if isinstance(stripped.get("model"), dict):
        stripped["model"] = {k: v for k, v in stripped["model"].items() if k != "file"}
    h = hashlib.sha256()
    for part in (card, json.dumps(stripped, sort_keys=True, separators=(",", ":")), metrics):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))  # length-prefixed: no ambiguity between parts
        h.update(data)
    return h.hexdigest()


def next_release(tags: Iterable[str], previous: ReleaseFacts | None, current: ReleaseFacts,
                 *, contract_major: int) -> ReleaseDecision | None:
    """Decide the next release, or None when the build changes nothing.

    ``tags``: every tag name in the repository (non-model tags are ignored).
    ``previous``: facts of the release at the latest model tag (None if none).
    ``current``: facts of the new build. ``contract_major``: the MAJOR the
    build's contract declares (``phishing_url_detector.contract.CONTRACT_MAJOR``).

    The tag's MAJOR must equal the manifest's ``contract_major``: that is what
    lets a product pick a loader by tag alone. A contract change without a
    CONTRACT_MAJOR bump (or the reverse) is therefore a ValueError, not a
    silently inconsistent release.
    """
    tags = list(tags)
    latest = latest_version(tags)
    if latest is None:
        if previous is not None:
            raise ValueError("facts about a previous release were given, but no model-vX.Y.Z tag exists")
        first = Version(contract_major, 0, 0)
        return ReleaseDecision(str(first), first.tag, BUMP_INITIAL,
                               f"first release (contract major {contract_major})")
    if previous is None:
        raise ValueError(f"{latest.tag} exists but no facts about it were given; cannot compare")

    if previous.contract_digest != current.contract_digest:
        new = Version(latest.major + 1, 0, 0)
        bump = BUMP_MAJOR
        reason = (f"I/O contract changed since {latest.tag} "
                  f"(digest {previous.contract_digest[:12]} -> {current.contract_digest[:12]})")
    elif previous.model_sha256 != current.model_sha256:
        new = Version(latest.major, latest.minor + 1, 0)
        bump = BUMP_MINOR
        reason = (f"model bytes changed since {latest.tag} "
                  f"(sha256 {previous.model_sha256[:12]} -> {current.model_sha256[:12]})")
    elif previous.text_digest != current.text_digest:
        new = Version(latest.major, latest.minor, latest.patch + 1)
        bump = BUMP_PATCH
        reason = f"only the model card / manifest text changed since {latest.tag}; same model bytes"
    else:
        return None

    if new.major != contract_major:
        if bump == BUMP_MAJOR:
            hint = f"the contract changed but CONTRACT_MAJOR is still {contract_major}; bump it"
        else:
            hint = (f"CONTRACT_MAJOR is {contract_major} but the contract digest did not change "
                    f"since {latest.tag}")
        raise ValueError(f"release {new.tag} would not match contract major {contract_major}: {hint}")
    return ReleaseDecision(str(new), new.tag, bump, reason, previous_tag=latest.tag)
