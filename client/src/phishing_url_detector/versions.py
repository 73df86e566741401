"""Release tags and version order, written once: the client fetches by tag, the release builder
derives the next tag, the monitor orders the versions a log carries.

A release tag is ``model-vMAJOR.MINOR.PATCH``, the strict SemVer core (no leading zeros, no
pre-release or build suffix): anything else is some other project's tag and is ignored rather
than mis-ordered.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TAG_PREFIX = "model-v"
TAG_GLOB = f"{TAG_PREFIX}*"  # `git tag --list` pattern of every candidate release tag
_CORE = r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"  # MAJOR.MINOR.PATCH, ASCII digits
TAG_RE = re.compile(re.escape(TAG_PREFIX) + _CORE)
_SUFFIXED = re.compile(_CORE + r"([-+].*)?", re.DOTALL)  # a release version, maybe with a SemVer suffix


@dataclass(frozen=True, order=True)
class Version:
    """A release version; ordering is numeric per field, so 1.10.0 > 1.9.0."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}{self}"


def parse_tag(tag: str) -> Version | None:
    """``model-v1.2.3`` -> Version(1, 2, 3); any other tag -> None (not ours)."""
    match = TAG_RE.fullmatch(tag.strip()) if isinstance(tag, str) else None
    return Version(*(int(part) for part in match.groups())) if match else None


def tag_of(version: str) -> str:
    """The release tag of a version string as a log or manifest spells it (``1.2.0`` -> ``model-v1.2.0``)."""
    return f"{TAG_PREFIX}{version}"


def version_key(version: str) -> tuple[int, int, int, int, str]:
    """Sort key for any version string a log or manifest carries: release versions in numeric order
    (1.10.0 after 1.9.0, the order of :class:`Version`), one with a ``-``/``+`` suffix right after its
    release (1.9.0-rc1 between 1.9.0 and 1.10.0), then anything else, as text."""
    match = _SUFFIXED.fullmatch(version)
    if match is None:
        return (1, 0, 0, 0, version)
    major, minor, patch, suffix = match.groups()
    return (0, int(major), int(minor), int(patch), suffix or "")
