"""`python -m pipeline release`: reproducible bytes, the version decision, refusals, the loader's view.

Each test builds releases in a throwaway git repository holding what a real
checkout holds after `dvc repro`: the committed outputs of this repository
(metrics.json, reports, the DVC manifest), a small real ONNX model with the
product contract in place of the 23 MB one, the rendered card, a dvc.lock
that records them, and the client's sources (each release attaches its wheel).

Building the client wheel (~4 s) and proving it in a fresh venv (~7 s) give the
same answer for the same bytes, so tests reuse both within the session
(:func:`reuse_wheel_work`): a wheel per client sources and commit time, a proof
per wheel and ONNX file. The tests that request ``rebuild_wheel`` build the
wheel for real in every build.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from sigstore_testca import TestSigstore

from phishing_url_detector import __version__ as CLIENT_VERSION
from phishing_url_detector.digests import sha256_file
from phishing_url_detector.releases import release_asset_names, verify_release_dir
from pipeline import cli
from pipeline.release import build as R
from pipeline.release import wheel as W
from pipeline.release.card import render as mc
from pipeline.release.inputs import CLIENT_LOCK, STAMP_FIELDS, ReleaseError

OUTPUTS = ["metrics.json", "reports/data_report.json", "reports/operating_point.json", "reports/final_fit.json", "reports/parity.json",
           "reports/backtest.json", "params.yaml", "model_card/template.md", "dist/manifest.json"]
URLS = ["http://example.com/", "http://paypal.com.secure-login.example.tk/webscr?cmd=_login"]
WHEEL = f"phishing_url_detector-{CLIENT_VERSION}-py3-none-any.whl"


def assets(version: str) -> list[str]:
    """The release directory: the model release's five assets and the client wheel."""
    return R.release_files(version, WHEEL)


def git(root: Path, *args: str, date: str = "2024-05-01T12:00:00+02:00") -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def relock(root: Path) -> None:
    """dvc.lock as `dvc repro` would leave it: one entry per output, with its md5."""
    stages = {"export": ["dist/phishing-url-detector.onnx"], "manifest": ["dist/manifest.json"],
              "evaluate": ["metrics.json"], "model-card": ["model_card/MODEL_CARD.md"]}
    lock = {"schema": "2.0", "stages": {
        name: {"cmd": f"python -m pipeline {name}",
               "outs": [{"path": p, "hash": "md5", "md5": md5(root / p), "size": (root / p).stat().st_size}
                        for p in paths]}
        for name, paths in stages.items()}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))


def set_model(root: Path, onnx_bytes: bytes) -> None:
    """Put an ONNX model in dist/ and make the DVC manifest, the card and dvc.lock describe it."""
    onnx = root / "dist" / "phishing-url-detector.onnx"
    onnx.write_bytes(onnx_bytes)
    manifest = json.loads((root / "dist/manifest.json").read_text())
    manifest["model"].update(sha256=hashlib.sha256(onnx_bytes).hexdigest(), size_bytes=len(onnx_bytes))
    (root / "dist/manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    rerender(root)


def rerender(root: Path) -> None:
    (root / mc.CARD).parent.mkdir(parents=True, exist_ok=True)
    (root / mc.CARD).write_text(mc.render_card(root))
    relock(root)


def commit(root: Path, message: str, date: str = "2024-05-01T12:00:00+02:00") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message, date=date)
    return git(root, "rev-parse", "HEAD").strip()


# -- the client wheel's work, reused within the session --------------------------------------------
_WHEELS: dict = {}   # (client sources digest, SOURCE_DATE_EPOCH) -> (wheel name, bytes)
_CHECKED: dict = {}  # (wheel sha256, onnx sha256) -> pip freeze of the venv it was proven in


