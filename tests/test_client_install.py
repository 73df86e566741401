"""The client on its own: `pip install ./client` into a fresh venv with nothing else in it, then
score URLs with a model exported by this repository's pipeline.

This is what a product team gets. The venv has no pip, no system site-packages and not this
repository on its path; the model is a small real ensemble exported with the product contract
(the ``small_onnx`` fixture), written with the manifest, SHA256SUMS and provenance bundle (made by
the test Sigstore of tests/sigstore_testca.py) a release carries, so the client verifies it before
loading it. The client must pull in numpy, onnxruntime and sigstore (and their own dependencies)
only, and neither ``import phishing_url_detector`` nor scoring may load any of the training stack;
the bare import loads neither sigstore nor onnxruntime.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from sigstore_testca import TestSigstore

from phishing_url_detector import contract as C
from phishing_url_detector.releases import (
    MANIFEST_FILE,
    SUMS_FILE,
    bundle_asset_name,
    write_sha256sums,
)

MODEL_REPO = "acme/models"

pytestmark = pytest.mark.slow

URLS = ["https://www.wikipedia.org/", "http://paypal.com.secure-login.example.tk/webscr?cmd=_login",
        "&amp;http://example.com/a?b=1&amp;c=2"]
CLIENT_DIST = "phishing-url-detector"
REQUIRED = {CLIENT_DIST, "numpy", "onnxruntime", "sigstore"}
# onnxruntime's own dependencies (they vary a little between its releases).
ONNXRUNTIME_DEPS = {"protobuf", "flatbuffers", "packaging", "sympy", "mpmath", "coloredlogs", "humanfriendly"}
# sigstore 4.x's (the verifier of the provenance bundles): its models, TUF, HTTP, pydantic and crypto.
SIGSTORE_DEPS = {"sigstore-models", "sigstore-rekor-types", "tuf", "securesystemslib", "id", "pyjwt", "requests",
                 "urllib3", "certifi", "charset-normalizer", "idna", "pydantic", "pydantic-core", "annotated-types",
                 "typing-extensions", "typing-inspection", "email-validator", "dnspython", "cryptography", "cffi",
                 "pycparser", "rfc3161-client", "rfc8785", "rich", "markdown-it-py", "mdurl", "pygments",
                 "platformdirs"}
ALLOWED = REQUIRED | ONNXRUNTIME_DEPS | SIGSTORE_DEPS
TRAINING_STACK = {"sklearn", "scikit-learn", "pandas", "dvc", "matplotlib", "scipy", "skl2onnx", "onnx", "joblib",
                  "statsmodels", "pyarrow", "yaml", "pipeline", "tldextract"}

PROBE = """
import json, sys
before = set(sys.modules)
import phishing_url_detector
after_import = sorted(set(sys.modules) - before)
from phishing_url_detector import Detector
detector = Detector.from_path(sys.argv[1])
urls = json.loads(sys.argv[2])
scores = detector.score(urls)
proba = detector.predict_proba(urls)
print(json.dumps({"file": phishing_url_detector.__file__, "version": phishing_url_detector.__version__,
                  "after_import": after_import, "modules": sorted(sys.modules),
                  "scores": [[s.verdict, s.label, s.p_phishing, s.error] for s in scores],
                  "proba": proba.tolist(), "verified": detector.model.verified}))
