"""One training per change: stored outputs restored and verified (`pipeline run`), the release's
origin (reviewed / reproduced / trained) and the release bot's commit and tag for the fork path."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, commit, sample_project, sh, small_params, write_params

from pipeline.release import origin as O
from pipeline.release.wheel import copy_client_sources
from pipeline.store import outputs
from pipeline.store.job import RunFacts, summary


# -- pure ------------------------------------------------------------------------------------------
def test_the_model_onnx_and_plots_are_stored_and_prepared_data_is_not():
    stored = outputs.stored_outputs(yaml.safe_load((REPO / "dvc.yaml").read_text()))
    assert {"models/model.joblib", "dist/phishing-url-detector.onnx", "plots/confusion.png",
            "plots/backtest.png"} <= set(stored)
    assert "data/prepared" not in stored and "metrics.json" not in stored  # recomputed / in git


def test_lock_outputs_and_the_problems_of_a_stale_output(tmp_path):
    lock = {"stages": {"train": {"outs": [{"path": "models/m.joblib", "md5": hashlib.md5(b"a").hexdigest()}]},
                       "prepare": {"outs": [{"path": "data/prepared", "md5": "0" * 32 + ".dir"}]}}}
    recorded = outputs.lock_outputs(lock)
    assert recorded["data/prepared"].is_dir and not recorded["models/m.joblib"].is_dir
    assert outputs.output_problems(tmp_path, recorded, ["models/m.joblib"]) == [
        "models/m.joblib is missing (run `dvc pull` / `dvc repro`)"]
    (tmp_path / "models").mkdir()
    (tmp_path / "models/m.joblib").write_bytes(b"a")
    assert outputs.output_problems(tmp_path, recorded, ["models/m.joblib"]) == []
    (tmp_path / "models/m.joblib").write_bytes(b"b")
    assert "differs from what dvc.lock records for stage 'train'" in \
        outputs.output_problems(tmp_path, recorded, ["models/m.joblib"])[0]
    assert "is not an output in dvc.lock" in outputs.output_problems(tmp_path, recorded, ["x.onnx"])[0]


def test_the_release_notes_name_the_path_taken():
    merged, bot = "a" * 40, "b" * 40
    assert "nothing was trained on the release runner" in O.Origin(O.REVIEWED, merged, merged).sentence()
    assert "no commit was needed" in O.Origin(O.REPRODUCED, merged, merged, ["train"]).sentence()
    trained = O.Origin(O.TRAINED, merged, bot, ["train", "export"], ["dvc.lock", "dvc-store/x"]).sentence()
    assert f"`{bot[:12]}` on top of the merge (2 files)" in trained and "(train, export)" in trained


def test_the_run_summary_says_what_was_restored_trained_and_verified():
    facts = RunFacts("local", ["models/model.joblib"], ["prepare"], False, ["models/model.joblib"], False, [],
                     3.0, "")
    text = "\n".join(summary(facts))
    assert "restored from the DVC cache/remote `local`: models/model.joblib" in text
    assert "re-ran on this machine: prepare" in text and "model trained here: no" in text
    assert "git status: no tracked file changed" in text
    trained = "\n".join(summary(RunFacts("local", [], ["train"], True, [], True, ["dvc.lock"], 9.0, "")))
    assert "model trained here: yes" in trained and "changed tracked files" in trained and "dvc.lock" in trained


# -- for real, on the samples -----------------------------------------------------------------------
def pipeline(*args, cwd: Path, check: bool = True):
    return sh(sys.executable, "-m", "pipeline", *args, cwd=cwd, check=check)


def run_facts(root: Path) -> dict:
    return json.loads((root / "build/run/run.json").read_text())


@pytest.fixture(scope="module")
def stored_project(tmp_path_factory) -> Path:
    """A sample project whose author ran `pipeline run` (outputs pushed into dvc-store/) and committed
    them, with the client's sources (the release attaches its wheel)."""
    root = sample_project(tmp_path_factory.mktemp("store") / "project", repro=False)
    shutil.rmtree(root / "client", ignore_errors=True)
    copy_client_sources(REPO, root / "client")
    pipeline("run", cwd=root)
    assert run_facts(root)["model_trained"]
    commit(root, "pipeline run, outputs stored in dvc-store/")
    return root


