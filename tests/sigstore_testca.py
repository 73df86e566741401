"""A private, offline stand-in for Sigstore (Fulcio + CT log + Rekor) that makes GitHub-style
build-provenance bundles which the real ``sigstore`` verifier accepts.

Everything the verifier checks is produced here with test keys, and all three public keys (CA
certificate, CT log key, Rekor key) are listed in :meth:`TestSigstore.trusted_root`, so tests can
hand that file to the client as ``--trusted-root``:

* a self-signed CA that issues a short-lived leaf certificate with the Fulcio GitHub Actions
  extensions (OIDC issuer, workflow repository / ref, source repository URI / ref, the SAN URI
  ``https://github.com/OWNER/REPO/<workflow>@<ref>``) and an embedded precertificate SCT signed by
  the test CT log;
* a DSSE envelope over an in-toto statement whose ``subject[].digest.sha256`` names the file;
* a Rekor v1 ``dsse/0.0.1`` entry for it in a one-leaf log: inclusion proof, signed checkpoint and
  signed entry timestamp (the inclusion promise that gives the verifier its signing time).

Keys are derived from fixed scalars and every time is fixed (the signing time is the Rekor
integrated time, so verification does not depend on the wall clock), and ECDSA signatures use
RFC 6979 where ``cryptography`` supports it: the same claims give byte-identical bundles.
"""
from __future__ import annotations

import base64
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
SIGNED_AT = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
_SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_FULCIO = "1.3.6.1.4.1.57264.1."
_LOG_ORIGIN = "rekor.test"