def _client_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted((root / "client").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


# The tests that build a release (the client wheel, then its check in a fresh venv: ~20 s the first time in
# a process) are marked slow; the refusals before the wheel step stay in the fast tier.
@pytest.fixture
def rebuild_wheel():
    """Request it to build the client wheel for real in every build of the test."""


@pytest.fixture(autouse=True)
def reuse_wheel_work(request, monkeypatch):
    rebuild = "rebuild_wheel" in request.fixturenames
    build_wheel, check_wheel = R.build_client_wheel, R.check_client_wheel

    def build(root, dest, epoch):
        key = (_client_digest(root), epoch)
        if rebuild or key not in _WHEELS:
            wheel = build_wheel(root, dest, epoch)
            _WHEELS[key] = (wheel.name, wheel.read_bytes())
        name, data = _WHEELS[key]
        (dest / name).write_bytes(data)
        return dest / name

    def check(wheel, onnx, lock):
        key = (sha256_file(wheel), sha256_file(onnx))
        if key not in _CHECKED:
            _CHECKED[key] = check_wheel(wheel, onnx, lock).installed
        return W.CheckedWheel(wheel, _CHECKED[key])

    monkeypatch.setattr(R, "build_client_wheel", build)
    monkeypatch.setattr(R, "check_client_wheel", check)


@pytest.fixture
def project(tmp_path, small_onnx) -> Path:
    root = tmp_path / "repo"
    for rel in OUTPUTS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, root / rel)
    W.copy_client_sources(REPO, root / "client")
    (root / CLIENT_LOCK).parent.mkdir(parents=True)
    shutil.copyfile(REPO / CLIENT_LOCK, root / CLIENT_LOCK)
    (root / "dist/.gitignore").write_text("/phishing-url-detector.onnx\n/release/\n/release-notes.md\n/release.json\n")
    set_model(root, small_onnx)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.invalid")
    git(root, "config", "user.name", "CI")
    commit(root, "pipeline outputs")
    return root


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -- reproducible bytes ----------------------------------------------------------------------
@pytest.mark.slow
def test_two_builds_of_one_commit_are_byte_identical(project, tmp_path, rebuild_wheel):
    first = R.build(project, tmp_path / "a")
    time.sleep(1.1)  # a wall-clock timestamp anywhere would now differ
    second = R.build(project, tmp_path / "b")
    assert first.release and second.release and first.version == second.version == "1.0.0"
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a.keys() == b.keys() == {"release.json", "release-notes.md", *(f"release/{n}" for n in assets("1.0.0"))}
    assert a == b
    assert a["release/SHA256SUMS"] == b["release/SHA256SUMS"]
    assert a[f"release/{WHEEL}"] == b[f"release/{WHEEL}"]


@pytest.mark.slow
def test_the_wheel_is_the_committed_client_stamped_with_the_commit_time(project, tmp_path):
    result = R.build(project, tmp_path / "out")
    assert result.wheel == WHEEL
    with zipfile.ZipFile(result.directory / WHEEL) as whl:
        infos = whl.infolist()
        modules = {i.filename for i in infos if i.filename.endswith(".py")}
        metadata = whl.read(f"phishing_url_detector-{CLIENT_VERSION}.dist-info/METADATA").decode()
    # SOURCE_DATE_EPOCH = the commit's time (2024-05-01T10:00:00Z), so no wall clock in the zip.
    assert {i.date_time for i in infos} == {(2024, 5, 1, 10, 0, 0)}
    # Exactly the client's sources: nothing stale from an in-tree build/ directory.
    src = project / "client" / "src"
    assert modules == {p.relative_to(src).as_posix() for p in src.rglob("*.py")}
    assert "Requires-Dist: numpy" in metadata and "Requires-Dist: onnxruntime" in metadata
    assert "Requires-Dist: sigstore" in metadata  # verifies the provenance bundles
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert len(required) == 3
    assert "Provides-Extra: parquet" in metadata  # pyarrow, for batch scoring to/from Parquet only


@pytest.mark.slow
def test_the_wheel_is_proven_on_the_release_before_it_is_attached(project, tmp_path, monkeypatch):
    seen = []
    check = R.check_client_wheel

    def spy(wheel, onnx, lock):
        seen.append(sorted(p.name for p in onnx.parent.iterdir()))
        assert sha256_file(onnx) == hashlib.sha256((project / "dist/phishing-url-detector.onnx").read_bytes()).hexdigest()
        return check(wheel, onnx, lock)

    monkeypatch.setattr(R, "check_client_wheel", spy)
    result = R.build(project, tmp_path / "out")
    # It scored the release's own ONNX file, beside the final SHA256SUMS and manifest (verified first).
    assert seen == [sorted(assets("1.0.0"))]
    notes = (tmp_path / "out" / "release-notes.md").read_text()
    assert f"pip install {WHEEL}" in notes
    assert "phishing-url-detector score --repo OWNER/NAME --model phishing-url-detector-1.0.0.onnx" in notes
    assert "`numpy==" in notes and "`onnxruntime==" in notes and "scikit-learn" not in notes
    assert result.files[-2]["name"] == WHEEL


