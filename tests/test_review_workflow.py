"""The two review workflows: triggers, least privilege, fork safety, act-compatibility (fast)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
REVIEW = REPO / ".github" / "workflows" / "review.yml"
COMMENT = REPO / ".github" / "workflows" / "review-comment.yml"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def on(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            yield job_name, step


def glob_regex(pattern: str) -> re.Pattern:
    """GitHub's path filter globs: ** crosses directories, * does not."""
    out = ""
    for part in re.split(r"(\*\*/|\*\*|\*)", pattern):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*"}.get(part, re.escape(part))
    return re.compile(out + r"\Z")


def triggers(path: str, patterns) -> bool:
    return any(glob_regex(p).match(path) for p in patterns)


@pytest.mark.parametrize("path, heavy", [
    ("pipeline/training/model.py", True), ("pipeline/review/render.py", True), ("params.yaml", True),
    ("dvc.yaml", True), ("dvc.lock", True), ("data/raw/ebbu2017.csv.gz.dvc", True), ("new.csv.dvc", True),
    ("pyproject.toml", True), (".github/workflows/review.yml", True), ("client/src/phishing_url_detector/fetch.py", True),
    ("model_card/template.md", True), ("constraints.txt", True),
    ("README.md", False), ("docs/usage.md", False), ("model_card/DATASHEET.md", False), ("tests/test_x.py", False),
])
def test_only_code_params_data_and_the_workflow_trigger_the_review(path, heavy):
    pull_request = on(load(REVIEW))["pull_request"]
    assert triggers(path, pull_request["paths"]) == heavy
    assert on(load(REVIEW))["push"]["paths"] == pull_request["paths"]


def test_review_runs_on_every_push_with_a_read_only_token_and_cancels_superseded_runs():
    workflow = load(REVIEW)
    assert set(on(workflow)["pull_request"]["types"]) >= {"opened", "synchronize", "reopened", "labeled"}
    assert on(workflow)["push"]["branches"] == ["main"]  # keeps the DVC cache of main warm
    assert workflow["permissions"] == {}
    job = workflow["jobs"]["review"]
    assert job["permissions"] == {"contents": "read"}
    assert job["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in job["concurrency"]["group"]
    assert "secrets." not in REVIEW.read_text()
    accept_label = load(REPO / "params.yaml")["review"]["accept_label"]
    assert f"github.event.label.name == '{accept_label}'" in job["if"]


def test_review_steps_checkout_history_cache_pull_repro_report():
    text = REVIEW.read_text()
    names = [s.get("name") for _, s in steps(load(REVIEW))]
    order = ["Check out (full history, for the base revision)", "Restore the DVC cache (with the run-cache)",
             "Pull the raw data", "Reproduce the pipeline", "Review against the base branch", "Upload the review",
             "Fail on an unaccepted regression"]
    assert [n for n in names if n in order] == order
    checkout = next(s for _, s in steps(load(REVIEW)) if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    assert "path: .dvc/cache" in text and "restore-keys" in text and "cache: pip" in text
    assert "python -m pipeline pull-data" in text and "dvc repro 2>&1 | tee" in text
    assert re.search(r"python -m pipeline report --base \"\$base\"", text)
    assert 'cat "$OUT/summary.md" >> "$GITHUB_STEP_SUMMARY"' in text


def test_github_only_steps_are_skipped_under_act_and_run_steps_are_not():
    for workflow in (load(REVIEW), load(COMMENT)):
        for job, step in steps(workflow):
            guarded = "!env.ACT" in str(step.get("if", "")).replace(" ", "")
            uses = step.get("uses", "")
            network = any(word in step.get("run", "") for word in ("npm ", "cml ", "gh ", "pip install"))
            if (uses and not uses.startswith("actions/checkout@")) or network:
                assert guarded, (job, step.get("name"))
    for name in ("Pull the raw data", "Reproduce the pipeline", "Review against the base branch"):
        step = next(s for _, s in steps(load(REVIEW)) if s.get("name") == name)
        assert "!env.ACT" not in str(step.get("if", "")), name


def test_comment_workflow_posts_with_pinned_cml_and_never_runs_pr_code():
    workflow = load(COMMENT)
    trigger = on(workflow)["workflow_run"]
    assert trigger["workflows"] == [load(REVIEW)["name"]] and trigger["types"] == ["completed"]
    assert workflow["permissions"] == {}
    job = workflow["jobs"]["comment"]
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert "workflow_run.event == 'pull_request'" in job["if"]
    text = COMMENT.read_text()
    assert "actions/checkout" not in text and "python" not in text  # data only: the PR's code never runs here
    assert re.search(r"npm install --global .*@dvcorg/cml@\d+\.\d+\.\d+\b", text)
    assert re.search(r"cml comment update .*--watermark-title=", text.replace("\\\n", " "))
    assert "tr -dc '0-9'" in text and ".head.sha" in text  # the artifact's PR number is checked
