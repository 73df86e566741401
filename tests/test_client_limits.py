"""The client's small verification gaps (issue 10, item 4): download caps and an overall deadline,
a cache that refuses links and shared-writable directories, onnxruntime fed the very bytes that were
hashed, ``SHA256SUMS`` read as ``sha256sum -c`` reads it, and a same-major contract change refused.

Downloads run against the fake GitHub API of ``test_client`` with two hostile storage behaviours added.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import test_client
from test_client import (
    MODEL_BYTES,
    REPO,
    FakeGitHub,
    _handler,
    build_model,
    digest_dirs,
    make_release,
    write_manifest,
)

from phishing_url_detector import contract as C
from phishing_url_detector import detector as detector_module
from phishing_url_detector import github as gh
from phishing_url_detector.detector import Detector
from phishing_url_detector.errors import FetchError, VerificationError
from phishing_url_detector.fetch import fetch
from phishing_url_detector.releases import (
    SUMS_FILE,
    format_sha256sums,
    model_asset_name,
    parse_sha256sums,
    verify_local_model,
    verify_release_dir,
)

# Every fixture of test_client (its autouse environment isolation included), whatever it grows to need.
globals().update({name: value for name, value in vars(test_client).items()
                  if type(value).__name__ == "FixtureFunctionDefinition" or hasattr(value, "_pytestfixturefunction")})

ONNX = model_asset_name("1.2.0")


# -- the fake GitHub, with a storage host that lies about sizes or trickles ---------------------------
@dataclass
class HostileGitHub(FakeGitHub):
    overflow: dict = field(default_factory=dict)  # (tag, name) -> "content_length" | "no_length"
    trickle: set = field(default_factory=set)     # (tag, name): one byte every 50 ms

    def reset(self) -> None:
        super().reset()
        self.overflow.clear()
        self.trickle.clear()


def _hostile_handler(state: HostileGitHub):
    class Handler(_handler(state)):
        def do_GET(self):
            match = re.fullmatch(r"/storage/([0-9]+)", urlsplit(self.path).path)
            key = state.assets[int(match.group(1))][1:] if match else None
            if key in state.overflow:
                return self.send_overflow(state.body(REPO, *key) + b"\0" * (4 << 20), state.overflow[key])
            if key in state.trickle:
                return self.send_trickle(state.body(REPO, *key))
            return super().do_GET()

        def send_overflow(self, data: bytes, mode: str):
            state.log.append((self.headers.get("Host", ""), urlsplit(self.path).path, {}))
            self.send_response(200)
            if mode == "content_length":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(data)
            except OSError:  # the client hung up: that is the point
                pass

        def send_trickle(self, data: bytes):
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass

    return Handler


@pytest.fixture(scope="module")
def _hostile_server():
    state = HostileGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _hostile_handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def hostile(_hostile_server, monkeypatch, tmp_path):
    _hostile_server.reset()
    monkeypatch.setenv("GITHUB_API_URL", _hostile_server.api)
    _hostile_server.add(REPO, make_release(tmp_path / "releases", "1.2.0"), latest=True)
    return _hostile_server


# -- downloads ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["content_length", "no_length"])
def test_an_asset_streaming_more_than_its_declared_size_is_stopped(tmp_path, hostile, mode):
    hostile.overflow[("model-v1.2.0", ONNX)] = mode
    with pytest.raises(FetchError) as info:
        fetch(REPO, "model-v1.2.0", tmp_path / "c", retries=0)
    message = str(info.value)
    assert ONNX in message and f"the limit of {len(MODEL_BYTES)} bytes" in message or \
        f"sent more than {len(MODEL_BYTES)} bytes" in message
    assert "the size the release lists" in message
    if mode == "no_length":  # read as a stream: stopped within one chunk of the declared size
        stopped = int(re.search(r"stopped at (\d+)", message).group(1))
        assert len(MODEL_BYTES) < stopped <= len(MODEL_BYTES) + gh.CHUNK
    assert digest_dirs(tmp_path / "c") == []


def test_an_asset_declared_over_the_hard_limit_is_not_downloaded(tmp_path, hostile, monkeypatch):
    monkeypatch.setattr(gh, "MAX_ASSET_BYTES", 100)
    with pytest.raises(FetchError, match=r"asset SHA256SUMS: the release lists \d+ bytes, over the limit of 100 "
                                         r"bytes \(max_asset_bytes\)"):
        fetch(REPO, "model-v1.2.0", tmp_path / "c")
    assert not hostile.requests_to("localhost")


def test_an_asset_without_a_declared_size_is_held_to_the_hard_limit(tmp_path, hostile):
    client = gh.GitHubReleases(hostile.api, max_asset_bytes=len(MODEL_BYTES) - 1, retries=0)
    asset = next(a for a in hostile.release_json(REPO, "model-v1.2.0")["assets"] if a["name"] == ONNX)
    with pytest.raises(gh.AssetTooLargeError, match=f"hard limit max_asset_bytes={len(MODEL_BYTES) - 1}"):
        client.download_asset({**asset, "size": None}, tmp_path / ONNX)
    assert not (tmp_path / ONNX).exists() and not (tmp_path / f"{ONNX}.part").exists()


def test_a_trickling_download_is_stopped_by_the_overall_deadline(tmp_path, hostile, monkeypatch):
    hostile.trickle.add(("model-v1.2.0", ONNX))
    monkeypatch.setattr(gh, "DEFAULT_DEADLINE", 1.5)
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"download of .*\.onnx: the fetch took longer than its overall "
                                         r"deadline of 1\.5 s"):
        fetch(REPO, "model-v1.2.0", tmp_path / "c", timeout=30, retries=3, backoff=0)
    elapsed = time.monotonic() - start
    assert len(MODEL_BYTES) * 0.05 > 5  # the trickle alone would take far longer than the deadline
    assert 1.4 < elapsed < 4, elapsed   # each byte arrives well within the 30 s socket timeout
    assert digest_dirs(tmp_path / "c") == []


# -- the cache -----------------------------------------------------------------------------------------
def test_a_symlinked_cache_entry_is_refused_with_what_to_do(tmp_path, hostile):
    cache = tmp_path / "c"
    model = fetch(REPO, "model-v1.2.0", cache)
    entry = model.onnx_path.parent
    elsewhere = tmp_path / "elsewhere"
    shutil.move(entry, elsewhere)
    entry.symlink_to(elsewhere, target_is_directory=True)
    for _ in range(2):  # refused every time, never half-followed
        with pytest.raises(VerificationError, match=f"cache entry {re.escape(str(entry))} is a symbolic link "
                                                    f"\\(to {re.escape(str(elsewhere))}\\).*rm {re.escape(str(entry))}"):
            fetch(REPO, "model-v1.2.0", cache)
    assert (elsewhere / ONNX).read_bytes() == MODEL_BYTES  # not deleted through the link
    entry.unlink()
    assert fetch(REPO, "model-v1.2.0", cache).onnx_path.read_bytes() == MODEL_BYTES


def test_a_link_placed_while_downloading_is_refused_not_followed(tmp_path, hostile, monkeypatch):
    """The race path: the entry was absent when checked, then a link appeared before the staged
    download could be moved there. The link is checked as a cached entry is, never followed."""
    from phishing_url_detector import fetch as fetch_module

    elsewhere = fetch(REPO, "model-v1.2.0", tmp_path / "other-cache").onnx_path.parent

    def link_appears(target, *args):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(elsewhere, target_is_directory=True)

    monkeypatch.setattr(fetch_module, "_cached", link_appears)
    with pytest.raises(VerificationError, match="is a symbolic link"):
        fetch(REPO, "model-v1.2.0", tmp_path / "c")


def test_a_symlinked_file_in_a_cache_entry_is_refused(tmp_path, hostile):
    cache = tmp_path / "c"
    model = fetch(REPO, "model-v1.2.0", cache)
    other = tmp_path / "other.onnx"
    other.write_bytes(MODEL_BYTES)
    model.onnx_path.unlink()
    model.onnx_path.symlink_to(other)
    with pytest.raises(VerificationError, match=f"cache entry {re.escape(str(model.onnx_path))} is a symbolic link"):
        fetch(REPO, "model-v1.2.0", cache)


@pytest.mark.parametrize("which, mode", [("root", 0o777), ("root", 0o770), ("entry", 0o702)])
def test_a_group_or_world_writable_cache_directory_is_refused(tmp_path, hostile, which, mode):
    cache = tmp_path / "c"
    model = fetch(REPO, "model-v1.2.0", cache)
    directory = cache if which == "root" else model.onnx_path.parent
    directory.chmod(mode)
    with pytest.raises(VerificationError, match=f"cache directory {re.escape(str(directory))} is group- or "
                                                f"world-writable \\(mode {mode:04o}\\).*chmod go-w"):
        fetch(REPO, "model-v1.2.0", cache)
    directory.chmod(0o700)
    assert fetch(REPO, "model-v1.2.0", cache).from_cache


def test_a_new_cache_is_private_whatever_the_umask(tmp_path, hostile):
    old = os.umask(0o002)
    try:
        model = fetch(REPO, "model-v1.2.0", tmp_path / "fresh")
    finally:
        os.umask(old)
    for directory in (tmp_path / "fresh", model.onnx_path.parent.parent, model.onnx_path.parent):
        assert stat.S_IMODE(directory.stat().st_mode) & 0o077 == 0, directory


# -- onnxruntime gets the hashed bytes -------------------------------------------------------------
@pytest.fixture
def dist(tmp_path) -> Path:
    directory = tmp_path / "dist"
    directory.mkdir()
    (directory / C.MODEL_FILE).write_bytes(MODEL_BYTES)
    write_manifest(directory, C.MODEL_FILE, version=None)
    return directory


def test_the_session_is_created_from_the_bytes_that_were_hashed(dist, monkeypatch):
    import onnxruntime as ort
    seen = []
    real = ort.InferenceSession

    def spy(model, *args, **kwargs):
        seen.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    detector = Detector(verify_local_model(dist / C.MODEL_FILE))
    assert len(seen) == 1 and isinstance(seen[0], bytes) and seen[0] == MODEL_BYTES
    assert hashlib.sha256(seen[0]).hexdigest() == detector.model.sha256


def test_swapping_the_file_after_verification_cannot_change_what_is_loaded(dist):
    verified = verify_local_model(dist / C.MODEL_FILE)
    swapped = build_model(input_name="other")  # a valid ONNX model, just not the verified one
    (dist / C.MODEL_FILE).write_bytes(swapped)
    with pytest.raises(VerificationError, match="the file changed after verification") as info:
        Detector(verified)
    assert hashlib.sha256(swapped).hexdigest() in str(info.value) and verified.sha256 in str(info.value)
    # once loaded, the file on disk no longer matters: the session holds the verified bytes
    (dist / C.MODEL_FILE).write_bytes(MODEL_BYTES)
    detector = Detector(verified)
    (dist / C.MODEL_FILE).write_bytes(swapped)
    assert [s.verdict for s in detector.score(["http://a/login", "http://a/"])] == ["phishing", "legitimate"]


def test_verified_bytes_reads_the_file_once(dist, monkeypatch):
    verified = verify_local_model(dist / C.MODEL_FILE)
    reads = []
    original = Path.read_bytes

    def counting(self):
        reads.append(self)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    monkeypatch.setattr(detector_module, "hashlib", hashlib)
    assert detector_module.verified_bytes(verified) == MODEL_BYTES
    assert reads == [verified.onnx_path]


# -- SHA256SUMS as sha256sum -c reads it ------------------------------------------------------------
def _files(directory: Path) -> list[str]:
    names = ["model.onnx", "manifest.json", "name with spaces.md", "star*name.txt"]
    for i, name in enumerate(names):
        (directory / name).write_bytes(f"content {i}\n".encode())
    return names


@pytest.mark.parametrize("flag", ["--text", "--binary"])
def test_real_sha256sum_output_is_parsed(tmp_path, flag):
    names = _files(tmp_path)
    output = subprocess.run(["sha256sum", flag, *names], cwd=tmp_path, capture_output=True, check=True).stdout
    assert (b" *" if flag == "--binary" else b"  ") in output
    sums = parse_sha256sums(output, "sha256sum output")
    assert sums == {n: hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in names}


def test_what_we_write_is_what_sha256sum_checks(tmp_path):
    names = _files(tmp_path)
    text = format_sha256sums({n: hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in names})
    (tmp_path / SUMS_FILE).write_text(text, encoding="utf-8")
    check = subprocess.run(["sha256sum", "-c", "--strict", SUMS_FILE], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert parse_sha256sums(text) == parse_sha256sums(text.encode())


H = "a" * 64


@pytest.mark.parametrize("text, why", [
    (f"{H}  model.onnx\r\n", "CR (a Windows line end)"),
    (f"{H}  model.onnx\rb\n", "CR inside a line (splitlines would split here)"),
    (f"{H}  a\n\n{H}  b\n", "blank line"),
    (f"{H} a\n", "one space"),
    (f"{H}\tmodel.onnx\n", "tab separator"),
    (f"{H[:-1]}  a\n", "63 hex digits"),
    (f"{H}0  a\n", "65 hex digits"),
    (f"SHA256 (a) = {H}\n", "BSD tag format"),
    (f"\\{H}  a\\\\b\n", "escaped name"),
    (f"{H}  ../etc/passwd\n", "parent path"),
    (f"{H}  dir/a\n", "path with /"),
    (f"{H}  ..\n", ".."),
    (f"{H}  a\n{'b' * 64}  a\n", "duplicate name"),
    ("", "empty file"),
])
def test_malformed_sums_are_refused_with_the_line(text, why):
    with pytest.raises(VerificationError) as info:
        parse_sha256sums(text.encode(), "SHA256SUMS")
    message = str(info.value)
    assert message.startswith("SHA256SUMS: "), why
    if text:
        assert re.search(r"line \d+", message), why


def test_sums_without_a_final_newline_and_with_upper_case_hex_are_read_like_sha256sum():
    assert parse_sha256sums(f"{H.upper()}  a".encode()) == {"a": H}


@pytest.mark.parametrize("odd", ["\x0b", "\x1c", "\x85", "\u2028"])
def test_only_newline_ends_a_line(tmp_path, odd):
    """``splitlines`` also breaks at these; ``sha256sum`` reads them as part of the file name."""
    name = f"a{odd}b"
    (tmp_path / name).write_bytes(b"x")
    output = subprocess.run(["sha256sum", name], cwd=tmp_path, capture_output=True, check=True).stdout
    assert parse_sha256sums(output) == {name: hashlib.sha256(b"x").hexdigest()}


def test_a_release_dir_whose_sums_have_crlf_is_refused(tmp_path):
    directory = make_release(tmp_path, "1.0.0")
    sums = directory / SUMS_FILE
    sums.write_bytes(sums.read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(VerificationError, match="line 1 is not"):
        verify_release_dir(directory, "1.0.0")


# -- the contract -----------------------------------------------------------------------------------------
def test_a_same_major_release_with_another_contract_is_refused(tmp_path, hostile):
    changed = {**C.CONTRACT, "preprocessing": "strip surrounding whitespace only"}
    tag = hostile.add(REPO, make_release(tmp_path / "r", "1.5.0", contract=changed))
    with pytest.raises(VerificationError, match=f"contract_digest {C.contract_digest(changed)} differs from "
                                                f"this loader's {C.contract_digest()} although both are contract "
                                                f"major {C.CONTRACT_MAJOR}"):
        fetch(REPO, tag, tmp_path / "c")
    assert digest_dirs(tmp_path / "c") == []
