"""The DVC remote a team would use: an S3 bucket, here on moto's S3-compatible server on 127.0.0.1.

The sample project is switched from its in-repo remote to ``team`` (``s3://BUCKET/phishing`` with an
``endpointurl``), as a team commits it in .dvc/config: the URL, never credentials. Credentials
(moto accepts any) reach only the subprocesses, through the environment, as CI secrets would.

1. ``python -m pipeline run`` in the project trains and pushes raw data and outputs to the bucket.
2. A git clone at another folder depth restores the model from the bucket instead of training.
3. A clone without credentials fails at ``dvc pull`` with a message about credentials.
"""
from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import boto3
import dvc_s3  # noqa: F401  DVC's S3 plugin: without it `dvc push` to s3:// fails (the `dev` extra installs it)
import pytest
import requests
import yaml
from conftest import commit, sample_project, sh, venv_env
from moto.server import ThreadedMotoServer  # moto[server]

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("s3")]

BUCKET = "team-dvc"
PREFIX = "phishing"
MODEL = "models/model.joblib"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


def aws_env(root: Path, credentials: bool) -> dict:
    """What a subprocess gets: no AWS or DVC setting of this machine (env, ~/.aws, instance metadata, a
    global DVC cache or remote) leaks in; with ``credentials`` the fake keys, as CI secrets would be."""
    nowhere = root / "no-such-dir"
    env = {"AWS_EC2_METADATA_DISABLED": "true",  # botocore would otherwise probe 169.254.169.254
           "AWS_CONFIG_FILE": str(nowhere / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(nowhere / "credentials"),
           "DVC_GLOBAL_CONFIG_DIR": str(nowhere), "DVC_SYSTEM_CONFIG_DIR": str(nowhere)}
    return {**env, **(CREDENTIALS if credentials else {})}


def run(*args, cwd: Path, credentials: bool = True, check: bool = True) -> subprocess.CompletedProcess:
    """conftest.sh's environment less any AWS_* of this machine, plus ``aws_env``; fails with the output."""
    env = {k: v for k, v in venv_env().items() if not k.startswith("AWS_")} | aws_env(cwd, credentials)
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
    return result


def pipeline_run(cwd: Path, credentials: bool = True, check: bool = True):
    """The main job with the venv's python; the project's own pipeline/ is imported (cwd is first on sys.path)."""
    return run(sys.executable, "-m", "pipeline", "run", cwd=cwd, credentials=credentials, check=check)


def locked_md5(root: Path, path: str) -> str:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return next(out["md5"] for stage in lock["stages"].values() for out in stage.get("outs") or []
                if out["path"] == path)


def object_key(md5: str) -> str:
    """DVC 3's layout of a file in a remote: files/md5/<first 2 hex digits>/<the other 30>."""
    return f"{PREFIX}/files/md5/{md5[:2]}/{md5[2:]}"


@pytest.fixture(scope="module")
def s3():
    """moto's server on 127.0.0.1 (a free port), with an empty bucket; stopped at teardown."""
    werkzeug = logging.getLogger("werkzeug")  # one log line per request otherwise
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint, client
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)  # moto's state lives in this process
        server.stop()
        werkzeug.setLevel(level)


@pytest.fixture(scope="module")
def project(s3, tmp_path_factory):
    """The sample project on the ``team`` remote only (its in-repo remote removed), after its first run."""
    endpoint, _ = s3
    root = sample_project(tmp_path_factory.mktemp("s3") / "project", repro=False)
    run("dvc", "remote", "add", "-d", "team", f"s3://{BUCKET}/{PREFIX}", cwd=root)
    run("dvc", "remote", "modify", "team", "endpointurl", endpoint, cwd=root)
    run("dvc", "remote", "remove", "local", cwd=root)
    run("git", "rm", "-rq", "dvc-store", cwd=root)
    commit(root, "DVC remote: the team's S3 bucket")
    first = pipeline_run(root)
    commit(root, "pipeline run: dvc.lock and metrics")
    return root, first.stdout + first.stderr


def test_config_commits_the_url_never_credentials(project, s3):
    root, _ = project
    config = (root / ".dvc/config").read_text()
    assert f"url = s3://{BUCKET}/{PREFIX}" in config and f"endpointurl = {s3[0]}" in config
    assert "remote = team" in config and "dvc-store" not in config
    assert "testing" not in config and "access_key" not in config and "credentialpath" not in config
    assert sh("git", "ls-files", ".dvc", cwd=root).stdout.split() == [".dvc/.gitignore", ".dvc/config"]
    assert not (root / "dvc-store").exists()


def test_run_pushes_raw_data_and_outputs_to_the_bucket(project, s3):
    root, log = project
    _, client = s3
    assert "run: model trained here: yes" in log and "run: pushed what was computed to `team`" in log, log
    keys = {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
            for o in page.get("Contents", [])}
    model_md5 = locked_md5(root, MODEL)
    assert object_key(model_md5) in keys
    head = client.head_object(Bucket=BUCKET, Key=object_key(model_md5))
    assert head["ContentLength"] == (root / MODEL).stat().st_size
    pointers = sorted(root.glob("data/raw/**/*.dvc"))
    assert len(pointers) == 6
    for pointer in pointers:  # the raw data, which no in-repo remote has any more
        md5 = yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
        assert object_key(md5) in keys, pointer
    assert object_key(locked_md5(root, "dist/phishing-url-detector.onnx")) in keys


def test_a_clone_elsewhere_restores_the_model_instead_of_training(project, tmp_path):
    root, _ = project
    clone = tmp_path / "a" / "b" / "c" / "clone"  # another folder depth than the project's
    clone.parent.mkdir(parents=True)
    sh("git", "clone", "-q", root, clone, cwd=clone.parent)
    assert not (clone / MODEL).exists() and not (clone / ".dvc/cache").exists()
    result = pipeline_run(clone)
    out = result.stdout + result.stderr
    assert "run: model trained here: no" in out, out
    assert "run: restored from the DVC cache/remote `team`:" in out and MODEL in out
    assert "train" not in out.split("run: re-ran on this machine:")[1].splitlines()[0]
    assert sh("git", "status", "--porcelain", cwd=clone).stdout == ""
    assert hashlib.md5((clone / MODEL).read_bytes()).hexdigest() == locked_md5(clone, MODEL) == locked_md5(root, MODEL)


def test_a_clone_without_credentials_fails_at_pull_saying_so(project, tmp_path):
    root, _ = project
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", root, clone, cwd=tmp_path)
    result = pipeline_run(clone, credentials=False, check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "`dvc pull` failed" in out and "Unable to locate credentials" in out, out
    assert "Traceback" not in out
    assert not (clone / MODEL).exists()
    # The review's pull step names the secrets to set.
    review = run(sys.executable, "-m", "pipeline", "pull-data", "--out", tmp_path / "review", cwd=clone,
                 credentials=False, check=False)
    said = review.stdout + review.stderr
    assert review.returncode != 0, said
    assert "needs credentials this run does not have" in said and "`AWS_ACCESS_KEY_ID`" in said, said
    assert "needs credentials" in (tmp_path / "review" / "report.md").read_text()
