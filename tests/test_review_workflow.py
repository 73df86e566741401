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
    # Its only secrets are the DVC store's (an object-store remote), which GitHub withholds from forks,
    # and the step that writes to the store does not run for a fork.
    assert set(re.findall(r"secrets\.(\w+)", REVIEW.read_text())) == {"DVC_AWS_ACCESS_KEY_ID",
                                                                      "DVC_AWS_SECRET_ACCESS_KEY"}
    store = next(s for _, s in steps(workflow) if "python -m pipeline store" in s.get("run", ""))
    assert store["if"] == "${{ env.PR_FROM_FORK != 'true' }}"
    accept_label = load(REPO / "params.yaml")["review"]["accept_label"]
    assert f"github.event.label.name == '{accept_label}'" in job["if"]


def test_review_steps_checkout_history_cache_pull_repro_report():
    text = REVIEW.read_text()
    names = [s.get("name") for _, s in steps(load(REVIEW))]
    order = ["Check out (full history, for the base revision)", "Restore the DVC cache (with the run-cache)",
             "Pull the raw data and the stored outputs", "Reproduce the pipeline",
             "Store the outputs this review evaluates", "Review against the base branch", "Upload the review",
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
    for name in ("Pull the raw data and the stored outputs", "Reproduce the pipeline",
                 "Store the outputs this review evaluates", "Review against the base branch"):
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
    # Only the base branch's code: a checkout with no ref/repository is the default branch's GITHUB_SHA.
    checkouts = [s for _, s in steps(workflow) if s.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == 1
    assert set(checkouts[0]["with"]) == {"persist-credentials", "sparse-checkout"}
    assert checkouts[0]["with"]["persist-credentials"] is False
    assert checkouts[0]["with"]["sparse-checkout"].split() == ["pipeline/review", ".github/cml", ".github/comment-gate"]
    runs = "\n".join(s.get("run", "") for _, s in steps(workflow))
    # Nothing of the PR is installed: pip installs only the gate's parser, by hash (tests/test_comment_gate.py).
    installs = [c for c in runs.replace("\\\n", " ").splitlines() if "pip install" in c]
    assert len(installs) == 1 and "--require-hashes" in installs[0] and "python -m pipeline" not in runs
    assert "-r .github/comment-gate/requirements.txt" in installs[0]
    assert set(re.findall(r"python3 -m ([\w.]+)", runs)) == {"pipeline.review.comment", "pipeline.review.cml_lock",
                                                             "pip"}
    download = next(s for _, s in steps(workflow) if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"]["path"] == "${{ runner.temp }}/review"  # the PR's data outside the checkout
    assert "tr -dc '0-9'" in text and ".head.sha" in text  # the artifact's PR number is checked


def test_comment_is_posted_from_the_gated_body_without_uploading_local_files():
    workflow = load(COMMENT)
    names = [s.get("name") for _, s in steps(workflow)]
    gate = next(s for _, s in steps(workflow) if "pipeline.review.comment" in s.get("run", ""))
    post = next(s for _, s in steps(workflow) if "cml comment" in s.get("run", ""))
    assert names.index(gate["name"]) < names.index(post["name"])
    assert '--report "$RUNNER_TEMP/review/report.md"' in gate["run"]
    assert '--out "$RUNNER_TEMP/comment/comment.md"' in gate["run"]
    assert gate["env"]["RUN_URL"] == "${{ github.event.workflow_run.html_url }}"
    call = post["run"].replace("\\\n", " ")
    assert re.search(r"cml comment update .*--watermark-title=.* --no-publish comment\.md$", call, re.MULTILINE)
    assert not re.search(r"(?<!no-)publish\b(?!-)", call.replace("--no-publish", ""))  # CML defaults to --publish
    assert 'cd "$RUNNER_TEMP/comment"' in post["run"]  # the gated body alone, away from the artifact


def test_cml_is_installed_from_the_committed_package_json_with_integrity_when_locked():
    install = next(s for _, s in steps(load(COMMENT)) if s.get("name") == "Install CML")["run"]
    assert "npm install --global" not in install
    locked, unlocked = install.split("else", 1)
    assert "[ -f .github/cml/package-lock.json ]" in locked
    assert locked.index("python3 -m pipeline.review.cml_lock .github/cml") < locked.index(
        "npm ci --prefix .github/cml --ignore-scripts")
    assert "::warning title=CML is not integrity-pinned::" in unlocked
    assert "--prefix .github/cml --ignore-scripts" in unlocked and "--no-package-lock" in unlocked
    assert '"$PWD/.github/cml/node_modules/.bin" >> "$GITHUB_PATH"' in install