@pytest.mark.slow
@pytest.mark.xdist_group("store")
def test_a_fresh_clone_at_another_depth_restores_verifies_and_trains_nothing(stored_project, tmp_path):
    clone = tmp_path / "a" / "b" / "c" / "clone"
    sh("git", "clone", "-q", stored_project, clone, cwd=tmp_path)
    done = pipeline("run", cwd=clone)
    facts = run_facts(clone)
    assert facts["re_ran"] == ["prepare"] and not facts["model_trained"]  # prepared data is not stored
    assert {"models/model.joblib", "dist/phishing-url-detector.onnx"} <= set(facts["restored"])
    assert "model trained here: no" in done.stdout and "`dvc status` clean" in done.stdout
    assert sh("git", "status", "--porcelain", cwd=clone).stdout == ""
    assert facts["verified"] == outputs.verify_stored(clone)[0] and len(facts["verified"]) >= 8

    # The release of that clone: the reviewed bytes, nothing trained, no bot commit; tagged at HEAD.
    head = sh("git", "rev-parse", "HEAD", cwd=clone).stdout.strip()
    pipeline("release", "--out", "dist", "--commit-outputs", cwd=clone)
    decision = json.loads((clone / "dist/release.json").read_text())
    assert decision["origin"]["path"] == O.REVIEWED and decision["origin"]["release_commit"] == head
    assert decision["origin"]["bundle"] is None
    assert sh("git", "rev-parse", "model-v1.0.0^{commit}", cwd=clone).stdout.strip() == head
    assert "nothing was trained on the release runner" in (clone / "dist/release-notes.md").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("store")
def test_a_fork_pr_without_stored_outputs_gets_a_bot_commit_and_a_tag(stored_project, tmp_path):
    """The merged PR changed a training param but stored nothing: the release job trains, commits the
    lock, the outputs and dvc-store's new objects as the bot, tags that commit and bundles it."""
    clone = tmp_path / "merged"
    sh("git", "clone", "-q", stored_project, clone, cwd=tmp_path)
    params = small_params()
    params["train"]["logistic_regression"]["C"] = 2.0
    write_params(clone, params)
    commit(clone, "fork PR: C = 2.0 (no dvc.lock, no outputs)")
    merged = sh("git", "rev-parse", "HEAD", cwd=clone).stdout.strip()
    sh("git", "push", "-q", "origin", "HEAD:refs/heads/merged-fork-pr", cwd=clone)  # the merge, on the origin

    pipeline("run", "--run-cache", cwd=clone)
    assert run_facts(clone)["model_trained"]
    refused = pipeline("release", "--out", "dist", cwd=clone, check=False)  # without --commit-outputs
    assert refused.returncode == 1 and "differ from HEAD" in refused.stderr and "--commit-outputs" in refused.stderr
    pipeline("release", "--out", "dist", "--commit-outputs", cwd=clone)

    bot = sh("git", "rev-parse", "HEAD", cwd=clone).stdout.strip()
    assert bot != merged and sh("git", "rev-parse", "HEAD~1", cwd=clone).stdout.strip() == merged
    assert sh("git", "log", "-1", "--format=%an", cwd=clone).stdout.strip() == O.BOT_NAME
    files = sh("git", "show", "--name-only", "--format=", "HEAD", cwd=clone).stdout.split()
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    model_md5 = outputs.lock_outputs(lock)["models/model.joblib"].md5
    assert "dvc.lock" in files and f"dvc-store/files/md5/{model_md5[:2]}/{model_md5[2:]}" in files
    assert sh("git", "status", "--porcelain", cwd=clone).stdout == ""
    assert sh("git", "rev-parse", "model-v1.0.0^{commit}", cwd=clone).stdout.strip() == bot

    decision = json.loads((clone / "dist/release.json").read_text())
    assert decision["origin"]["path"] == O.TRAINED and decision["origin"]["merged_commit"] == merged
    manifest = json.loads((clone / "dist/release/manifest.json").read_text())
    assert manifest["git_commit"] == bot
    assert "The release bot committed" in (clone / "dist/release-notes.md").read_text()
    # The bundle carries the commit and the tag; pushed to main (here: fetched into the origin) it is complete:
    # a fresh clone of it restores everything and trains nothing.
    bundle = clone / "dist" / decision["origin"]["bundle"]
    sh("git", "bundle", "verify", bundle, cwd=stored_project)
    sh("git", "fetch", "-q", bundle, "refs/tags/model-v1.0.0:refs/tags/model-v1.0.0", cwd=stored_project)
    again = tmp_path / "after-release"
    sh("git", "clone", "-q", "--branch", "model-v1.0.0", stored_project, again, cwd=tmp_path)
    pipeline("run", cwd=again)
    assert not run_facts(again)["model_trained"] and run_facts(again)["re_ran"] == ["prepare"]
    subprocess.run(["git", "tag", "-d", "model-v1.0.0"], cwd=stored_project, capture_output=True)