def _key(scalar: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _spki(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _cert_signing_options() -> dict:
    """RFC 6979 certificate signatures where ``cryptography`` offers them (>= 44), else randomised."""
    import inspect

    return {"ecdsa_deterministic": True} if "ecdsa_deterministic" in inspect.signature(
        x509.CertificateBuilder.sign).parameters else {}


_DETERMINISTIC = _cert_signing_options()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    try:
        return key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    except TypeError:  # older cryptography: randomised ECDSA
        return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def _der_octets(raw: bytes) -> bytes:
    length = len(raw)
    head = bytes([length]) if length < 128 else bytes([0x82]) + struct.pack(">H", length)
    return b"\x04" + head + raw


class TestSigstore:
    """The test CA, CT log and Rekor log; :meth:`attest` makes a bundle, :meth:`trusted_root` trusts them."""

    __test__ = False  # not a pytest test class

    def __init__(self, seed: int = 1):
        self.ca_key, self.ct_key, self.rekor_key = _key(1000 + seed), _key(2000 + seed), _key(3000 + seed)
        self.leaf_key = _key(4000 + seed)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test.invalid"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "test-fulcio")])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
        self.ca_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                        .public_key(self.ca_key.public_key()).serial_number(1000 + seed)
                        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
                        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
                        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
                        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                       critical=True)
                        .add_extension(ski, critical=False)
                        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                       critical=False)
                        .sign(self.ca_key, hashes.SHA256(), **_DETERMINISTIC))

    # -- trust --------------------------------------------------------------------------------
    def trusted_root(self) -> dict:
        """A sigstore ``trustedroot+json;version=0.1`` document naming only the test keys."""
        def log(url: str, key) -> dict:
            return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                    "publicKey": {"rawBytes": _b64(_spki(key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                  "validFor": {"start": "2020-01-01T00:00:00Z"}},
                    "logId": {"keyId": _b64(hashlib.sha256(_spki(key)).digest())}}
        return {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [log("https://rekor.test.invalid", self.rekor_key)],
                "certificateAuthorities": [{
                    "subject": {"organization": "test.invalid", "commonName": "test-fulcio"},
                    "uri": "https://fulcio.test.invalid",
                    "certChain": {"certificates": [{"rawBytes": _b64(self.ca_cert.public_bytes(
                        serialization.Encoding.DER))}]},
                    "validFor": {"start": "2020-01-01T00:00:00Z"}}],
                "ctlogs": [log("https://ctfe.test.invalid", self.ct_key)],
                "timestampAuthorities": []}

    def write_trusted_root(self, path: Path) -> Path:
        Path(path).write_text(json.dumps(self.trusted_root(), indent=1), encoding="utf-8")
        return Path(path)

    # -- the signing certificate ----------------------------------------------------------------
    def leaf_certificate(self, repo: str, workflow: str, ref: str, issuer: str = GITHUB_ISSUER,
                         source_ref: str | None = None) -> x509.Certificate:
        """A Fulcio-like certificate for a GitHub Actions run of ``workflow`` in ``repo`` at ``ref``
        (``source_ref``, default ``ref``, is the triggering ref in the repository / ref extensions)."""
        identity = f"https://github.com/{repo}/{workflow}@{ref}"
        source_ref = source_ref or ref
        raw = {1: issuer.encode(), 2: b"push", 3: b"0" * 40, 4: b"release", 5: repo.encode(), 6: source_ref.encode()}
        der = {8: issuer, 9: identity, 12: f"https://github.com/{repo}", 14: source_ref, 18: identity}
        builder = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.ca_cert.subject)
                   .public_key(self.leaf_key.public_key()).serial_number(0x5151)
                   .not_valid_before(SIGNED_AT - timedelta(minutes=1))
                   .not_valid_after(SIGNED_AT + timedelta(minutes=9))
                   .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.leaf_key.public_key()),
                                  critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                                  critical=False)
                   .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]),
                                  critical=True))
        for n, value in raw.items():
            builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(_FULCIO + str(n)),
                                                                       value), critical=False)
        for n, text in der.items():
            builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(_FULCIO + str(n)),
                                                                       _der_utf8(text)), critical=False)
        precert = builder.sign(self.ca_key, hashes.SHA256(), **_DETERMINISTIC)
        sct = self._sct(precert.tbs_certificate_bytes)
        return builder.add_extension(x509.UnrecognizedExtension(_SCT_OID, _der_octets(sct)),
                                     critical=False).sign(self.ca_key, hashes.SHA256(), **_DETERMINISTIC)

    def _sct(self, tbs: bytes) -> bytes:
        """An RFC 6962 SignedCertificateTimestampList with one precert SCT from the test CT log."""
        millis = int((SIGNED_AT - timedelta(seconds=30)).timestamp() * 1000)
        issuer_key_hash = hashlib.sha256(_spki(self.ca_key)).digest()
        signed = (struct.pack("!BBQH", 0, 0, millis, 1) + issuer_key_hash
                  + struct.pack("!I", len(tbs))[1:] + tbs + struct.pack("!H", 0))
        signature = _sign(self.ct_key, signed)
        sct = (struct.pack("!B", 0) + hashlib.sha256(_spki(self.ct_key)).digest() + struct.pack("!QH", millis, 0)
               + struct.pack("!BBH", 4, 3, len(signature)) + signature)
        return struct.pack("!HH", len(sct) + 2, len(sct)) + sct

    # -- the attestation ------------------------------------------------------------------------
    @staticmethod
    def statement(subjects: dict[str, str]) -> bytes:
        """An in-toto v1 statement with SLSA provenance predicate type for ``{name: sha256}``."""
        return json.dumps({"_type": "https://in-toto.io/Statement/v1",
                           "subject": [{"name": n, "digest": {"sha256": d}} for n, d in subjects.items()],
                           "predicateType": "https://slsa.dev/provenance/v1",
                           "predicate": {"buildDefinition": {"buildType": "https://actions.github.io/"
                                                             "buildtypes/workflow/v1"}}},
                          separators=(",", ":")).encode()

    def attest(self, subjects: dict[str, str], *, repo: str, workflow: str = ".github/workflows/release.yml",
               ref: str = "refs/heads/main", payload: bytes | None = None, issuer: str = GITHUB_ISSUER,
               source_ref: str | None = None) -> str:
        """A sigstore bundle (v0.3 JSON) attesting ``{name: sha256}``, signed as ``workflow`` of
        ``repo`` running at ``ref``. ``payload`` replaces the statement (to test malformed ones)."""
        cert = self.leaf_certificate(repo, workflow, ref, issuer, source_ref)
        payload = self.statement(subjects) if payload is None else payload
        payload_type = "application/vnd.in-toto+json"
        pae = f"DSSEv1 {len(payload_type)} {payload_type} {len(payload)} ".encode() + payload
        signature = _sign(self.leaf_key, pae)
        envelope = {"payload": _b64(payload), "payloadType": payload_type,
                    "signatures": [{"sig": _b64(signature), "keyid": ""}]}
        body = self._rekor_body(envelope, cert, payload, signature)
        return json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                           "verificationMaterial": {
                               "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                               "tlogEntries": [self._tlog_entry(body)]},
                           "dsseEnvelope": envelope}, indent=1)

    @staticmethod
    def _rekor_body(envelope: dict, cert: x509.Certificate, payload: bytes, signature: bytes) -> bytes:
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return json.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256",
                             "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": _b64(signature), "verifier": _b64(pem)}]}},
            separators=(",", ":")).encode()

    def _tlog_entry(self, body: bytes) -> dict:
        """Entry 0 of a one-leaf log: the root is the leaf hash, so the proof has no hashes."""
        log_id = hashlib.sha256(_spki(self.rekor_key)).digest()
        integrated = int(SIGNED_AT.timestamp())
        root = hashlib.sha256(b"\x00" + body).digest()
        note = f"{_LOG_ORIGIN} - 1\n1\n{_b64(root)}\n"
        checkpoint = note + f"\n\u2014 {_LOG_ORIGIN} {_b64(log_id[:4] + _sign(self.rekor_key, note.encode()))}\n"
        promise = rfc8785.dumps({"body": _b64(body), "integratedTime": integrated,
                                 "logID": log_id.hex(), "logIndex": 0})
        return {"logIndex": "0", "logId": {"keyId": _b64(log_id)},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"}, "integratedTime": str(integrated),
                "inclusionPromise": {"signedEntryTimestamp": _b64(_sign(self.rekor_key, promise))},
                "inclusionProof": {"logIndex": "0", "rootHash": _b64(root), "treeSize": "1", "hashes": [],
                                   "checkpoint": {"envelope": checkpoint}},
                "canonicalizedBody": _b64(body)}
