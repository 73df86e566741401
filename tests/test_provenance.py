"""Provenance before load: every policy check of ``phishing_url_detector.provenance`` against bundles
made by the test Sigstore (tests/sigstore_testca.py) and verified by the real ``sigstore`` verifier,
then the whole fetch / score / verify path refusing self-consistent releases nobody attested."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import pytest
import test_client
from sigstore_testca import TestSigstore
from test_client import (
    MODEL_BYTES,
    REPO,
    SIGSTORE,
    attest,
    digest_dirs,
    make_release,
    run,
)

from phishing_url_detector import provenance
from phishing_url_detector.detector import Detector
from phishing_url_detector.errors import LoaderError, VerificationError
from phishing_url_detector.fetch import REPOSITORY_RECORD, fetch
from phishing_url_detector.releases import (
    SUMS_FILE,
    VerifiedModel,
    bundle_asset_name,
    format_sha256sums,
    model_asset_name,
    provenance_asset_names,
    write_sha256sums,
)

GARBAGE = b"not a model at all, but the manifest and SHA256SUMS agree with it\n"

# test_client's fixtures, used here too: pytest finds a fixture by the name it has in the test module
_server, github, trusted_root = test_client._server, test_client.github, test_client.trusted_root
_isolated_env = test_client._isolated_env  # autouse: no GITHUB_TOKEN, no cache or repository from outside


@pytest.fixture
def policy(trusted_root) -> provenance.Policy:
    return provenance.Policy(REPO, trusted_root=trusted_root)


@pytest.fixture
def artifact(tmp_path) -> Path:
    path = tmp_path / "phishing-url-detector-1.0.0.onnx"
    path.write_bytes(MODEL_BYTES)
    return path


def _bundle(path: Path, **signer) -> Path:
    return attest(path.parent, path.name, **signer)


# -- the policy, one check at a time --------------------------------------------------------------
def test_valid_bundle_passes(artifact, policy, caplog):
    with caplog.at_level(logging.INFO, logger="phishing_url_detector.provenance"):
        provenance.verify_file(artifact, _bundle(artifact), policy)
    assert f"built by .github/workflows/release.yml of {REPO} at refs/heads/main" in caplog.text


def test_the_policy_pins_workflow_ref_repository_and_issuer(policy):
    assert policy.identity == f"https://github.com/{REPO}/.github/workflows/release.yml@refs/heads/main"
    assert policy.issuer == "https://token.actions.githubusercontent.com"
    with pytest.raises(LoaderError, match="OWNER/NAME"):
        provenance.Policy("not a repo")


@pytest.mark.parametrize("signer, needle", [
    ({"workflow": ".github/workflows/other.yml"}, ".github/workflows/other.yml@refs/heads/main"),
    ({"ref": "refs/heads/feature"}, "refs/heads/feature"),
    ({"repo": "mallory/models"}, "mallory/models"),
    ({"source_ref": "refs/tags/model-v9.9.9"}, "got 'refs/tags/model-v9.9.9', expected 'refs/heads/main'"),
    ({"issuer": "https://token.example/"}, "got 'https://token.example/'"),
], ids=["wrong-workflow", "wrong-ref", "wrong-repository", "wrong-source-ref", "wrong-issuer"])
def test_bundle_from_another_signer_is_refused(artifact, policy, signer, needle):
    bundle = _bundle(artifact, **signer)
    with pytest.raises(VerificationError) as info:
        provenance.verify_file(artifact, bundle, policy)
    message = str(info.value)
    assert f"{bundle}: provenance does not verify against the policy" in message
    assert needle in message  # sigstore names what the certificate says instead


def test_tampered_file_is_refused(artifact, policy):
    bundle = _bundle(artifact)
    artifact.write_bytes(MODEL_BYTES + b"\x00")
    actual = hashlib.sha256(artifact.read_bytes()).hexdigest()
    with pytest.raises(VerificationError, match=f"sha256 {actual} is not a subject of {bundle.name}"):
        provenance.verify_file(artifact, bundle, policy)


def test_missing_bundle_is_refused(artifact, policy):
    with pytest.raises(VerificationError, match=f"no provenance bundle {artifact.name}.sigstore.json beside it"):
        provenance.verify_file(artifact, artifact.parent / bundle_asset_name(artifact.name), policy)


def test_bundle_from_an_untrusted_ca_is_refused(artifact, policy):
    bundle = artifact.parent / bundle_asset_name(artifact.name)
    digest = hashlib.sha256(MODEL_BYTES).hexdigest()
    bundle.write_text(TestSigstore(seed=2).attest({artifact.name: digest}, repo=REPO))  # same claims, other keys
    with pytest.raises(VerificationError, match="provenance does not verify against the policy"):
        provenance.verify_file(artifact, bundle, policy)


def test_altered_statement_breaks_the_signature(artifact, policy):
    bundle = _bundle(artifact)
    doc = json.loads(bundle.read_text())
    other = SIGSTORE.statement({artifact.name: "0" * 64})
    doc["dsseEnvelope"]["payload"] = base64.b64encode(other).decode()
    bundle.write_text(json.dumps(doc))
    with pytest.raises(VerificationError, match="provenance does not verify"):
        provenance.verify_file(artifact, bundle, policy)


def test_statement_without_subjects_is_refused(artifact, policy):
    bundle = artifact.parent / bundle_asset_name(artifact.name)
    bundle.write_text(SIGSTORE.attest({}, repo=REPO, payload=json.dumps({"subject": []}).encode()))
    with pytest.raises(VerificationError, match="has no 'subject' list"):
        provenance.verify_file(artifact, bundle, policy)


def test_garbage_bundle_and_bad_trusted_root(artifact, policy, tmp_path):
    bundle = artifact.parent / bundle_asset_name(artifact.name)
    bundle.write_text('{"mediaType": "nope"}')
    with pytest.raises(VerificationError, match=f"{bundle}: not a valid Sigstore bundle"):
        provenance.verify_file(artifact, bundle, policy)
    _bundle(artifact)
    bad_root = tmp_path / "root.json"
    bad_root.write_text("{}")
    with pytest.raises(LoaderError, match=f"trusted root {bad_root}: cannot be used"):
        provenance.verify_file(artifact, bundle, provenance.Policy(REPO, trusted_root=bad_root))


def test_public_good_root_is_the_default_and_rejects_the_test_ca(artifact):
    """Without --trusted-root the Sigstore public-good root (shipped in the sigstore package) is used,
    offline; it does not trust the test CA."""
    assert provenance._public_good_root().is_file()
    with pytest.raises(VerificationError, match="provenance does not verify"):
        provenance.verify_file(artifact, _bundle(artifact), provenance.Policy(REPO))


# -- the fetch / score / verify path -----------------------------------------------------------------
@pytest.mark.parametrize("signer, needle", [
    (None, "no provenance bundle phishing-url-detector-6.6.6.onnx.sigstore.json"),
    ({"workflow": ".github/workflows/ci.yml"}, "provenance does not verify"),
    ({"ref": "refs/heads/evil"}, "provenance does not verify"),
    ({"repo": "mallory/models"}, "provenance does not verify"),
], ids=["no-bundle", "other-workflow", "other-ref", "other-repository"])
def test_fetch_refuses_a_self_consistent_release_without_valid_provenance(capsys, tmp_path, github, signer,
                                                                          needle):
    """GARBAGE with a manifest and SHA256SUMS that agree with it: only provenance can refuse it."""
    directory = make_release(tmp_path / "releases", "6.6.6", GARBAGE, attested=False)
    if signer is not None:
        for name in (model_asset_name("6.6.6"), SUMS_FILE):
            attest(directory, name, **signer)
    tag = github.add(REPO, directory, latest=True)
    cache = tmp_path / "cache"
    code, out, err = run(capsys, "score", "--model", tag, "--repo", REPO, "--cache-dir", str(cache), "http://x/")
    assert code == 2 and out == ""
    assert needle in err
    assert digest_dirs(cache) == []  # nothing unattested enters the cache
    if signer is None:
        assert not github.requests_to("localhost")  # refused before downloading anything
    with pytest.raises(VerificationError, match=needle):
        Detector.from_release(REPO, tag, cache)


def test_the_repository_comes_from_the_caller_not_the_release(capsys, tmp_path, github):
    """mallory/models' own release, validly attested by mallory's workflow, is refused when the caller
    asked for acme/models' model, even if it is served under acme/models."""
    directory = make_release(tmp_path / "releases", "1.0.0", attested=False)
    for name in (model_asset_name("1.0.0"), SUMS_FILE):
        attest(directory, name, repo="mallory/models")
    tag = github.add(REPO, directory)
    code, _, err = run(capsys, "fetch", "--repo", REPO, "--tag", tag, "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and "mallory/models" in err and f"of {REPO} at refs/heads/main" in err


def test_sums_bundle_is_checked_too(tmp_path, github):
    directory = make_release(tmp_path / "releases", "1.0.1")
    attest(directory, SUMS_FILE, ref="refs/heads/feature")
    tag = github.add(REPO, directory)
    with pytest.raises(VerificationError, match=f"{SUMS_FILE}.sigstore.json: provenance does not verify"):
        fetch(REPO, tag, tmp_path / "c")


def test_allow_unverified_fetches_with_a_warning_every_time(tmp_path, github):
    tag = github.add(REPO, make_release(tmp_path / "releases", "0.0.1", attested=False))
    for from_cache in (False, True):
        warnings: list[str] = []
        model = fetch(REPO, tag, tmp_path / "c", allow_unverified=True, warn=warnings.append)
        assert model.from_cache is from_cache and model.verified is False
        assert any("--allow-unverified: provenance of" in w and "NOT checked" in w for w in warnings)


def test_cached_release_without_bundles_is_fetched_again(tmp_path, github):
    tag = github.add(REPO, make_release(tmp_path / "releases", "1.1.0"))
    cache = tmp_path / "c"
    first = fetch(REPO, tag, cache)
    (first.directory / bundle_asset_name(first.onnx_path.name)).unlink()  # e.g. cached by an older client
    warnings: list[str] = []
    again = fetch(REPO, tag, cache, warn=warnings.append)
    assert not again.from_cache and again.verified
    assert "failed verification" in warnings[0] and "no provenance bundle" in warnings[0]


@pytest.mark.parametrize("record, reason", [
    ("mallory/models\n", "was fetched from 'mallory/models', not acme/models"),
    (None, "records no repository"),
], ids=["another-repository", "no-record"])
def test_a_cache_entry_not_recorded_for_this_repository_is_fetched_again(tmp_path, github, record, reason):
    """Issue 19, finding 1: the cache records where an entry came from, and fetch checks it."""
    tag = github.add(REPO, make_release(tmp_path / "releases", "1.4.0"))
    cache = tmp_path / "c"
    entry = fetch(REPO, tag, cache).directory
    assert (entry / REPOSITORY_RECORD).read_text() == f"{REPO}\n"
    if record is None:
        (entry / REPOSITORY_RECORD).unlink()
    else:
        (entry / REPOSITORY_RECORD).write_text(record)
    for allow_unverified in (True, False):  # the record is checked even when provenance is not
        warnings: list[str] = []
        again = fetch(REPO, tag, cache, warn=warnings.append, allow_unverified=allow_unverified)
        assert not again.from_cache and any(reason in w and "downloading again" in w for w in warnings)
        assert (entry / REPOSITORY_RECORD).read_text() == f"{REPO}\n"
        (entry / REPOSITORY_RECORD).write_text(record or "")
        if record is None:
            (entry / REPOSITORY_RECORD).unlink()


def test_local_release_dir_verify_command(capsys, tmp_path, trusted_root):
    directory = make_release(tmp_path, "2.0.0")
    code, _, err = run(capsys, "verify", "--repo", REPO, "--trusted-root", str(trusted_root), str(directory))
    assert code == 0, err
    assert json.loads(run(capsys, "verify", "--repo", REPO, "--json", str(directory))[1])["verified"] is True
    code, _, err = run(capsys, "verify", "--repo", "other/repo", str(directory))
    assert code == 2 and "provenance does not verify" in err
    code, _, err = run(capsys, "verify", str(directory))
    assert code == 1 and "PHISHING_MODEL_REPO" in err
    (directory / bundle_asset_name(SUMS_FILE)).unlink()
    code, _, err = run(capsys, "verify", "--repo", REPO, str(directory))
    assert code == 2 and f"no provenance bundle {SUMS_FILE}.sigstore.json" in err


def test_local_model_with_sidecars_but_no_bundle(capsys, tmp_path):
    directory = make_release(tmp_path, "2.1.0", attested=False)
    onnx = directory / model_asset_name("2.1.0")
    code, _, err = run(capsys, "score", "--repo", REPO, "--model", str(onnx), "http://a/")
    assert code == 2 and f"no provenance bundle {onnx.name}.sigstore.json" in err
    detector = Detector.from_path(onnx, allow_unverified=True)
    assert detector.model.verified is False and detector.score(["http://a/"])[0].verdict == "legitimate"
    with pytest.raises(VerificationError, match="no provenance bundle"):
        Detector.from_path(onnx, repo=REPO)


def test_release_layout_names_the_bundles():
    assert provenance_asset_names("1.2.3") == ["phishing-url-detector-1.2.3.onnx.sigstore.json",
                                               "SHA256SUMS.sigstore.json"]


def test_the_test_ca_is_deterministic():
    """Same seed, same claims: byte-identical bundles and trusted root (fixed keys, times, RFC 6979)."""
    claims = {"x.onnx": "ab" * 32}
    assert TestSigstore().attest(claims, repo=REPO) == SIGSTORE.attest(claims, repo=REPO)
    assert TestSigstore().trusted_root() == SIGSTORE.trusted_root()


# -- everything the product believes about a model is signed (issue 19, finding 2) ---------------------
def forged_manifest_dir(tmp_path: Path, *, sums: list[str] | None = None) -> Path:
    """The genuine ONNX file of a signed release with its genuine bundle, beside a hand-written manifest
    (version 9.9.9, threshold 0.999); with ``sums``, a SHA256SUMS over those names, validly signed."""
    genuine = make_release(tmp_path / "genuine", "1.0.0")
    onnx = model_asset_name("1.0.0")
    attack = tmp_path / "attack"
    attack.mkdir()
    for name in (onnx, bundle_asset_name(onnx)):
        (attack / name).write_bytes((genuine / name).read_bytes())
    manifest = json.loads((genuine / "manifest.json").read_text())
    (attack / "manifest.json").write_text(json.dumps({**manifest, "version": "9.9.9", "threshold": 0.999}))
    if sums is not None:
        write_sha256sums(attack, sums)
        attest(attack, SUMS_FILE)
    return attack


def test_a_hand_written_manifest_beside_a_genuine_model_is_refused(capsys, tmp_path):
    attack = forged_manifest_dir(tmp_path)
    onnx = attack / model_asset_name("1.0.0")
    code, out, err = run(capsys, "verify", "--repo", REPO, "--json", str(onnx))
    assert code == 2 and out == ""  # not "verified": true
    assert f"{onnx.name}: no {SUMS_FILE} beside it" in err and "nobody signed" in err
    urls, scored = tmp_path / "urls.txt", tmp_path / "scores.csv"
    urls.write_text("http://a/login\nhttp://b/\n")
    code, _, err = run(capsys, "score", "--repo", REPO, "--model", str(onnx), "--file", str(urls),
                       "--output", str(scored))
    assert code == 2 and not scored.exists() and f"no {SUMS_FILE} beside it" in err  # no row says 9.9.9
    with pytest.raises(VerificationError, match=f"no {SUMS_FILE} beside it"):
        Detector.from_path(onnx, repo=REPO)


def test_a_signed_sha256sums_that_does_not_cover_the_manifest_is_refused(capsys, tmp_path):
    attack = forged_manifest_dir(tmp_path, sums=[model_asset_name("1.0.0")])  # signed, lists the ONNX only
    code, _, err = run(capsys, "verify", "--repo", REPO, str(attack / model_asset_name("1.0.0")))
    assert code == 2 and "does not list manifest.json, so nothing signed vouches for its version" in err


def test_signed_claims_bind_the_manifest_bytes_to_the_model():
    sums = format_sha256sums({"m.onnx": "a" * 64, "manifest.json": hashlib.sha256(b'{"v": 1}').hexdigest()})
    model = VerifiedModel(Path("m.onnx"), "a" * 64, {"v": 1}, source="m.onnx")
    provenance.signed_claims(model, sums.encode(), b'{"v": 1}')
    provenance.signed_claims(dataclasses.replace(model, manifest=None), sums.encode(), None)
    with pytest.raises(VerificationError, match="does not list m.onnx with sha256 " + "b" * 64):
        provenance.signed_claims(dataclasses.replace(model, sha256="b" * 64), sums.encode(), b'{"v": 1}')
    with pytest.raises(VerificationError, match="does not match the signed SHA256SUMS entry"):
        provenance.signed_claims(model, sums.encode(), b'{"v": 2}')
    with pytest.raises(VerificationError, match="changed after it was verified"):
        provenance.signed_claims(dataclasses.replace(model, manifest={"v": 2}), sums.encode(), b'{"v": 1}')