@pytest.mark.slow
def test_a_release_without_the_wheel_still_verifies(project, tmp_path):
    """The wheel is an extra asset: the model release contract (five assets) does not need it."""
    result = R.build(project, tmp_path / "out")
    (result.directory / WHEEL).unlink()
    assert verify_release_dir(result.directory, "1.0.0").version == "1.0.0"
    # A local build is not attested (the publish job does that): integrity only, with the opt-out.
    assert cli.main(["verify", "--allow-unverified", str(result.directory)]) == 0
    onnx = result.directory / "phishing-url-detector-1.0.0.onnx"
    assert cli.main(["score", "--allow-unverified", "--model", str(onnx), URLS[0]]) == 0
    assert cli.main(["score", "--repo", "acme/models", "--model", str(onnx), URLS[0]]) == 2  # no bundle


@pytest.mark.slow
def test_a_client_that_cannot_score_is_refused(project, tmp_path):
    """A wheel that installs but whose CLI fails on the release: no release is written."""
    detector = project / "client/src/phishing_url_detector/detector.py"
    detector.write_text(detector.read_text() + "\n\ndef _broken(self, urls):\n    raise RuntimeError('broken client')"
                                               "\n\n\nDetector.score = _broken\n")
    commit(project, "a broken client")
    with pytest.raises(ReleaseError, match=r"(?s)phishing-url-detector score --model phishing-url-detector-1.0.0.onnx "
                                           r"\(from the wheel, in a fresh venv\) failed.*RuntimeError: broken client"):
        R.build(project, tmp_path / "out")
    assert not (tmp_path / "out" / "release").exists() and not (tmp_path / "out" / ".release.tmp").exists()


@pytest.mark.slow
def test_release_directory_contents(project, tmp_path, small_onnx):
    result = R.build(project, tmp_path / "out")
    rel = tmp_path / "out" / "release"
    assert sorted(p.name for p in rel.iterdir()) == sorted(assets("1.0.0"))
    assert (rel / "phishing-url-detector-1.0.0.onnx").read_bytes() == small_onnx
    assert (rel / "metrics.json").read_bytes() == (project / "metrics.json").read_bytes()

    dvc_manifest = json.loads((project / "dist/manifest.json").read_text())
    manifest = json.loads((rel / "manifest.json").read_text())
    head = git(project, "rev-parse", "HEAD").strip()
    assert manifest["version"] == "1.0.0"
    assert manifest["git_commit"] == head
    assert manifest["dvc_lock_sha256"] == hashlib.sha256((project / "dvc.lock").read_bytes()).hexdigest()
    assert manifest["created_at"] == "2024-05-01T10:00:00Z"  # the commit's time, in UTC
    assert manifest["model"] == {**dvc_manifest["model"], "file": "phishing-url-detector-1.0.0.onnx"}
    rest = {k: v for k, v in manifest.items() if k not in STAMP_FIELDS and k != "model"}
    assert rest == {k: v for k, v in dvc_manifest.items() if k != "model"}
    for field in ("contract", "contract_digest", "threshold", "target_fpr", "opset", "min_onnxruntime",
                  "metrics", "provenance"):
        assert field in manifest
    assert set(manifest["provenance"]) >= {"data_digest", "params_digest"}
    assert manifest["metrics"]["roc_auc"].keys() == {"value", "ci95_low", "ci95_high"}

    card = (rel / "MODEL_CARD.md").read_text()
    assert card == mc.stamp_version((project / mc.CARD).read_text(), "1.0.0", "model-v1.0.0", head)
    sums = (rel / "SHA256SUMS").read_text().splitlines()
    assert sums == sorted(sums, key=lambda line: line.split("  ")[1]) and len(sums) == 5
    assert {line.split("  ")[1] for line in sums} == set(assets("1.0.0")) - {"SHA256SUMS"}
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=rel, capture_output=True).returncode == 0
    assert verify_release_dir(rel, "1.0.0").sha256 == hashlib.sha256(small_onnx).hexdigest()

    decision = json.loads((tmp_path / "out" / "release.json").read_text())
    assert decision["release"] is True and decision["tag"] == "model-v1.0.0" and decision["bump"] == "initial"
    assert [f["name"] for f in decision["files"]] == assets("1.0.0")
    assert decision["provenance_assets"] == ["phishing-url-detector-1.0.0.onnx.sigstore.json",
                                             "SHA256SUMS.sigstore.json"]  # attached by the publish job
    assert decision["wheel"] == WHEEL
    notes = (tmp_path / "out" / "release-notes.md").read_text()
    assert notes.startswith(mc.section(card, "Summary"))
    assert "first release" in notes
    for name in ("phishing-url-detector-1.0.0.onnx", "SHA256SUMS"):  # offline provenance check of each bundle
        assert (f"gh attestation verify {name} --repo OWNER/NAME --bundle {name}.sigstore.json "
                "--signer-workflow OWNER/NAME/.github/workflows/release.yml --source-ref refs/heads/main") in notes
    assert result.directory == tmp_path / "out" / "release"


