"""Check the CML lockfile before ``npm ci`` trusts it: every package pinned by an integrity hash.

``npm ci`` verifies each tarball against the lock's ``integrity`` field, but it installs an entry
that has none without complaint, and it installs a lock made from a git URL or a local path just
as readily. So the comment job runs this first: the lock (``.github/cml/package-lock.json``, made
by ``npm install --package-lock-only --ignore-scripts`` in ``.github/cml``) must be lockfile
version 2 or 3, pin ``@dvcorg/cml`` at exactly the version ``package.json`` names, and give every
installed package a sha512 ``integrity`` and a tarball on the npm registry.

Standard library only (the comment job runs it with the runner's python3):
``python3 -m pipeline.review.cml_lock .github/cml``.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "@dvcorg/cml"
REGISTRY = "https://registry.npmjs.org/"
_SHA512 = re.compile(r"sha512-[A-Za-z0-9+/]{86}==")


class LockError(ValueError):
    """The lock cannot pin the install: what is wrong, entry by entry."""


def pinned_version(package_json: dict) -> str:
    """The exact version package.json asks for (a range would let the lock drift from it)."""
    version = (package_json.get("dependencies") or {}).get(PACKAGE, "")
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise LockError(f"package.json must pin {PACKAGE} to an exact version, not {version!r}")
    return version


def entry_problems(name: str, entry: dict) -> list[str]:
    """Why one ``packages`` entry is not pinned by hash to a registry tarball (empty: it is)."""
    problems = []
    if entry.get("link"):
        problems.append(f"{name}: a link to a local path")
    if not _SHA512.fullmatch(str(entry.get("integrity", ""))):
        problems.append(f"{name}: no sha512 integrity")
    if not str(entry.get("resolved", "")).startswith(REGISTRY):
        problems.append(f"{name}: resolved {entry.get('resolved')!r} is not a tarball on {REGISTRY}")
    return problems


def check_lock(package_json: dict, lock: dict) -> int:
    """Raise :class:`LockError` unless ``lock`` pins every package; return how many it pins."""
    version = pinned_version(package_json)
    if lock.get("lockfileVersion") not in (2, 3):
        raise LockError(f"lockfileVersion {lock.get('lockfileVersion')!r}: npm 7 or later writes 2 or 3")
    packages = lock.get("packages") or {}
    root = (packages.get("") or {}).get("dependencies") or {}
    if root.get(PACKAGE) != version:
        raise LockError(f"the lock was made for {PACKAGE} {root.get(PACKAGE)!r}, package.json pins {version}: "
                        "re-run npm install --package-lock-only --ignore-scripts")
    top = packages.get(f"node_modules/{PACKAGE}") or {}
    if top.get("version") != version:
        raise LockError(f"the lock installs {PACKAGE} {top.get('version')!r}, not {version}")
    problems = [p for name, entry in packages.items() if name for p in entry_problems(name, entry)]
    if problems:
        raise LockError(f"{len(problems)} unpinned entries: " + "; ".join(problems[:10]))
    return len(packages) - 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    directory = Path((argv if argv is not None else sys.argv[1:] or ["."])[0])
    try:
        count = check_lock(json.loads((directory / "package.json").read_text()),
                           json.loads((directory / "package-lock.json").read_text()))
    except (OSError, json.JSONDecodeError, LockError) as exc:
        log.error("cml_lock: %s: %s", directory, exc)
        return 1
    log.info("cml_lock: %s pins %d packages by sha512", directory / "package-lock.json", count)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