"""


def bindir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def run(*args, cwd: Path, env: dict | None = None, timeout: int = 300) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_env(model_dir: Path | None = None) -> dict:
    """No PYTHONPATH (or any PYTHON* setting) leaking this repository into the venv; with ``model_dir``,
    the provenance configuration: the repository and the test Sigstore's trusted root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PHISHING_MODEL_"))}
    env = {**env, "PYTHONNOUSERSITE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if model_dir is not None:
        env.update(PHISHING_MODEL_REPO=MODEL_REPO, PHISHING_MODEL_TRUSTED_ROOT=str(model_dir / "trusted_root.json"))
    return env


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> tuple[Path, list[str]]:
    """A fresh venv (no pip) holding `pip install ./client` and what it pulls in; and its `pip list`.

    The sources are copied first: an in-tree build would write client/build/ in the working tree.
    The versions of numpy and onnxruntime are the project's pins (constraints.txt), so the pip
    cache serves them."""
    tmp = tmp_path_factory.mktemp("client-install")
    source = tmp / "client"
    shutil.copytree(REPO / "client", source,
                    ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.pyc"))
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    pip = [sys.executable, "-m", "pip", "--python", bindir(venv) / "python"]
    run(*pip, "install", "--quiet", "-c", REPO / "constraints.txt", source, cwd=tmp, env=clean_env())
    frozen = run(*pip, "list", "--format=freeze", cwd=tmp, env=clean_env()).split()
    return venv, sorted(frozen, key=str.lower)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_onnx) -> Path:
    """The exported model with the sidecars a release carries (manifest.json, SHA256SUMS and their
    provenance bundles), and the trusted root of the test Sigstore that signed them."""
    directory = tmp_path_factory.mktemp("model")
    onnx = directory / C.MODEL_FILE
    onnx.write_bytes(small_onnx)
    manifest = {"model": {"file": onnx.name, "sha256": hashlib.sha256(small_onnx).hexdigest(),
                          "size_bytes": len(small_onnx)},
                "contract": C.CONTRACT, "contract_digest": C.contract_digest(), "contract_major": C.CONTRACT_MAJOR,
                "threshold": 0.5, "target_fpr": 0.01}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    write_sha256sums(directory, [onnx.name, MANIFEST_FILE])
    sigstore = TestSigstore()
    for path in (onnx, directory / SUMS_FILE):
        bundle = sigstore.attest({path.name: hashlib.sha256(path.read_bytes()).hexdigest()}, repo=MODEL_REPO)
        (directory / bundle_asset_name(path.name)).write_text(bundle)
    sigstore.write_trusted_root(directory / "trusted_root.json")
    return directory


def test_pip_list_of_the_fresh_venv_is_the_client_numpy_and_onnxruntime(client_venv):
    _, frozen = client_venv
    names = {line.split("==")[0].lower().replace("_", "-") for line in frozen}
    assert REQUIRED <= names <= ALLOWED, f"pip list of the fresh venv: {frozen}"
    assert not names & TRAINING_STACK, f"pip list of the fresh venv: {frozen}"


def test_import_and_score_load_nothing_of_the_training_stack(client_venv, model_dir, small_model):
    venv, _ = client_venv
    onnx = model_dir / C.MODEL_FILE
    out = run(bindir(venv) / "python", "-c", PROBE, onnx, json.dumps(URLS), cwd=model_dir, env=clean_env(model_dir))
    probe = json.loads(out)
    site = Path(probe["file"]).resolve()
    assert site.is_relative_to(venv.resolve()), f"imported from {site}, not the venv"
    assert not site.is_relative_to(REPO)

    top = lambda modules: {m.split(".")[0] for m in modules}
    assert not top(probe["modules"]) & TRAINING_STACK, sorted(top(probe["modules"]) & TRAINING_STACK)
    # The bare import is the contract only: numpy and onnxruntime wait until something scores.
    assert not top(probe["after_import"]) & {"numpy", "onnxruntime", "sigstore", *TRAINING_STACK}, \
        probe["after_import"]
    assert {"numpy", "onnxruntime", "sigstore"} <= top(probe["modules"])  # provenance was verified

    assert probe["verified"] is True
    assert [s[3] for s in probe["scores"]] == [None] * len(URLS)
    assert {s[0] for s in probe["scores"]} <= {"phishing", "legitimate"}
    # The installed client scores as the scikit-learn model it was exported from (parity, 1e-4).
    expected = small_model.predict_proba([C.normalise_url(u) for u in URLS])[:, 1]
    np.testing.assert_allclose(np.array(probe["proba"])[:, 1], expected, atol=1e-4)
    np.testing.assert_allclose([s[2] for s in probe["scores"]], expected, atol=1e-4)


def test_console_script_verifies_and_scores(client_venv, model_dir):
    venv, _ = client_venv
    onnx = model_dir / C.MODEL_FILE
    out = run(bindir(venv) / "phishing-url-detector", "score", "--model", onnx, *URLS, cwd=model_dir,
              env=clean_env(model_dir))
    lines = out.splitlines()
    assert len(lines) == len(URLS)
    assert all(re.fullmatch(r"(phishing|legitimate)\s+[01]\.\d{4}\s+\S+", line) for line in lines), out
    verify = run(bindir(venv) / "phishing-url-detector", "verify", onnx, cwd=model_dir, env=clean_env(model_dir))
    assert f"sha256:    {hashlib.sha256(onnx.read_bytes()).hexdigest()}" in verify


def test_batch_scoring_without_the_parquet_extra(client_venv, model_dir, tmp_path):
    """The bare client streams a file to CSV on a process pool; Parquet asks for the [parquet] extra."""
    venv, _ = client_venv
    onnx = model_dir / C.MODEL_FILE
    src = tmp_path / "urls.txt"
    src.write_text("\n".join(URLS) + "\n")
    out = run(bindir(venv) / "phishing-url-detector", "score", "--model", onnx, "--file", src, "--output",
              tmp_path / "out.csv", "--workers", "2", cwd=model_dir, env=clean_env(model_dir))
    assert out.startswith(f"scored {len(URLS)} rows (0 errors)")
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == "row,url,score,verdict,model_version,error"
    done = subprocess.run([str(bindir(venv) / "phishing-url-detector"), "score", "--model", str(onnx), "--file",
                           str(src), "--output", str(tmp_path / "out.parquet")], cwd=model_dir,
                          env=clean_env(model_dir), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "pip install 'phishing-url-detector[parquet]'" in done.stderr
    assert not list(tmp_path.glob("out.parquet*"))
