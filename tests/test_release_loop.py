"""The whole loop under act: PR review -> merge -> release, each job in another calling environment.

The project's DVC remote is a folder outside the repository, standing in for the team's object
store (tests/test_s3_remote.py runs the same commands against an S3 server). The PR's author ran
the pipeline on a laptop (no pins set by hand) and committed dvc.lock but could not push the
outputs. The review job (OPENBLAS_CORETYPE=Haswell) finds them missing, trains once, stores them
and evaluates them; after the merge the release job (numpy's AVX-512 off) restores those bytes,
trains nothing, and publishes an ONNX file whose SHA-256 is the one in the review artifact.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import (
    REPO,
    commit,
    sample_project,
    sh,
    small_params,
    venv_env,
    write_params,
)
from workflow_tools import act_command

from pipeline.release.wheel import copy_client_sources

REVIEW = Path(".github/workflows/review.yml")
RELEASE = Path(".github/workflows/release.yml")
SLUG = "acme/phishing-url-detector"
REVIEW_ENV = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
RELEASE_ENV = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OMP_NUM_THREADS": "2"}


def run_act(project: Path, event_name: str, workflow: Path, event: dict, tmp: Path, env: dict,
            extra: tuple[str, ...] = ()) -> str:
    path = tmp / f"{workflow.stem}-event.json"
    path.write_text(json.dumps(event))
    command = act_command(event_name, workflow, path, tmp / f"stub-{workflow.stem}") + list(extra)
    for key, value in env.items():
        command += ["--env", f"{key}={value}"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=1500,
                            env=venv_env(env))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-8000:]
    return log


def make_loop_project(root: Path, store: Path) -> Path:
    """main with its outputs stored in the team store; a PR branch that changed a training param, whose
    author committed dvc.lock from a laptop run but pushed nothing."""
    npm_lock = ("requirements/npm/onnxruntime-node/package.json", "requirements/npm/onnxruntime-node/package-lock.json")
    project = sample_project(root, extra=(str(REVIEW), str(RELEASE), *npm_lock), repro=False)  # npm: the release job
    shutil.rmtree(project / "client", ignore_errors=True)
    copy_client_sources(REPO, project / "client")
    sh("dvc", "remote", "add", "-d", "team", str(store), cwd=project)
    sh("dvc", "push", "-q", "-r", "team", cwd=project)  # the raw data
    sh("git", "remote", "add", "origin", f"https://github.com/{SLUG}.git", cwd=project)
    sh("python", "-m", "pipeline", "run", cwd=project)  # main's own review stored its outputs
    commit(project, "main: pipeline run, outputs in the team store")

    sh("git", "checkout", "-q", "-b", "pr-smaller-c", cwd=project)
    params = small_params()
    params["train"]["logistic_regression"]["C"] = 1.0
    write_params(project, params)
    sh("python", "-m", "pipeline", "run", "--no-push", cwd=project)  # the author's laptop: no store access
    commit(project, "PR: logistic_regression.C = 1.0 (dvc.lock committed, outputs not pushed)")
    fresh_checkout(project)
    return project


def fresh_checkout(project: Path) -> None:
    """What a runner starts from: tracked files only, an empty DVC cache (no laptop outputs to lean on)."""
    sh("git", "clean", "-ffdxq", cwd=project)


@pytest.mark.slow
@pytest.mark.xdist_group("release-loop")
def test_review_then_merge_then_release_publishes_the_reviewed_onnx(tmp_path):
    store = tmp_path / "team-store"
    project = make_loop_project(tmp_path / "project", store)
    pr_lock = (project / "dvc.lock").read_text()
    model_md5 = re.search(r"path: models/model.joblib\n\s+hash: md5\n\s+md5: (\w+)", pr_lock).group(1)
    assert not (store / "files/md5" / model_md5[:2] / model_md5[2:]).exists()  # the PR's outputs: not stored

    # 1. The review of the PR, in one calling environment: trains once (nothing stored), stores, evaluates.
    out = tmp_path / "review"
    event = {"action": "synchronize", "number": 3, "pull_request": {
        "number": 3, "base": {"ref": "main"}, "head": {"ref": "pr-smaller-c", "repo": {"full_name": SLUG}},
        "labels": [{"name": "accept-regression"}]}}
    review_log = run_act(project, "pull_request", REVIEW, event, tmp_path, REVIEW_ENV,
                         ("--var", f"REVIEW_OUT={out}"))
    review = json.loads((out / "review.json").read_text())
    assert review["pipeline"]["pr"]["stages"]["train"] == "re-ran"
    assert not review["pipeline"]["lock_mismatch"]  # CI's bytes = the laptop's bytes: same dvc.lock
    assert review["pipeline"]["base"]["stages"]["train"] == "restored from the remote"  # base not re-trained
    assert "restored from the DVC remote" in (out / "report.md").read_text()
    assert "caller had: OPENBLAS_CORETYPE=Haswell" in review_log  # the stages saw the review's environment
    assert (store / "files/md5" / model_md5[:2] / model_md5[2:]).is_file()  # stored by `pipeline store`
    reviewed_onnx = review["onnx"]["pr"]["sha256"]

    # 2. Merge.
    sh("git", "checkout", "-q", "main", cwd=project)
    sh("git", "merge", "-q", "--ff-only", "pr-smaller-c", cwd=project)
    fresh_checkout(project)

    # 3. The release, in another calling environment: restores the reviewed bytes, trains nothing.
    release_log = run_act(project, "push", RELEASE, {"ref": "refs/heads/main"}, tmp_path, RELEASE_ENV)
    assert "run: model trained here: no (restored, the bytes the review evaluated)" in release_log
    assert "release: outputs reviewed" in release_log
    assert "caller had: NPY_DISABLE_CPU_FEATURES=X86_V4 AVX512_ICL AVX512_SPR; OMP_NUM_THREADS=2" in release_log
    published = re.search(r"([0-9a-f]{64})\s+\d+\s+phishing-url-detector-1\.0\.0\.onnx", release_log).group(1)
    assert published == reviewed_onnx
    assert "Job succeeded" in release_log
