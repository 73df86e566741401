"""The CML lock check (pipeline/review/cml_lock.py) that runs before `npm ci` in the comment job.

The locks here are made up in the test (hashes of made-up bytes): they exercise the checks, they
are not a lock for CML. The committed package.json is checked for real, and so is the committed
lock once a maintainer adds it (docs/review.md: CML's install).
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.review import cml_lock

REPO = Path(__file__).resolve().parents[1]
CML_DIR = REPO / ".github" / "cml"


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def entry(name: str, version: str) -> dict:
    base = name.rsplit("/", 1)[-1]
    return {"version": version, "resolved": f"{cml_lock.REGISTRY}{name}/-/{base}-{version}.tgz",
            "integrity": sri(f"{name}@{version}".encode())}


PACKAGE_JSON = {"name": "x", "private": True, "dependencies": {"@dvcorg/cml": "0.20.4"}}
LOCK = {"name": "x", "lockfileVersion": 3, "requires": True, "packages": {
    "": {"name": "x", "dependencies": {"@dvcorg/cml": "0.20.4"}},
    "node_modules/@dvcorg/cml": entry("@dvcorg/cml", "0.20.4"),
    "node_modules/yargs": entry("yargs", "17.7.2"),
}}


def test_a_lock_with_every_entry_hashed_passes():
    assert cml_lock.check_lock(PACKAGE_JSON, LOCK) == 2


@pytest.mark.parametrize("breakage, message", [
    (lambda lock: lock["packages"]["node_modules/yargs"].pop("integrity"), "yargs: no sha512 integrity"),
    (lambda lock: lock["packages"]["node_modules/yargs"].update(integrity="sha1-abc"), "no sha512 integrity"),
    (lambda lock: lock["packages"]["node_modules/yargs"].update(resolved="git+https://evil/x.git"), "not a tarball"),
    (lambda lock: lock["packages"]["node_modules/yargs"].update(link=True), "a link to a local path"),
    (lambda lock: lock["packages"][""]["dependencies"].update({"@dvcorg/cml": "^0.20.0"}), "re-run npm install"),
    (lambda lock: lock["packages"]["node_modules/@dvcorg/cml"].update(version="0.20.5"), "installs @dvcorg/cml"),
    (lambda lock: lock.update(lockfileVersion=1), "lockfileVersion"),
])
def test_an_entry_not_pinned_by_hash_is_refused(breakage, message):
    lock = copy.deepcopy(LOCK)
    breakage(lock)
    with pytest.raises(cml_lock.LockError, match=message):
        cml_lock.check_lock(PACKAGE_JSON, lock)


def test_package_json_must_pin_an_exact_version():
    with pytest.raises(cml_lock.LockError, match="exact version"):
        cml_lock.check_lock({"dependencies": {"@dvcorg/cml": "^0.20.4"}}, LOCK)


def test_the_committed_package_json_pins_cml_exactly_and_a_committed_lock_passes():
    package_json = json.loads((CML_DIR / "package.json").read_text())
    assert cml_lock.pinned_version(package_json) == "0.20.4"
    lock = CML_DIR / "package-lock.json"
    if lock.exists():  # committed by a maintainer with registry access (docs/review.md)
        assert cml_lock.check_lock(package_json, json.loads(lock.read_text())) > 1


def test_the_command_runs_with_the_standard_library_alone(tmp_path):
    (tmp_path / "package.json").write_text(json.dumps(PACKAGE_JSON))
    (tmp_path / "package-lock.json").write_text(json.dumps(LOCK))
    run = [sys.executable, "-S", "-m", "pipeline.review.cml_lock", str(tmp_path)]
    ok = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0 and "pins 2 packages" in ok.stderr, ok.stderr
    (tmp_path / "package-lock.json").unlink()
    missing = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert missing.returncode == 1 and "package-lock.json" in missing.stderr
