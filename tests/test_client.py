"""The product client (``phishing_url_detector``) against a local stand-in for the GitHub Releases API.

The fake server speaks the parts of the real protocol the loader relies on:
release JSON by tag and ``latest``, asset API URLs that answer 302 to a
*different host* (``localhost`` instead of ``127.0.0.1``) which, like S3,
rejects requests carrying an Authorization header, 404s, rate-limit 403s and
5xx. A tiny hand-built ONNX model with the exact product I/O contract stands
in for the trained ensemble, so these tests do not depend on the pipeline.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import onnx
import pytest
from onnx import TensorProto, helper
from sigstore_testca import TestSigstore

import phishing_url_detector
from phishing_url_detector import cli
from phishing_url_detector import contract as C
from phishing_url_detector.detector import Detector, prepare_url
from phishing_url_detector.errors import (
    FetchError,
    LoaderError,
    UnscorableUrlError,
    VerificationError,
)
from phishing_url_detector.fetch import REPOSITORY_RECORD, fetch
from phishing_url_detector.releases import (
    CARD_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    SUMS_FILE,
    bundle_asset_name,
    model_asset_name,
    parse_sha256sums,
    provenance_asset_names,
    release_asset_names,
    verify_local_model,
    verify_release_dir,
    write_sha256sums,
)

REPO = "acme/models"
TOKEN = "ghp_test_token_123"
THRESHOLD = 0.4321
SIGSTORE = TestSigstore()  # the test CA / CT log / Rekor that "built" every release below


# -- a real ONNX model with the product contract -------------------------------------------
def build_model(input_name: str = C.INPUT_NAME) -> bytes:
    """P(phishing) = 0.875 if the URL contains 'login' else 0.125; label = that > 0.5."""
    match = helper.make_node("RegexFullMatch", [input_name], ["match"], pattern="(?s).*login.*")
    nodes = [
        match,
        helper.make_node("Cast", ["match"], ["match_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["match"], ["match_i"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["match_i", "flat"], [C.LABEL_OUTPUT]),
        helper.make_node("Mul", ["match_f", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], ["p1"]),
        helper.make_node("Sub", ["one", "p1"], ["p0"]),
        helper.make_node("Concat", ["p0", "p1"], [C.PROBA_OUTPUT], axis=1),
    ]
    inits = [
        helper.make_tensor("flat", TensorProto.INT64, [1], [-1]),
        helper.make_tensor("scale", TensorProto.FLOAT, [], [0.75]),
        helper.make_tensor("offset", TensorProto.FLOAT, [], [0.125]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
    ]
    graph = helper.make_graph(
        nodes, C.GRAPH_NAME,
        [helper.make_tensor_value_info(input_name, TensorProto.STRING, ["N", 1])],
        [helper.make_tensor_value_info(C.LABEL_OUTPUT, TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info(C.PROBA_OUTPUT, TensorProto.FLOAT, ["N", 2])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.checker.check_model(model)
    return model.SerializeToString()


MODEL_BYTES = build_model()


def write_manifest(directory: Path, onnx_file: str, *, version: str | None, contract_major=1,
                   contract=None, contract_digest=None, sha256=None) -> None:
    data = (directory / onnx_file).read_bytes()
    contract = contract if contract is not None else C.CONTRACT
    manifest = {
        "model": {"file": onnx_file, "sha256": sha256 or hashlib.sha256(data).hexdigest(),
                  "size_bytes": len(data)},
        "contract": contract,
        "contract_digest": contract_digest or C.contract_digest(contract),
        "contract_major": contract_major,
        "threshold": THRESHOLD,
        "target_fpr": 0.01,
    }
    if version is not None:
        manifest["version"] = version
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def attest(directory: Path, name: str, **policy) -> Path:
    """``<name>.sigstore.json`` beside ``name``: a test-CA bundle as release.yml on main of REPO would make it
    (``repo=``, ``workflow=``, ``ref=`` sign it as someone else)."""
    digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    bundle = directory / bundle_asset_name(name)
    bundle.write_text(SIGSTORE.attest({name: digest}, **{"repo": REPO, **policy}), encoding="utf-8")
    return bundle


def make_release(root: Path, version: str, model_bytes: bytes = MODEL_BYTES, *, attested: bool = True,
                 **manifest_kw) -> Path:
    """A release directory exactly as the release workflow publishes it (with its provenance bundles
    unless ``attested`` is False)."""
    directory = root / f"model-v{version}"
    directory.mkdir(parents=True)
    (directory / model_asset_name(version)).write_bytes(model_bytes)
    write_manifest(directory, model_asset_name(version), version=version, **manifest_kw)
    (directory / CARD_FILE).write_text(f"# Model card {version}\n", encoding="utf-8")
    (directory / METRICS_FILE).write_text('{"roc_auc": 0.99}\n', encoding="utf-8")
    write_sha256sums(directory, release_asset_names(version)[:-1])
    if attested:
        attest(directory, model_asset_name(version))
        attest(directory, SUMS_FILE)
    return directory


# -- fake GitHub -------------------------------------------------------------------------------
@dataclass
class FakeGitHub:
    port: int = 0
    releases: dict = field(default_factory=dict)   # (repo, tag) -> release dir
    latest: dict = field(default_factory=dict)     # repo -> tag
    omit: set = field(default_factory=set)         # (tag, name): not attached to the release
    tamper: set = field(default_factory=set)       # (tag, name): storage serves altered bytes
    short_body: set = field(default_factory=set)   # (tag, name): Content-Length > bytes sent
    size_lie: set = field(default_factory=set)     # (tag, name): release JSON size is wrong
    fail_5xx: dict = field(default_factory=dict)   # path prefix -> remaining 503 answers
    rate_limited: set = field(default_factory=set)  # repos whose API budget is exhausted
    log: list = field(default_factory=list)        # (host, path, lower-cased headers)
    assets: list = field(default_factory=list)     # id -> (repo, tag, name)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage(self) -> str:  # another host name: the token must not travel there
        return f"http://localhost:{self.port}"

    def reset(self) -> None:
        for attr in ("releases", "latest", "fail_5xx"):
            getattr(self, attr).clear()
        for attr in ("omit", "tamper", "short_body", "size_lie", "rate_limited"):
            getattr(self, attr).clear()
        self.log.clear()
        self.assets.clear()

    def add(self, repo: str, directory: Path, *, latest: bool = False) -> str:
        tag = directory.name
        self.releases[(repo, tag)] = directory
        if latest:
            self.latest[repo] = tag
        return tag

    def asset_id(self, repo: str, tag: str, name: str) -> int:
        key = (repo, tag, name)
        if key not in self.assets:
            self.assets.append(key)
        return self.assets.index(key)

    def body(self, repo: str, tag: str, name: str) -> bytes:
        data = (self.releases[(repo, tag)] / name).read_bytes()
        return data[:-1] + bytes([data[-1] ^ 1]) if (tag, name) in self.tamper else data

    def release_json(self, repo: str, tag: str) -> dict:
        directory = self.releases[(repo, tag)]
        assets = []
        for path in sorted(directory.iterdir()):
            if (tag, path.name) in self.omit:
                continue
            ident = self.asset_id(repo, tag, path.name)
            size = path.stat().st_size + (7 if (tag, path.name) in self.size_lie else 0)
            assets.append({"name": path.name, "id": ident, "size": size,
                           "url": f"{self.api}/repos/{repo}/releases/assets/{ident}",
                           "browser_download_url": f"{self.storage}/download/{tag}/{path.name}"})
        return {"tag_name": tag, "name": tag, "draft": False, "prerelease": False, "assets": assets}

    def requests_to(self, host: str) -> list:
        return [entry for entry in self.log if entry[0].startswith(host)]


def _handler(state: FakeGitHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def send(self, status: int, body: bytes, content_type="application/json", headers=(),
                 length: int | None = None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            for key, value in headers:
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, status: int, obj, headers=()):
            self.send(status, json.dumps(obj).encode(), headers=headers)

        def do_GET(self):
            path = urlsplit(self.path).path
            state.log.append((self.headers.get("Host", ""), path,
                              {k.lower(): v for k, v in self.headers.items()}))
            for prefix, remaining in state.fail_5xx.items():
                if path.startswith(prefix) and remaining > 0:
                    state.fail_5xx[prefix] = remaining - 1
                    return self.send_json(503, {"message": "Service Unavailable"})
            if match := re.fullmatch(r"/repos/([^/]+/[^/]+)/releases/(latest|tags/(.+))", path):
                repo, tag = match.group(1), match.group(3)
                if repo in state.rate_limited:
                    reset = str(int(time.time()) + 600)
                    return self.send_json(403, {"message": "API rate limit exceeded"},
                                          [("X-RateLimit-Limit", "60"), ("X-RateLimit-Remaining", "0"),
                                           ("X-RateLimit-Reset", reset)])
                tag = tag if tag is not None else state.latest.get(repo)
                if (repo, tag) not in state.releases:
                    return self.send_json(404, {"message": "Not Found"})
                return self.send_json(200, state.release_json(repo, tag))
            if match := re.fullmatch(r"/repos/([^/]+/[^/]+)/releases/assets/([0-9]+)", path):
                if self.headers.get("Accept") != "application/octet-stream":
                    return self.send_json(200, {"id": int(match.group(2))})
                return self.send(302, b"", "text/plain",
                                 [("Location", f"{state.storage}/storage/{match.group(2)}?sig=abc")])
            if match := re.fullmatch(r"/storage/([0-9]+)", path):
                if "Authorization" in self.headers:  # what S3 does with a forwarded token
                    return self.send(400, b"Only one auth mechanism allowed", "text/plain")
                repo, tag, name = state.assets[int(match.group(1))]
                data = state.body(repo, tag, name)
                if (tag, name) in state.short_body:
                    return self.send(200, data[: len(data) // 2], "application/octet-stream",
                                     length=len(data))
                return self.send(200, data, "application/octet-stream")
            return self.send_json(404, {"message": "Not Found"})

    return Handler


@pytest.fixture(scope="module")
def _server():
    state = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def github(_server, monkeypatch):
    _server.reset()
    monkeypatch.setenv("GITHUB_API_URL", _server.api)
    return _server


@pytest.fixture(scope="session")
def trusted_root(tmp_path_factory) -> Path:
    """The test Sigstore's trusted_root.json."""
    return SIGSTORE.write_trusted_root(tmp_path_factory.mktemp("sigstore") / "trusted_root.json")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path, trusted_root):
    for name in ("GITHUB_TOKEN", "GITHUB_API_URL", "PHISHING_MODEL_REPO", "PHISHING_MODEL_CACHE",
                 "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("PHISHING_MODEL_TRUSTED_ROOT", str(trusted_root))  # offline: the test CA only


@pytest.fixture
def release(tmp_path, github):
    """A good release model-v1.2.0, also the repository's latest."""
    github.add(REPO, make_release(tmp_path / "releases", "1.2.0"), latest=True)
    return "model-v1.2.0"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def digest_dirs(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if re.fullmatch(r"[0-9a-f]{64}", p.name)] if cache.exists() else []


# -- happy path ----------------------------------------------------------------------------------
def test_the_pipeline_cli_serves_the_same_client_commands():
    from pipeline import cli as pipeline_cli

    parser = pipeline_cli.build_parser()
    for command, handler in (("fetch", cli.cmd_fetch), ("score", cli.cmd_score), ("verify", cli.cmd_verify)):
        args = parser.parse_args(_minimal_args(command))
        assert args.func is handler


def _minimal_args(command: str) -> list[str]:
    return {"fetch": ["fetch", "--repo", REPO], "score": ["score", "--model", "m.onnx", "http://x/"],
            "verify": ["verify", "somewhere"]}[command]


def test_fetch_then_score_end_to_end(capsys, tmp_path, github, release, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    cache = tmp_path / "cache"
    code, out, err = run(capsys, "fetch", "--repo", REPO, "--tag", release, "--cache-dir", str(cache))
    assert code == 0, err
    sha = hashlib.sha256(MODEL_BYTES).hexdigest()
    directory = cache / sha / "1.2.0"
    assert f"directory: {directory}" in out
    assert "version:   1.2.0" in out and f"threshold: {THRESHOLD:.4f}" in out and "downloaded" in out
    assert sorted(p.name for p in directory.iterdir()) == sorted(release_asset_names("1.2.0")
                                                                 + provenance_asset_names("1.2.0")
                                                                 + [REPOSITORY_RECORD])
    assert (directory / REPOSITORY_RECORD).read_text() == f"{REPO}\n"  # which repository it came from
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no staging left

    api = github.requests_to("127.0.0.1")
    storage = github.requests_to("localhost")
    assert len(storage) == 7  # five assets and two provenance bundles
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for _, _, h in api)
    assert all(h.get("x-github-api-version") == "2022-11-28" for _, _, h in api)
    assert all("authorization" not in h for _, _, h in storage)
    assert all(h.get("accept") == "application/octet-stream"
               for _, p, h in api if "/assets/" in p)

    code, out, err = run(capsys, "score", "--model", release, "--repo", REPO, "--cache-dir", str(cache),
                         "https://example.com/login?x=1", " http://example.org/&amp;home ")
    assert code == 0, err
    assert out.splitlines() == [
        "phishing    0.8750  https://example.com/login?x=1",
        "legitimate  0.1250   http://example.org/&amp;home ",
    ]


def test_latest_with_repo_from_environment_and_json(capsys, tmp_path, github, release, monkeypatch):
    monkeypatch.setenv("PHISHING_MODEL_REPO", REPO)
    code, out, err = run(capsys, "score", "--model", "latest", "--cache-dir", str(tmp_path / "c"),
                         "--json", "http://login.example/", "http://example.com/")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["model"]["version"] == "1.2.0" and doc["model"]["source"] == f"{REPO}@{release}"
    assert doc["model"]["threshold"] == THRESHOLD and doc["model"]["verified"] is True
    assert [(r["verdict"], r["label"], r["p_phishing"]) for r in doc["results"]] == [
        ("phishing", 1, 0.875), ("legitimate", 0, 0.125)]
    assert any(p.endswith("/releases/latest") for _, p, _ in github.log)


def test_default_cache_dir_follows_xdg(tmp_path, github, release):
    model = fetch(REPO, release)
    assert model.onnx_path.is_relative_to(tmp_path / "xdg-cache" / C.MODEL_NAME)


def test_second_fetch_reuses_and_reverifies_cache(tmp_path, github, release):
    cache = tmp_path / "cache"
    first = fetch(REPO, release, cache)
    assert not first.from_cache
    github.log.clear()
    second = fetch(REPO, release, cache)
    assert second.from_cache and second.onnx_path == first.onnx_path
    # only the release JSON and SHA256SUMS travel; the model comes from the cache
    downloaded = [github.assets[int(p.rsplit("/", 1)[1])][2] for _, p, _ in github.requests_to("localhost")]
    assert downloaded == [SUMS_FILE]

    first.onnx_path.write_bytes(MODEL_BYTES + b"rot")  # the cache is corrupted on disk
    warnings: list[str] = []
    healed = fetch(REPO, release, cache, warn=warnings.append)
    assert not healed.from_cache and healed.onnx_path.read_bytes() == MODEL_BYTES
    assert "failed verification" in warnings[0] and first.onnx_path.name in warnings[0]


def test_patch_release_with_same_model_bytes_gets_its_own_cache_entry(tmp_path, github, release):
    github.add(REPO, make_release(tmp_path / "releases", "1.2.1"))
    cache = tmp_path / "cache"
    a, b = fetch(REPO, release, cache), fetch(REPO, "model-v1.2.1", cache)
    assert a.onnx_path.parent.parent == b.onnx_path.parent.parent  # same digest directory
    assert (a.version, b.version) == ("1.2.0", "1.2.1")


def test_transient_5xx_is_retried(tmp_path, github, release):
    github.fail_5xx[f"/repos/{REPO}/releases/tags/"] = 2
    github.fail_5xx["/storage/"] = 1
    assert fetch(REPO, release, tmp_path / "c", retries=2, backoff=0).version == "1.2.0"


def test_persistent_5xx_gives_up(tmp_path, github, release):
    github.fail_5xx[f"/repos/{REPO}/releases/tags/"] = 99
    with pytest.raises(FetchError, match=r"HTTP 503 .*gave up after 2 attempts"):
        fetch(REPO, release, tmp_path / "c", retries=1, backoff=0)


# -- refusals --------------------------------------------------------------------------------------
def test_unknown_tag(capsys, tmp_path, github, release):
    code, _, err = run(capsys, "fetch", "--repo", REPO, "--tag", "model-v9.9.9", "--cache-dir",
                       str(tmp_path))
    assert code == 1
    assert "release tag model-v9.9.9 not found in acme/models" in err


def test_rate_limited(capsys, tmp_path, github):
    github.rate_limited.add("acme/limited")
    code, _, err = run(capsys, "fetch", "--repo", "acme/limited", "--tag", "latest", "--cache-dir",
                       str(tmp_path))
    assert code == 1
    assert "rate limit exceeded" in err and "GITHUB_TOKEN" in err
    assert re.search(r"resets at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in about 10 min\)", err)


@pytest.mark.parametrize("fault", ["short_body", "size_lie"])
def test_truncated_download_is_refused(tmp_path, github, release, fault):
    getattr(github, fault).add((release, model_asset_name("1.2.0")))
    with pytest.raises(FetchError, match="truncated") as info:
        fetch(REPO, release, tmp_path / "c", retries=1, backoff=0)
    assert model_asset_name("1.2.0") in str(info.value)
    assert digest_dirs(tmp_path / "c") == []


@pytest.mark.parametrize("name", [model_asset_name("1.2.0"), MANIFEST_FILE, CARD_FILE, METRICS_FILE])
def test_tampered_asset_is_refused(capsys, tmp_path, github, release, name):
    github.tamper.add((release, name))
    code, _, err = run(capsys, "fetch", "--repo", REPO, "--tag", release, "--cache-dir", str(tmp_path / "c"))
    assert code == 2
    listed = parse_sha256sums((github.releases[(REPO, release)] / SUMS_FILE).read_text())[name]
    tampered = hashlib.sha256(github.body(REPO, release, name)).hexdigest()
    assert f"{name}: sha256 {tampered} does not match the SHA256SUMS entry {listed}" in err
    assert digest_dirs(tmp_path / "c") == []


def test_missing_asset_is_refused(capsys, tmp_path, github, release):
    github.omit.add((release, METRICS_FILE))
    code, _, err = run(capsys, "score", "--model", release, "--repo", REPO, "--cache-dir", str(tmp_path),
                       "http://x/")
    assert code == 2
    assert "missing asset(s): metrics.json" in err
    assert not github.requests_to("localhost")  # refused before downloading anything


def test_other_contract_major_is_refused(capsys, tmp_path, github):
    tag = github.add(REPO, make_release(tmp_path / "r", "2.0.0", contract_major=2))
    code, _, err = run(capsys, "fetch", "--repo", REPO, "--tag", tag, "--cache-dir", str(tmp_path / "c"))
    assert code == 2
    assert "contract major is 2 but this loader was built for contract major 1" in err


def test_contract_digest_mismatch_is_refused(tmp_path, github):
    tag = github.add(REPO, make_release(tmp_path / "r", "1.3.0", contract_digest="0" * 64))
    with pytest.raises(VerificationError, match=f"contract_digest {'0' * 64} does not match the digest "
                                                f"of its contract {C.contract_digest()}"):
        fetch(REPO, tag, tmp_path / "c")


def test_manifest_model_digest_mismatch_is_refused(tmp_path, github):
    tag = github.add(REPO, make_release(tmp_path / "r", "1.4.0", sha256="f" * 64))
    actual = hashlib.sha256(MODEL_BYTES).hexdigest()
    with pytest.raises(VerificationError, match=f"sha256 {actual} does not match manifest.json "
                                                f"model.sha256 {'f' * 64}"):
        fetch(REPO, tag, tmp_path / "c")


def test_graph_that_breaks_the_contract_is_refused(capsys, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(build_model(input_name="text"))
    code, _, err = run(capsys, "score", "--allow-unverified", "--model", str(model), "http://x/")
    assert code == 2 and "graph does not match the contract" in err and "'url'" in err


def test_bad_arguments(capsys, tmp_path, github):
    code, _, err = run(capsys, "score", "--model", "latest", "http://x/")
    assert code == 1 and "PHISHING_MODEL_REPO" in err
    code, _, err = run(capsys, "fetch", "--repo", "not-a-repo", "--cache-dir", str(tmp_path))
    assert code == 1 and "OWNER/NAME" in err
    code, _, err = run(capsys, "score", "--model", str(tmp_path / "nope.onnx"), "http://x/")
    assert code == 1 and "not found" in err


def test_help_texts(capsys):
    for command, needle in (("fetch", "model-vMAJOR.MINOR.PATCH"), ("score", "PATH_OR_TAG")):
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        out = capsys.readouterr().out
        assert info.value.code == 0 and needle in out and "GITHUB_TOKEN" in out and "exit codes" in out


def test_the_package_exports_the_names_it_imports_on_first_use():
    """``__all__`` is written out for readers and type checkers; it must stay the lazily imported names."""
    lazy = {name for name in phishing_url_detector._LAZY if not name.startswith("_")}
    assert set(phishing_url_detector.__all__) == {"CONTRACT_MAJOR", "normalise_url"} | lazy
    assert len(phishing_url_detector.__all__) == len(set(phishing_url_detector.__all__))
    assert phishing_url_detector.Detector is Detector and phishing_url_detector.__version__


# -- local path mode ---------------------------------------------------------------------------------
@pytest.fixture
def dist(tmp_path, monkeypatch) -> Path:
    """A ``dist/`` as the export stage writes it (no version, unversioned file name), with SHA256SUMS over
    the model and manifest and the provenance bundles of the model and SHA256SUMS from REPO's release
    workflow (PHISHING_MODEL_REPO names REPO)."""
    directory = tmp_path / "dist"
    directory.mkdir()
    (directory / C.MODEL_FILE).write_bytes(MODEL_BYTES)
    write_manifest(directory, C.MODEL_FILE, version=None)
    write_sha256sums(directory, [C.MODEL_FILE, MANIFEST_FILE])
    attest(directory, C.MODEL_FILE)
    attest(directory, SUMS_FILE)
    monkeypatch.setenv("PHISHING_MODEL_REPO", REPO)
    return directory


def test_local_model_with_manifest_is_verified_and_scored(capsys, dist):
    code, out, err = run(capsys, "score", "--model", str(dist / C.MODEL_FILE), "http://a/login")
    assert code == 0 and err == ""
    assert out == "phishing    0.8750  http://a/login\n"


def test_local_model_with_sums_and_manifest(dist):
    write_sha256sums(dist, [C.MODEL_FILE, MANIFEST_FILE])
    model = verify_local_model(dist / C.MODEL_FILE)
    assert model.verified and model.threshold == THRESHOLD


def test_tampered_local_model_is_refused(capsys, dist):
    actual = hashlib.sha256(MODEL_BYTES + b"x").hexdigest()
    listed = hashlib.sha256(MODEL_BYTES).hexdigest()
    write_sha256sums(dist, [C.MODEL_FILE, MANIFEST_FILE])
    (dist / C.MODEL_FILE).write_bytes(MODEL_BYTES + b"x")
    code, _, err = run(capsys, "score", "--model", str(dist / C.MODEL_FILE), "http://a/")
    assert code == 2
    assert f"{C.MODEL_FILE}: sha256 {actual} does not match the SHA256SUMS entry {listed}" in err
    (dist / SUMS_FILE).unlink()  # the manifest alone also catches it
    code, _, err = run(capsys, "score", "--model", str(dist / C.MODEL_FILE), "http://a/")
    assert code == 2 and f"sha256 {actual} does not match" in err and f"model.sha256 {listed}" in err


def test_local_sums_must_list_the_model(dist):
    (dist / "other.onnx").write_bytes(MODEL_BYTES)
    write_sha256sums(dist, [C.MODEL_FILE])
    (dist / MANIFEST_FILE).unlink()
    with pytest.raises(VerificationError, match="does not list other.onnx"):
        verify_local_model(dist / "other.onnx")


def test_bare_local_model_is_refused_unless_allow_unverified(capsys, tmp_path):
    model = tmp_path / "bare.onnx"
    model.write_bytes(MODEL_BYTES)
    code, out, err = run(capsys, "score", "--model", str(model), "http://a/")
    assert code == 2 and out == ""
    assert f"{model}: no SHA256SUMS or manifest.json beside it" in err and "--allow-unverified" in err
    for _ in range(2):  # the warning is printed on every run, not once
        code, out, err = run(capsys, "score", "--allow-unverified", "--model", str(model), "http://a/")
        assert code == 0 and "legitimate  0.1250  http://a/" in out
        assert "UNVERIFIED" in err and hashlib.sha256(MODEL_BYTES).hexdigest() in err
        assert f"--allow-unverified: provenance of {model} NOT checked" in err


def test_verify_release_dir_is_usable_before_upload(tmp_path):
    directory = make_release(tmp_path, "1.0.0")
    assert verify_release_dir(directory, "1.0.0").version == "1.0.0"
    with pytest.raises(VerificationError, match="version is '1.0.0' but the release is 1.0.1"):
        shutil.copy(directory / model_asset_name("1.0.0"), directory / model_asset_name("1.0.1"))
        write_manifest(directory, model_asset_name("1.0.1"), version="1.0.0")
        write_sha256sums(directory, release_asset_names("1.0.1")[:-1])
        verify_release_dir(directory, "1.0.1")


def test_malformed_sums_are_refused():
    with pytest.raises(VerificationError, match="line 1"):
        parse_sha256sums(f"{'a' * 64}  ../etc/passwd\n")
    with pytest.raises(VerificationError, match="listed twice"):
        parse_sha256sums(f"{'a' * 64}  x\n{'b' * 64}  x\n")


# -- inputs ---------------------------------------------------------------------------------------------
def test_file_input_skips_blank_lines_and_reports_bad_bytes(capsys, tmp_path, dist):
    urls = tmp_path / "urls.txt"
    urls.write_bytes(b"http://a/login\r\n\n   \nhttp://b/\xff\xfe\nhttp://c/\n")
    code, out, err = run(capsys, "score", "--model", str(dist / C.MODEL_FILE), "--file", str(urls))
    assert code == 1  # one URL could not be scored
    assert out.splitlines() == ["phishing    0.8750  http://a/login", "legitimate  0.1250  http://c/"]
    assert "cannot score 'http://b/\\xff\\xfe': not valid UTF-8" in err


def test_stdin_input(capsys, monkeypatch, dist):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"http://x/login\n\nhttp://y/\n")))
    code, out, _ = run(capsys, "score", "--model", str(dist / C.MODEL_FILE), "--json", "http://arg/", "-")
    assert code == 0
    assert [r["url"] for r in json.loads(out)["results"]] == ["http://arg/", "http://x/login", "http://y/"]


