"""Repository-wide CI policy: who may publish, what every pip install is pinned by, who owns what.

Each check parses the real files (workflows, CODEOWNERS, `git ls-files`), and each has a
counter-example so the check itself is known to fail when the policy is broken.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from workflow_tools import load_workflow, steps

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
CODEOWNERS = REPO / ".github" / "CODEOWNERS"


# -- release: only main publishes, in the protected environment -------------------------------------

def test_publish_runs_only_for_main_in_the_release_environment():
    workflow = load_workflow(REPO / ".github" / "workflows" / "release.yml")
    publish = workflow["jobs"]["publish"]
    assert publish["environment"] == "release"
    condition = publish["if"].strip()
    assert condition.startswith("${{") and condition.endswith("}}") and "||" not in condition
    terms = {t.strip() for t in condition[3:-2].split("&&")}
    assert terms == {"github.ref == 'refs/heads/main'", "needs.build.outputs.release == 'true'"}
    # Only publish may write; the build job (which dispatch may run on any branch) stays read-only.
    assert workflow["jobs"]["build"]["permissions"] == {"contents": "read"}
    assert "environment" not in workflow["jobs"]["build"]


# -- every pip install is pinned by constraints.txt -------------------------------------------------

PIP_INSTALL = re.compile(r"\b(?:pip3?|python3? -m pip|uv pip)\s+install\b")


def unconstrained_pip_installs(run: str) -> list[str]:
    """The `pip install` commands of a run block (continuations joined) that lack -c constraints.txt."""
    commands = run.replace("\\\n", " ").splitlines()
    return [c.strip() for c in commands if PIP_INSTALL.search(c)
            and not re.search(r"(?:-c|--constraint)[ =]constraints\.txt\b", c)]


def test_the_pip_check_catches_an_unconstrained_install():
    assert unconstrained_pip_installs("python -m pip install \\\n  -e .") == ["python -m pip install    -e ."]
    assert unconstrained_pip_installs("pip3 install requests && echo ok") != []
    assert unconstrained_pip_installs("python -m pip install -c constraints.txt -e ./client -e .") == []
    assert unconstrained_pip_installs("python -m pip install --constraint=constraints.txt dvc") == []


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_pip_install_in_every_workflow_uses_constraints(workflow):
    for job, step in steps(load_workflow(workflow)):
        assert unconstrained_pip_installs(step.get("run", "")) == [], (workflow.name, job, step.get("name"))


def test_the_workflows_do_install_with_pip():
    installs = [c for w in WORKFLOWS for _, s in steps(load_workflow(w)) for c in s.get("run", "").splitlines()
                if PIP_INSTALL.search(c)]
    assert len(installs) >= 3, installs  # review, release, monitor


# -- CODEOWNERS ---------------------------------------------------------------------------------------

def owner_rules(text: str) -> list[tuple[re.Pattern, list[str]]]:
    """(pattern, owners) per CODEOWNERS line, in file order (the last match wins, as on GitHub)."""
    rules = []
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith("#"):
            pattern, *owners = line.split()
            rules.append((glob_regex(pattern), owners))
    return rules


def glob_regex(pattern: str) -> re.Pattern:
    """gitignore-style matching (what CODEOWNERS uses): / anchors, a directory covers what is under it."""
    anchored = "/" in pattern.rstrip("/")
    body = ""
    for part in re.split(r"(\*\*/|/\*\*|\*\*|\*|\?)", pattern.strip("/")):
        body += {"**/": "(?:.*/)?", "/**": "/.*", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(("" if anchored else "(?:.*/)?") + body + r"(?:/.*)?\Z")


def owners_of(path: str, rules) -> list[str]:
    matched = [owners for regex, owners in rules if regex.match(path)]
    return matched[-1] if matched else []


def test_the_codeowners_matcher_follows_gitignore_rules():
    rules = owner_rules("/pipeline/ @a/t\n*.dvc @b/t\ndocs @c/t\n/pipeline/generated/\n")
    assert owners_of("pipeline/review/render.py", rules) == ["@a/t"]
    assert owners_of("data/raw/x.csv.gz.dvc", rules) == ["@b/t"] and owners_of("x.dvc", rules) == ["@b/t"]
    assert owners_of("a/docs/x.md", rules) == ["@c/t"]       # unanchored: any depth
    assert owners_of("src/pipeline/x.py", rules) == []        # anchored at the root
    assert owners_of("pipeline/generated/x.py", rules) == []  # a later line without owners un-owns


REQUIRED = ("pipeline/", ".github/", "data/", "client/", "params.yaml", "dvc.yaml")
NEW_FILES = ["pipeline/new_stage.py", "pipeline/review/new.py", ".github/workflows/new.yml", ".github/CODEOWNERS",
             ".github/cml/package-lock.json", "data/raw/new_source.csv.gz.dvc", "data/prepared/x.parquet",
             "client/src/phishing_url_detector/new.py", "params.yaml", "dvc.yaml"]


def tracked_required_files() -> list[str]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [f for f in files.splitlines() if f.startswith(REQUIRED)]


def test_codeowners_covers_every_required_path():
    rules = owner_rules(CODEOWNERS.read_text())
    paths = tracked_required_files() + NEW_FILES
    assert len(paths) > 50 and any(p.startswith("data/") for p in tracked_required_files())
    unowned = [p for p in paths if not owners_of(p, rules)]
    assert unowned == [], unowned


def test_codeowners_names_a_team_on_every_line():
    rules = owner_rules(CODEOWNERS.read_text())
    assert rules
    for _, owners in rules:
        assert owners and all(re.fullmatch(r"@[\w-]+/[\w-]+|@[\w-]+", o) for o in owners), owners