@pytest.mark.slow
def test_default_out_never_touches_the_dvc_outputs(project, monkeypatch, capsys):
    before = tree(project / "dist")
    monkeypatch.chdir(project)
    assert cli.main(["release"]) == 0
    after = tree(project / "dist")
    assert {k: v for k, v in after.items() if k in before} == before
    assert (project / "dist/release/phishing-url-detector-1.0.0.onnx").is_file()
    out = capsys.readouterr().out
    assert "release: model-v1.0.0" in out and "SHA256SUMS" in out


# -- the version decision ------------------------------------------------------------------
def released(project: Path, out: Path) -> tuple[Path, list[str]]:
    """Build, and pretend it was published: the directory plays the downloaded release."""
    result = R.build(project, out)
    return out / "release", [result.tag]


@pytest.mark.slow
def test_no_release_when_nothing_changed(project, tmp_path):
    previous, tags = released(project, tmp_path / "v1")
    # A new commit that changes nothing shipped (a code comment, a dvc.lock-only change).
    (project / "README").write_text("docs\n")
    commit(project, "docs", date="2024-06-01T00:00:00Z")
    result = R.build(project, tmp_path / "v2", previous_dir=previous, tags=tags)
    assert not result.release and "nothing changed since model-v1.0.0" in result.reason
    assert not (tmp_path / "v2" / "release").exists()
    assert json.loads((tmp_path / "v2" / "release.json").read_text())["release"] is False


@pytest.mark.slow
def test_patch_when_only_the_card_text_changes(project, tmp_path):
    previous, tags = released(project, tmp_path / "v1")
    template = project / mc.TEMPLATE
    template.write_text(template.read_text().replace("## Intended use\n", "## Intended use\n\n- Also: demos.\n"))
    rerender(project)
    commit(project, "card wording")
    result = R.build(project, tmp_path / "v2", previous_dir=previous, tags=tags)
    assert (result.version, result.bump, result.previous_tag) == ("1.0.1", "patch", "model-v1.0.0")
    notes = (tmp_path / "v2" / "release-notes.md").read_text()
    assert "### Metrics against model-v1.0.0" in notes and "| ROC AUC | " in notes


