"""Build provenance: a file is loaded only if main's release workflow of the configured repository built it.

Integrity checks (SHA256SUMS, manifest) only prove that a release agrees with itself; anyone who
can publish a release can make one that does. Each release therefore also carries the Sigstore
bundle that ``actions/attest-build-provenance`` made for the ONNX file and for ``SHA256SUMS``
(``<asset>.sigstore.json``). Before onnxruntime sees a byte, each bundle is verified with the
``sigstore`` package against a :class:`Policy`:

* the signing certificate chains to the trusted root (Fulcio), with its SCT and the Rekor entry
  (inclusion proof, checkpoint, signed entry timestamp) checked by ``sigstore.verify.Verifier``;
* it was issued to GitHub Actions (OIDC issuer) for the workflow ``.github/workflows/release.yml``
  of ``Policy.repository`` running at ``refs/heads/main`` (certificate SAN and the Fulcio
  repository / ref extensions);
* the DSSE envelope holds an in-toto statement one of whose ``subject[].digest.sha256`` equals the
  file's sha256.

``SHA256SUMS`` is required, and it must list the ONNX file and ``manifest.json``: the manifest
carries what the product believes about the model (version, threshold, contract digest), and it is
signed only through the attested ``SHA256SUMS`` (:func:`signed_claims`).

The repository always comes from the caller's configuration (``--repo`` /
$PHISHING_MODEL_REPO), never from the release being checked. ``sigstore`` is imported on first
use, so ``import phishing_url_detector`` stays light.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from phishing_url_detector.digests import sha256_file
from phishing_url_detector.errors import LoaderError, VerificationError
from phishing_url_detector.releases import (
    MANIFEST_FILE,
    REPO_ENV,
    REPOSITORY,
    SUMS_FILE,
    VerifiedModel,
    bundle_asset_name,
    parse_sha256sums,
    warn,
)

if TYPE_CHECKING:  # sigstore (pydantic, cryptography) is imported when a bundle is verified
    from sigstore.verify import Verifier
    from sigstore.verify.policy import AllOf

log = logging.getLogger(__name__)

RELEASE_WORKFLOW = ".github/workflows/release.yml"
RELEASE_REF = "refs/heads/main"
GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
TRUSTED_ROOT_ENV = "PHISHING_MODEL_TRUSTED_ROOT"


@dataclass(frozen=True)
class Policy:
    """Who must have built a file: ``workflow`` of ``repository`` at ``ref``, per ``trusted_root``
    (a sigstore trusted_root.json; None = the Sigstore public-good root shipped with ``sigstore``)."""

    repository: str
    workflow: str = RELEASE_WORKFLOW
    ref: str = RELEASE_REF
    issuer: str = GITHUB_OIDC_ISSUER
    trusted_root: Path | None = None

    def __post_init__(self) -> None:
        if not REPOSITORY.fullmatch(self.repository or ""):
            raise LoaderError(f"provenance policy: repository must look like OWNER/NAME, got {self.repository!r}")

    @property
    def identity(self) -> str:
        """The certificate SAN GitHub gives that workflow run (its ``job_workflow_ref``)."""
        return f"https://github.com/{self.repository}/{self.workflow}@{self.ref}"

    def describe(self) -> str:
        return f"{self.workflow} of {self.repository} at {self.ref}"


def policy_for(repo: str | None, trusted_root: str | os.PathLike[str] | None = None) -> Policy | None:
    """The release policy for ``repo`` (None when no repository is configured); the trusted root
    defaults to $PHISHING_MODEL_TRUSTED_ROOT, then the public-good root."""
    if not repo:
        return None
    root = trusted_root or os.environ.get(TRUSTED_ROOT_ENV) or None
    return Policy(repo, trusted_root=Path(root) if root else None)


# -- sigstore --------------------------------------------------------------------------------------
def _sigstore_policy(policy: Policy) -> AllOf:
    from sigstore.verify import policy as sp  # lazy: see TYPE_CHECKING

    return sp.AllOf([sp.Identity(identity=policy.identity, issuer=policy.issuer),
                     sp.GitHubWorkflowRepository(policy.repository),
                     sp.GitHubWorkflowRef(policy.ref),
                     sp.OIDCSourceRepositoryURI(f"https://github.com/{policy.repository}"),
                     sp.OIDCSourceRepositoryRef(policy.ref)])


def _public_good_root() -> Path:
    """The Sigstore public-good trusted root that ships inside the ``sigstore`` package (no network)."""
    return Path(str(files("sigstore._store") / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json"))


def _verifier(trusted_root: Path | None) -> Verifier:
    from sigstore.models import TrustedRoot  # lazy: see TYPE_CHECKING
    from sigstore.verify import Verifier  # lazy: see TYPE_CHECKING

    path = trusted_root or _public_good_root()
    try:
        return Verifier(trusted_root=TrustedRoot.from_file(str(path)))
    except Exception as exc:  # noqa: BLE001 - sigstore raises pydantic's and its own errors for a bad root
        raise LoaderError(f"trusted root {path}: cannot be used ({type(exc).__name__}: {exc})") from None


def _verified_statement(bundle_path: Path, policy: Policy) -> dict[str, object]:
    """The in-toto statement of ``bundle_path`` once sigstore has verified the bundle under ``policy``."""
    from sigstore.errors import Error as SigstoreError  # lazy: see TYPE_CHECKING
    from sigstore.models import Bundle  # lazy: see TYPE_CHECKING

    try:
        bundle = Bundle.from_json(bundle_path.read_bytes())
    except OSError as exc:
        raise VerificationError(f"{bundle_path}: cannot read the provenance bundle ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - a malformed bundle raises pydantic's, JSON's or sigstore's errors
        raise VerificationError(f"{bundle_path}: not a valid Sigstore bundle ({type(exc).__name__}: {exc})") from None
    verifier = _verifier(policy.trusted_root)
    try:
        payload_type, payload = verifier.verify_dsse(bundle, _sigstore_policy(policy))
    except Exception as exc:  # noqa: BLE001 - any failure is a refusal; sigstore's own errors say what failed
        reason = str(exc) if isinstance(exc, SigstoreError) else f"{type(exc).__name__}: {exc}"
        raise VerificationError(f"{bundle_path}: provenance does not verify against the policy "
                                f"({policy.describe()}): {reason}") from None
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"{bundle_path}: DSSE payloadType is {payload_type!r}, expected "
                                f"{IN_TOTO_PAYLOAD_TYPE!r}")
    try:
        statement = json.loads(payload)
    except ValueError as exc:
        raise VerificationError(f"{bundle_path}: the attested statement is not JSON ({exc})") from None
    if not isinstance(statement, dict):
        raise VerificationError(f"{bundle_path}: the attested statement is not a JSON object")
    return statement


def _subject_digests(statement: dict[str, object], where: Path) -> set[str]:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError(f"{where}: the in-toto statement has no 'subject' list")
    return {s["digest"]["sha256"].lower() for s in subjects
            if isinstance(s, dict) and isinstance(s.get("digest"), dict)
            and isinstance(s["digest"].get("sha256"), str)}


def verify_file(path: str | os.PathLike[str], bundle_path: str | os.PathLike[str], policy: Policy,
                sha256: str | None = None) -> None:
    """Refuse ``path`` unless ``bundle_path`` is a valid attestation of exactly its bytes under ``policy``.

    ``sha256`` is the digest already computed for ``path`` (hashed here when None)."""
    path, bundle_path = Path(path), Path(bundle_path)
    if not bundle_path.is_file():
        raise VerificationError(f"{path.name}: no provenance bundle {bundle_path.name} beside it in "
                                f"{bundle_path.parent}; refusing a file nobody attested "
                                f"(--allow-unverified loads a local development build)")
    digest = sha256 or sha256_file(path)
    statement = _verified_statement(bundle_path, policy)
    digests = _subject_digests(statement, bundle_path)
    if digest not in digests:
        raise VerificationError(f"{path.name}: sha256 {digest} is not a subject of {bundle_path.name} "
                                f"(it attests {', '.join(sorted(digests)) or 'no sha256 digests'}); the file "
                                "is not the one the release workflow built")
    log.info("provenance: %s (sha256 %s) was built by %s", path.name, digest, policy.describe())


def signed_claims(model: VerifiedModel, sums_bytes: bytes, manifest_bytes: bytes | None,
                  where: str = SUMS_FILE) -> None:
    """Refuse a model whose claims the signed ``SHA256SUMS`` (``sums_bytes``) does not cover: the ONNX
    file at ``model.sha256`` and, when the model has a manifest (version, threshold, contract digest),
    exactly ``manifest_bytes`` (the manifest.json beside it), which must parse to ``model.manifest``."""
    sums = parse_sha256sums(sums_bytes, where)
    name = model.onnx_path.name
    if sums.get(name) != model.sha256:
        raise VerificationError(f"{where} does not list {name} with sha256 {model.sha256}; the signed "
                                f"{SUMS_FILE} does not vouch for this model")
    if model.manifest is None:
        return
    listed = sums.get(MANIFEST_FILE)
    if listed is None:
        raise VerificationError(f"{where} does not list {MANIFEST_FILE}, so nothing signed vouches for its "
                                "version, threshold or contract digest; refusing it")
    actual = hashlib.sha256(manifest_bytes or b"").hexdigest()
    if manifest_bytes is None or actual != listed:
        raise VerificationError(f"{MANIFEST_FILE}: sha256 {actual} does not match the signed {where} entry "
                                f"{listed}; its version, threshold and contract digest are not the release's")
    try:
        same = json.loads(manifest_bytes) == model.manifest
    except ValueError:
        same = False
    if not same:
        raise VerificationError(f"{MANIFEST_FILE} changed after it was verified; refusing it")


def _read_optional(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def check_model(model: VerifiedModel, policy: Policy | None, *, allow_unverified: bool = False,
                warn: Callable[[str], None] = warn) -> VerifiedModel:
    """Verify the provenance of an integrity-checked model: its ONNX file and the ``SHA256SUMS`` beside
    it, each against its ``<name>.sigstore.json``, and that this signed ``SHA256SUMS`` covers the ONNX
    file and the manifest (:func:`signed_claims`). Without ``SHA256SUMS`` the manifest's version,
    threshold and contract digest would be anybody's word, so it is required.

    ``allow_unverified`` skips this (for local development builds) with a warning, every time.
    """
    if allow_unverified:
        message = (f"warning: --allow-unverified: provenance of {model.onnx_path} NOT checked; "
                   "use this only for a local development build")
        warn(message)  # printed (stderr) by default; not also logged, so the CLI shows it once
        return dataclasses.replace(model, verified=False)
    if policy is None:
        raise LoaderError(f"{model.onnx_path}: cannot check its provenance without the repository it must "
                          f"come from: pass --repo OWNER/NAME or set {REPO_ENV} "
                          "(or --allow-unverified for a local development build)")
    verify_file(model.onnx_path, model.directory / bundle_asset_name(model.onnx_path.name), policy, model.sha256)
    sums = model.directory / SUMS_FILE
    if not sums.is_file():
        raise VerificationError(f"{model.onnx_path.name}: no {SUMS_FILE} beside it in {model.directory}; the "
                                f"{MANIFEST_FILE} (version, threshold, contract digest) is signed only through "
                                f"the attested {SUMS_FILE}, so refusing a model whose claims nobody signed "
                                "(--allow-unverified loads a local development build)")
    sums_bytes = sums.read_bytes()  # hashed, verified and parsed from these same bytes
    verify_file(sums, model.directory / bundle_asset_name(SUMS_FILE), policy, hashlib.sha256(sums_bytes).hexdigest())
    manifest_bytes = _read_optional(model.directory / MANIFEST_FILE) if model.manifest is not None else None
    signed_claims(model, sums_bytes, manifest_bytes, str(sums))
    return dataclasses.replace(model, verified=True)