def test_lone_surrogate_is_a_per_url_error(capsys, dist):
    code, out, _ = run(capsys, "score", "--model", str(dist / C.MODEL_FILE), "--json",
                       "http://ok/", "http://bad/\udcff")
    assert code == 1
    results = json.loads(out)["results"]
    assert results[0]["verdict"] == "legitimate" and "UTF-8" in results[1]["error"]


NUL_REASON = ("contains a NUL character (U+0000) at position 11: runtimes disagree on it "
              "(onnxruntime-node ends the string there), so it is not scored")


def test_a_nul_is_a_per_url_error(capsys, dist):
    code, out, _ = run(capsys, "score", "--model", str(dist / C.MODEL_FILE), "--json",
                         "http://ok/", "http://bad/\x00login", "http://x/login")
    assert code == 1
    results = json.loads(out)["results"]
    assert [r.get("verdict") for r in results] == ["legitimate", None, "phishing"]
    assert results[1] == {"url": "http://bad/\x00login", "error": NUL_REASON}


def test_a_nul_in_a_file_is_an_error_line_escaped(capsys, tmp_path, dist):
    urls = tmp_path / "urls.txt"
    urls.write_bytes(b"http://a/login\nhttp://b/\x00login\nhttp://c/\n")
    code, out, err = run(capsys, "score", "--model", str(dist / C.MODEL_FILE), "--file", str(urls))
    assert code == 1
    assert out.splitlines() == ["phishing    0.8750  http://a/login", "legitimate  0.1250  http://c/"]
    assert f"cannot score 'http://b/\\x00login': {NUL_REASON.replace('11', '9')}" in err and "\x00" not in err


