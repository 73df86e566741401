"""The scheduled monitoring workflow: pinning, permissions, lint, and a real run under ``act``."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import monitor_synthetic as ms
import pytest
from workflow_tools import act_command, act_env, load_workflow, steps

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "monitor.yml"


def test_triggers_schedule_and_manual_dispatch():
    workflow = load_workflow(WORKFLOW)
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on["schedule"][0]["cron"]
    inputs = set(on["workflow_dispatch"]["inputs"])
    assert {"log", "window", "reference", "reference-version", "out"} <= inputs


def test_least_privilege_permissions():
    workflow = load_workflow(WORKFLOW)
    assert workflow["permissions"] == {}
    perms = {name: job.get("permissions") for name, job in workflow["jobs"].items()}
    assert perms["monitor"] == {"contents": "read"}
    assert perms["alert"] == {"contents": "read", "issues": "write"}
    writers = [name for name, p in perms.items() if p and "write" in p.values()]
    assert writers == ["alert"]


def test_network_steps_are_skipped_under_act_and_the_logic_is_in_run_steps():
    for job, step in steps(load_workflow(WORKFLOW)):
        if "uses" in step or "gh " in step.get("run", "") or "fetch-logs" in step.get("run", ""):
            assert "!env.ACT" in step.get("if", "").replace(" ", ""), (job, step.get("name"))
    monitor = next(s for j, s in steps(load_workflow(WORKFLOW)) if s.get("id") == "monitor")
    assert "python -m pipeline monitor" in monitor["run"] and "if" not in monitor
    # thresholds only from releases this repository signed; under act github.repository is a path
    assert monitor["env"]["PHISHING_MODEL_REPO"] == "${{ !env.ACT && github.repository || '' }}"


def test_release_tags_are_fetched_into_the_client_cache_outside_act():
    workflow = load_workflow(WORKFLOW)
    on = workflow.get("on", workflow.get(True))
    assert "release-tags" in on["workflow_dispatch"]["inputs"]
    assert workflow["jobs"]["monitor"]["env"]["RELEASE_TAGS"] == (
        "${{ inputs.release-tags || vars.MONITOR_RELEASE_TAGS }}")
    fetch = next(s for _, s in steps(workflow) if "phishing-url-detector fetch" in s.get("run", ""))
    assert "!env.ACT" in fetch["if"].replace(" ", "") and "${{" not in fetch["run"]
    names = [s.get("name") for _, s in steps(workflow)]
    assert names.index(fetch["name"]) < names.index("Monitor")


def test_the_alert_edits_only_a_labelled_issue_the_bot_opened():
    """The selection is pipeline/monitoring/tracking_issue.py (tested on sample issues), not a title match."""
    workflow = load_workflow(WORKFLOW)
    alert = workflow["jobs"]["alert"]
    checkout = next(s for s in alert["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"] == {"persist-credentials": False, "sparse-checkout": "pipeline/monitoring"}
    step = next(s for s in alert["steps"] if s.get("name") == "Open or update the tracking issue")
    run = step["run"].replace("\\\n", " ")
    assert step["env"]["LABEL"] == "monitoring-alert"
    assert re.search(r'gh issue list --state open --label "\$LABEL" .*--json number,title,state,author,labels', run)
    assert 'python3 -m pipeline.monitoring.tracking_issue --label "$LABEL"' in run
    assert "--jq" not in run and "env.TITLE" not in run and "select(" not in run
    assert 'gh issue create --title "$TITLE" --label "$LABEL"' in run
    edits = [line for line in run.splitlines() if "gh issue edit" in line or "gh issue comment" in line]
    assert edits and all('"$number"' in line for line in edits)


@pytest.mark.slow
def test_workflow_run_steps_under_act(tmp_path):
    log = ms.to_csv_log(ms.synthetic_log(11, windows=12, shift=0.05, shift_from=9), tmp_path / "log.csv")
    out = tmp_path / "out"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"inputs": {"log": str(log), "out": str(out), "window": "7D"}}))
    command = act_command("workflow_dispatch", WORKFLOW.relative_to(REPO), event, tmp_path / "stub")
    result = subprocess.run(command, cwd=REPO, env=act_env(), capture_output=True,
                            text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    report = (out / "report.md").read_text()
    assert report.startswith("# Prediction monitoring: ALERT")
    for name in ("monitor.json", "ratio.png", "scores.png", "rejects.csv"):
        assert (out / name).is_file()
    # Exit code 3 became the job output that starts the issue job (whose steps act skips).
    assert "[monitor/alert" in output and output.count("Job succeeded") == 2