@pytest.mark.slow
def test_minor_when_the_model_bytes_change(project, tmp_path, small_model):
    from pipeline.training.onnx_export import to_onnx

    previous, tags = released(project, tmp_path / "v1")
    set_model(project, to_onnx(small_model, 0.6).SerializeToString())
    metrics = json.loads((project / "metrics.json").read_text())
    metrics["ensemble"]["recall"]["value"] += 0.01
    (project / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    rerender(project)
    commit(project, "retrained")
    result = R.build(project, tmp_path / "v2", previous_dir=previous, tags=[*tags, "v0.9-unrelated"])
    assert (result.version, result.bump) == ("1.1.0", "minor")
    notes = (tmp_path / "v2" / "release-notes.md").read_text()
    assert "| recall (true-positive rate) |" in notes and "+0.0100" in notes


@pytest.mark.slow
def test_major_when_the_contract_changes(project, tmp_path):
    """The previous release (model-v0.4.2) was built under another contract: MAJOR bump to 1.0.0."""
    previous, _ = released(project, tmp_path / "old")
    manifest = json.loads((previous / "manifest.json").read_text())
    manifest["contract"] = {**manifest["contract"], "preprocessing": "none"}
    from phishing_url_detector.contract import contract_digest

    manifest.update(contract_digest=contract_digest(manifest["contract"]), contract_major=0, version="0.4.2")
    manifest["model"]["file"] = "phishing-url-detector-0.4.2.onnx"
    (previous / "manifest.json").write_text(json.dumps(manifest))
    (previous / "phishing-url-detector-1.0.0.onnx").rename(previous / "phishing-url-detector-0.4.2.onnx")
    from phishing_url_detector.releases import write_sha256sums

    write_sha256sums(previous, [n for n in release_asset_names("0.4.2") if n != "SHA256SUMS"])
    result = R.build(project, tmp_path / "new", previous_dir=previous, tags=["model-v0.4.2"])
    assert (result.version, result.bump) == ("1.0.0", "major")


@pytest.mark.slow
def test_a_tampered_previous_release_is_refused(project, tmp_path):
    previous, tags = released(project, tmp_path / "v1")
    (previous / "metrics.json").write_text("{}")
    with pytest.raises(ReleaseError, match="not a valid release model-v1.0.0"):
        R.build(project, tmp_path / "v2", previous_dir=previous, tags=tags)


def test_an_existing_tag_requires_the_previous_release(project, tmp_path):
    git(project, "tag", "model-v1.0.0")
    with pytest.raises(ReleaseError, match="gh release download model-v1.0.0"):
        R.build(project, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- refusals: the inputs must be the committed pipeline's outputs ------------------------------
def test_refuses_an_output_that_dvc_lock_does_not_record(project, tmp_path):
    metrics = project / "metrics.json"
    metrics.write_text(metrics.read_text().replace("0.", "0.0", 1))
    with pytest.raises(ReleaseError, match="metrics.json differs from what dvc.lock records"):
        R.build(project, tmp_path / "out", allow_dirty=True)


@pytest.mark.slow  # allowed, it builds the release
def test_refuses_uncommitted_inputs_unless_allowed(project, tmp_path):
    template = project / mc.TEMPLATE
    template.write_text(template.read_text() + "\nA late edit.\n")
    rerender(project)  # consistent with dvc.lock, but not committed
    with pytest.raises(ReleaseError, match="differ from HEAD.*dvc.lock"):
        R.build(project, tmp_path / "out")
    result = R.build(project, tmp_path / "out", allow_dirty=True)
    manifest = json.loads((result.directory / "manifest.json").read_text())
    assert manifest["git_commit"].endswith("-dirty")


def test_refuses_an_uncommitted_client(project, tmp_path):
    """The wheel is built from ./client: it must be the commit's client too."""
    version = project / "client/src/phishing_url_detector/_version.py"
    version.write_text(version.read_text() + "# local edit\n")
    (project / "client/src/phishing_url_detector/extra.py").write_text("X = 1\n")
    with pytest.raises(ReleaseError, match="differ from HEAD.*client/src/phishing_url_detector/_version.py"
                                           ".*client/src/phishing_url_detector/extra.py"):
        R.build(project, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_a_stale_card(project, tmp_path):
    card = project / mc.CARD
    card.write_text(card.read_text().replace("## Limitations", "## Limitations\n\nEdited by hand."))
    relock(project)
    commit(project, "hand edit")
    with pytest.raises(ReleaseError, match="MODEL_CARD.md is stale"):
        R.build(project, tmp_path / "out")


@pytest.mark.slow
def test_cli_reports_errors_and_writes_github_outputs(project, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(project)
    gh_out = tmp_path / "github_output"
    assert cli.main(["release", "--out", str(tmp_path / "out"), "--github-output", str(gh_out)]) == 0
    values = dict(line.split("=", 1) for line in gh_out.read_text().splitlines())
    assert values["release"] == "true" and values["tag"] == "model-v1.0.0" and values["version"] == "1.0.0"
    assert values["onnx"].endswith("release/phishing-url-detector-1.0.0.onnx")
    git(project, "tag", "model-v1.0.0")
    capsys.readouterr()
    assert cli.main(["release", "--latest-tag"]) == 0
    assert capsys.readouterr().out.strip() == "model-v1.0.0"
    assert cli.main(["release", "--out", str(tmp_path / "again")]) == 1
    assert "release: error:" in capsys.readouterr().err
    gh_out.write_text("")
    assert cli.main(["release", "--out", str(tmp_path / "v2"), "--previous-dir", str(tmp_path / "out" / "release"),
                     "--github-output", str(gh_out)]) == 0
    assert "release=false" in gh_out.read_text()


# -- the product side: the loader on a built release ---------------------------------------------
@pytest.mark.slow
def test_loader_scores_the_release_and_refuses_a_tampered_copy(project, tmp_path, capsys):
    result = R.build(project, tmp_path / "out")
    onnx = result.directory / "phishing-url-detector-1.0.0.onnx"
    assert cli.main(["score", "--allow-unverified", "--model", str(onnx), *URLS]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(re.match(r"(phishing|legitimate)\s+\d\.\d{4}\s+http", ln) for ln in lines)

    tampered = tmp_path / "tampered"
    shutil.copytree(result.directory, tampered)
    data = bytearray((tampered / onnx.name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tampered / onnx.name).write_bytes(bytes(data))
    assert cli.main(["score", "--model", str(tampered / onnx.name), *URLS]) == 2
    err = capsys.readouterr().err
    assert "does not match the SHA256SUMS entry" in err


@pytest.mark.slow
def test_the_cards_loading_example_runs_in_the_release_directory(project, tmp_path, monkeypatch):
    """As published: the publish job's provenance bundles beside the assets (here from the test CA,
    whose trusted root the client is given), and the repository the reader names in the code."""
    result = R.build(project, tmp_path / "out")
    sigstore = TestSigstore()
    for name in ("phishing-url-detector-1.0.0.onnx", "SHA256SUMS"):
        digest = hashlib.sha256((result.directory / name).read_bytes()).hexdigest()
        (result.directory / f"{name}.sigstore.json").write_text(sigstore.attest({name: digest}, repo="acme/models"))
    monkeypatch.delenv("PHISHING_MODEL_REPO", raising=False)
    monkeypatch.setenv("PHISHING_MODEL_TRUSTED_ROOT", str(sigstore.write_trusted_root(tmp_path / "root.json")))
    card = (result.directory / "MODEL_CARD.md").read_text()
    client, raw = re.findall(r"```python\n(.*?)```", card, re.DOTALL)
    assert 'repo="OWNER/NAME"' in client  # the reader names the repository; here the test's
    client = client.replace("OWNER/NAME", "acme/models")
    cwd = os.getcwd()
    os.chdir(result.directory)
    try:
        with_client: dict = {}
        exec(compile(client, "MODEL_CARD.md", "exec"), with_client)  # noqa: S102 - our own card
        without: dict = {}
        exec(compile(raw, "MODEL_CARD.md", "exec"), without)  # noqa: S102
    finally:
        os.chdir(cwd)
    assert [s.verdict for s in with_client["scores"]] == ["phishing" if l else "legitimate" for l in without["labels"]]
    assert without["labels"].shape == (2,) and without["proba"].shape == (2, 2)


@pytest.mark.slow
def test_the_wheel_check_installs_only_hash_locked_files(project, tmp_path):
    """The fresh venv of the wheel check gets the client's dependencies from requirements/client.lock by
    sha256: one changed hash and pip refuses, so the release is refused before anything is attached."""
    lock = project / CLIENT_LOCK
    text = lock.read_text()
    digest = re.search(r"numpy==[^\n]*\n(?:\s+--hash=sha256:[0-9a-f]{64}[^\n]*\n)+", text).group(0)
    lock.write_text(text.replace(digest, re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, digest)))
    onnx, wheel_dir = tmp_path / "m.onnx", tmp_path / "wheel"
    wheel_dir.mkdir()
    shutil.copyfile(project / "dist" / "phishing-url-detector.onnx", onnx)
    wheel = R.build_client_wheel(project, wheel_dir, 1_700_000_000)
    with pytest.raises(ReleaseError, match="require-hashes -r client.lock"):
        W.install_alone(wheel, tmp_path / "venv", lock)


def test_a_release_without_the_client_lock_is_refused(project, tmp_path):
    (project / CLIENT_LOCK).unlink()
    commit(project, "no client lock")
    with pytest.raises(ReleaseError, match=r"requirements/client.lock is missing"):
        R.build(project, tmp_path / "out")