def test_detector_refuses_a_nul_per_url_and_predict_proba_raises(dist):
    detector = Detector(verify_local_model(dist / C.MODEL_FILE))
    a, b, c, d = detector.score(["http://x/login", "  http://bad/\x00login", "&amp;\x00", "http://x/&#0;login"])
    assert (a.verdict, a.p_phishing, a.error) == ("phishing", 0.875, None)
    assert (b.verdict, b.label, b.p_phishing, b.url) == ("error", None, None, "  http://bad/\x00login")
    assert b.error == NUL_REASON  # the position counts the normalised URL: surrounding spaces stripped
    assert c.error.startswith("contains a NUL character (U+0000) at position 1: ")
    assert d.verdict == "phishing"  # an entity cannot make a NUL: html.unescape gives U+FFFD
    assert prepare_url("  http://bad/\x00login") == (None, NUL_REASON)
    assert prepare_url(" http://x/&amp; ") == ("http://x/&", None)
    with pytest.raises(UnscorableUrlError) as err:
        detector.predict_proba(["http://x/", "http://ba\x1b/\x00login"])
    assert isinstance(err.value, ValueError) and isinstance(err.value, LoaderError)
    assert str(err.value) == f"cannot score URL 1 ('http://ba\\x1b/\\x00login'): {NUL_REASON}"
    with pytest.raises(UnscorableUrlError, match="not valid UTF-8"):
        detector.predict_proba(["http://bad/\udcff"])
    assert detector.predict_proba(["http://x/login"])[0, 1] == 0.875


def test_no_urls(capsys, dist):
    code, _, err = run(capsys, "score", "--model", str(dist / C.MODEL_FILE))
    assert code == 1 and "no URLs" in err


def test_detector_normalises_like_training(dist):
    detector = Detector(verify_local_model(dist / C.MODEL_FILE))
    [a, b] = detector.score(["  http://x/?a=1&amp;login=2  ", "http://x/&amp;"])
    assert (a.verdict, a.p_phishing) == ("phishing", 0.875)
    assert b.verdict == "legitimate"


def test_loader_errors_carry_exit_codes():
    assert LoaderError("x").exit_code == 1 and FetchError("x").exit_code == 1
    assert VerificationError("x").exit_code == 2
