"""The release workflow: triggers, pinning, permissions, lint, and a real run under ``act``."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, commit, sample_project, sh
from workflow_tools import (
    act_command,
    act_env,
    load_workflow,
    shared_path_filters,
    skipped_under_act,
    steps,
)

from phishing_url_detector.releases import (
    SUMS_FILE,
    model_asset_name,
    provenance_asset_names,
)
from pipeline.release.wheel import copy_client_sources

WORKFLOW = REPO / ".github" / "workflows" / "release.yml"
PATH_FILTERS = [*shared_path_filters(), ".github/workflows/release.yml"]


def test_triggers_on_push_to_main_with_the_pr_ci_path_filters():
    workflow = load_workflow(WORKFLOW)
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on["push"]["branches"] == ["main"]
    assert on["push"]["paths"] == PATH_FILTERS
    assert "client/**" in PATH_FILTERS  # the wheel each release attaches is built from it
    assert workflow["concurrency"] == {"group": "release", "cancel-in-progress": False}


def test_only_the_publish_job_can_write_or_mint_tokens():
    workflow = load_workflow(WORKFLOW)
    assert workflow["permissions"] == {}
    perms = {name: job.get("permissions") for name, job in workflow["jobs"].items()}
    assert perms["build"] == {"contents": "read"}
    assert perms["publish"] == {"contents": "write", "id-token": "write", "attestations": "write"}
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build" and "needs.build.outputs.release == 'true'" in publish["if"]
    # The privileged job runs no project code: only actions and gh/sha256sum.
    for step in publish["steps"]:
        assert "python" not in step.get("run", "") and "dvc" not in step.get("run", "")
    attests = [s for s in publish["steps"] if "attest-build-provenance" in s.get("uses", "")]
    assert "phishing-url-detector-" in publish["env"]["ONNX"]
    assert publish["env"]["WHEEL"] == "dist/release/${{ needs.build.outputs.wheel }}"
    assert [s["with"]["subject-path"] for s in attests] == [
        "${{ env.ONNX }}", f"dist/release/{SUMS_FILE}", "${{ env.WHEEL }}"]
    assert len({s["uses"] for s in attests}) == 1 and re.search(r"@[0-9a-f]{40}$", attests[0]["uses"])
    assert workflow["jobs"]["build"]["outputs"]["wheel"] == "${{ steps.build.outputs.wheel }}"


def test_the_provenance_bundles_are_attached_under_the_names_the_client_expects():
    """The ONNX file's and SHA256SUMS' bundles (``bundle-path`` of their attest steps) are copied into the
    release directory as ``provenance_asset_names``, before ``gh release create dist/release/*``."""
    publish = load_workflow(WORKFLOW)["jobs"]["publish"]
    ids = [s.get("id") for s in publish["steps"]]
    attach = next(s for s in publish["steps"] if "sigstore.json" in s.get("run", ""))
    assert attach["env"] == {"ONNX_BUNDLE": "${{ steps.attest-onnx.outputs.bundle-path }}",
                             "SUMS_BUNDLE": "${{ steps.attest-sums.outputs.bundle-path }}"}
    create = next(s for s in publish["steps"] if "gh release create" in s.get("run", ""))
    assert ids.index("attest-onnx") < ids.index("attest-sums") < publish["steps"].index(attach) \
        < publish["steps"].index(create)
    onnx = model_asset_name("1.2.3")
    expanded = attach["run"].replace("$ONNX", f"dist/release/{onnx}")  # env.ONNX, for version 1.2.3
    copies = [line.split()[-1].strip('"') for line in expanded.splitlines() if line.startswith("cp ")]
    assert copies == [f"dist/release/{name}" for name in provenance_asset_names("1.2.3")]
    assert publish["env"]["ONNX"].replace("${{ needs.build.outputs.version }}", "1.2.3") == f"dist/release/{onnx}"


def test_every_pip_install_is_hash_locked_and_installs_the_client():
    installs = [line.strip() for _, step in steps(load_workflow(WORKFLOW))
                for line in step.get("run", "").splitlines() if re.search(r"\bpip install\b", line)]
    assert installs, "no pip install in the workflow"
    # The locks by hash (tests/test_workflows_policy.py), then the client distribution (./client,
    # on no index) and the pipeline from the checkout, nothing resolved.
    assert [line for line in installs if "--require-hashes" in line] == installs[:-1]
    assert "-r requirements/run.lock" in installs[1]
    assert "-e ./client" in installs[-1] and "--no-index" in installs[-1] and "--no-deps" in installs[-1]


def test_github_only_steps_are_skipped_under_act_and_the_logic_is_in_the_release_command():
    for job, step in steps(load_workflow(WORKFLOW)):
        run = step.get("run", "")
        if ("uses" in step and not step["uses"].startswith("actions/checkout@")) or re.search(r"\bgh ", run):
            assert skipped_under_act(step), (job, step.get("name"))
    build = next(s for j, s in steps(load_workflow(WORKFLOW)) if s.get("id") == "build")
    assert "python -m pipeline release" in build["run"] and "if" not in build
    restore = next(s for j, s in steps(load_workflow(WORKFLOW)) if "python -m pipeline run" in s.get("run", ""))
    assert "if" not in restore and "--commit-outputs" in build["run"]
    publish = next(s for j, s in steps(load_workflow(WORKFLOW)) if "gh release create" in s.get("run", ""))
    assert "dist/release/*" in publish["run"] and "--notes-file dist/release-notes.md" in publish["run"]


def make_project(root: Path) -> Path:
    """This repository in small: code, dvc.yaml, the card template, the workflow, small params, sampled
    raw data in an in-repo DVC remote; the pipeline run and its dvc.lock and outputs committed; and the
    client's sources, whose wheel the release attaches."""
    npm_lock = ("requirements/npm/onnxruntime-node/package.json", "requirements/npm/onnxruntime-node/package-lock.json")
    project = sample_project(root, extra=(".github/workflows/release.yml", *npm_lock))
    shutil.rmtree(project / "client", ignore_errors=True)  # it holds the client modules the stages depend on
    copy_client_sources(REPO, project / "client")
    sh("dvc", "push", "-q", cwd=project)  # the outputs the review evaluated, stored in dvc-store/
    commit(project, "the client, the stored outputs")
    return project


@pytest.mark.slow
@pytest.mark.xdist_group("release-act")
def test_workflow_run_steps_under_act(tmp_path):
    """push to main -> dvc pull, dvc repro (a fresh run in act's copy), the release build and its
    check; the publish job's steps (GitHub only) are skipped. The workflow's assets are byte for
    byte those of a local `python -m pipeline release` of the same commit."""
    project = make_project(tmp_path / "project")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": "refs/heads/main", "repository": {"default_branch": "main"}}))
    command = act_command("push", Path(".github/workflows/release.yml"), event, tmp_path / "stub")
    result = subprocess.run(command, cwd=project, env=act_env(), capture_output=True, text=True,
                            timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "release: model-v1.0.0 (initial: first release (contract major 1))" in output
    wheel = re.search(r"phishing_url_detector-\d+\.\d+\.\d+-py3-none-any\.whl", output).group(0)
    for name in ("phishing-url-detector-1.0.0.onnx", "manifest.json", "MODEL_CARD.md", "metrics.json", wheel):
        assert f"{name}: OK" in output  # sha256sum -c SHA256SUMS in the workflow
    assert f"{wheel} installed alone into a fresh venv, verified and scored with the release" in output
    assert "[release/publish" in output and output.count("Job succeeded") == 2

    sh(sys.executable, "-m", "pipeline", "release", "--out", "dist", cwd=project)
    local = (project / "dist" / "release" / "SHA256SUMS").read_text().split()
    digests = dict(zip(local[1::2], local[0::2]))
    assert wheel in digests  # the wheel too: same commit, same bytes, wherever it is built
    for name, digest in digests.items():
        assert re.search(rf"{digest}\s+\d+\s+{re.escape(name)}", output), f"{name} differs from the local build"


def test_the_release_is_scored_by_the_pinned_onnxruntime_node_before_it_is_uploaded():
    """The product's other runtime is part of the release check, from the Makefile's lock (npm ci)."""
    names = [s.get("name") for _, s in steps(load_workflow(WORKFLOW))]
    install = next(s for _, s in steps(load_workflow(WORKFLOW)) if "onnxruntime-node" in s.get("run", ""))
    assert "requirements/npm/onnxruntime-node/package-lock.json" in install["run"]
    assert "npm ci " in install["run"] and "npm install" not in install["run"] and "--ignore-scripts" in install["run"]
    check = next(s for _, s in steps(load_workflow(WORKFLOW)) if "pipeline node-parity" in s.get("run", ""))
    assert "!env.ACT" not in str(check.get("if", ""))
    assert names.index(install["name"]) < names.index(check["name"]) < names.index("Upload the release directory")
