"""A verified model in onnxruntime, scoring URLs exactly as the contract says."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Unpack

import numpy as np

from phishing_url_detector import contract as C
from phishing_url_detector.errors import (
    LoaderError,
    UnscorableUrlError,
    VerificationError,
)
from phishing_url_detector.fetch import FetchOptions, fetch, verify_local
from phishing_url_detector.releases import VerifiedModel
from phishing_url_detector.text import terminal

BATCH = 1024
NUL = "\x00"


def prepare_url(url: object) -> tuple[str, None] | tuple[None, str]:
    """The client's input validation, in one place: ``(text fed to the model, None)``, or
    ``(None, why url is not scored)``. Every scoring path asks it (:meth:`Detector.score`, hence
    batch scoring and the command line, and :meth:`Detector.predict_proba`), and so does
    ``python -m pipeline node-parity``.

    ``url`` is normalised as the contract says (:func:`contract.normalise_url`), then refused when it
    is not a string, not encodable as UTF-8 (a lone surrogate, e.g. from undecodable input bytes), or
    contains a NUL character (U+0000): Python onnxruntime scores the whole string but onnxruntime-node
    ends it at the first NUL, so the same model would give it two verdicts. Positions count the
    characters of the normalised URL.
    """
    if not isinstance(url, str):
        return None, "not a string"
    normalised = C.normalise_url(url)
    try:
        normalised.encode("utf-8")
    except UnicodeEncodeError as exc:
        return None, f"not valid UTF-8 text ({exc.reason} at position {exc.start})"
    nul = normalised.find(NUL)
    if nul >= 0:
        return None, (f"contains a NUL character (U+0000) at position {nul}: runtimes disagree on it "
                      "(onnxruntime-node ends the string there), so it is not scored")
    return normalised, None


@dataclass(frozen=True)
class UrlScore:
    """One input's outcome: a score, or the reason it could not be scored."""

    url: str
    label: int | None = None
    p_phishing: float | None = None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "error"
        return "phishing" if self.label == 1 else "legitimate"


def verified_bytes(model: VerifiedModel) -> bytes:
    """The ONNX file, read once into memory and hashed there: the bytes onnxruntime gets are the
    bytes whose sha256 matched the release, even if the file is swapped after verification."""
    data = model.onnx_path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != model.sha256:
        raise VerificationError(f"{model.onnx_path}: sha256 {actual} does not match the verified {model.sha256}; "
                                "the file changed after verification, refusing to load it")
    return data


class Detector:
    """Score URLs with a model that passed verification.

    >>> detector = Detector.from_release("acme/phishing-models", "latest")   # doctest: +SKIP
    >>> [s.verdict for s in detector.score(["http://paypal.com.login.example.tk/"])]   # doctest: +SKIP
    ['phishing']
    """

    def __init__(self, model: VerifiedModel, *, intra_op_threads: int | None = None) -> None:
        """``intra_op_threads``: onnxruntime's pool size (None = its default, one per core); the
        batch scorer's worker processes each take 1 so that they do not oversubscribe the cores."""
        import onnxruntime as ort  # lazy: verifying and `--help` should not pay for it

        self.model = model
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        data = verified_bytes(model)
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types share no public base
            raise LoaderError(f"{model.onnx_path}: onnxruntime cannot load it ({exc})") from None
        self._check_signature()

    @classmethod
    def from_release(cls, repo: str, tag: str = "latest", cache_dir: str | os.PathLike[str] | None = None,
                     **fetch_kwargs: Unpack[FetchOptions]) -> Detector:
        """Fetch (or reuse from the cache) and verify release ``tag`` of ``repo`` (its provenance included:
        ``trusted_root=``, ``allow_unverified=`` go to :func:`fetch`), then load it."""
        return cls(fetch(repo, tag, cache_dir, **fetch_kwargs))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], *, repo: str | None = None,
                  trusted_root: str | os.PathLike[str] | None = None, allow_unverified: bool = False) -> Detector:
        """Load a local ONNX file after verifying it against the SHA256SUMS / manifest.json beside it and
        the provenance bundles of it and of SHA256SUMS (required: it signs the manifest) against ``repo``
        (default $PHISHING_MODEL_REPO); ``allow_unverified``
        loads a local development build with a warning."""
        return cls(verify_local(path, repo=repo, trusted_root=trusted_root, allow_unverified=allow_unverified))

    @property
    def threshold(self) -> float | None:
        return self.model.threshold

    def _check_signature(self) -> None:
        inputs = {i.name: i.type for i in self.session.get_inputs()}
        outputs = {o.name: o.type for o in self.session.get_outputs()}
        want_in = {spec["name"]: spec["type"] for spec in C.CONTRACT["inputs"]}
        want_out = {spec["name"]: spec["type"] for spec in C.CONTRACT["outputs"]}
        problems = [f"input {n!r} should be {t}, is {inputs.get(n)}" for n, t in want_in.items()
                    if inputs.get(n) != t]
        problems += [f"output {n!r} should be {t}, is {outputs.get(n)}" for n, t in want_out.items()
                     if outputs.get(n) != t]
        if set(inputs) != set(want_in):
            problems.append(f"inputs are {sorted(inputs)}, expected {sorted(want_in)}")
        if problems:
            raise VerificationError(f"{self.model.onnx_path.name}: graph does not match the contract: "
                                    + "; ".join(problems))

    def _run(self, normalised: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(labels [n], probabilities [n, 2]) for already-normalised URLs, in input order.

        The graph's string ops pad every row to the longest URL of its batch, so URLs are scored
        in length order, BATCH at a time, and the results put back where they came from.
        """
        n = len(normalised)
        labels, probas = np.zeros(n, dtype=np.int64), np.zeros((n, 2), dtype=np.float32)
        order = sorted(range(n), key=lambda i: len(normalised[i]))
        for start in range(0, n, BATCH):
            rows = order[start:start + BATCH]
            feed = np.array([normalised[i] for i in rows], dtype=object).reshape(-1, 1)
            try:
                label, proba = self.session.run([C.LABEL_OUTPUT, C.PROBA_OUTPUT], {C.INPUT_NAME: feed})
            except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types share no public base
                raise LoaderError(f"{self.model.onnx_path.name}: scoring failed ({exc})") from None
            label, proba = np.asarray(label), np.asarray(proba)
            if label.shape != (len(feed),) or proba.shape != (len(feed), 2):
                raise VerificationError(f"{self.model.onnx_path.name}: output shapes {label.shape} and "
                                        f"{proba.shape} violate the contract for {len(feed)} inputs")
            labels[rows], probas[rows] = label, proba
        return labels, probas

    def predict_proba(self, urls: Sequence[str]) -> np.ndarray:
        """[N, 2] probabilities (column 1 = P(phishing)) of ``urls``, normalised as the contract says.

        Raises :class:`UnscorableUrlError` (a ``ValueError``) on a URL that cannot be scored
        (:func:`prepare_url`), before scoring any; :meth:`score` reports those per URL instead.
        """
        fed: list[str] = []
        for i, url in enumerate(urls):
            text, error = prepare_url(url)
            if text is None:  # then error says why
                what = (f"'{terminal(url[:200])}{'…' if len(url) > 200 else ''}'" if isinstance(url, str)
                        else f"a {type(url).__name__}")
                raise UnscorableUrlError(f"cannot score URL {i} ({what}): {error}")
            fed.append(text)
        return self._run(fed)[1]

    def score(self, urls: Sequence[str]) -> list[UrlScore]:
        """Score ``urls`` in input order; a URL the client refuses (:func:`prepare_url`: not text,
        not encodable as UTF-8, e.g. a lone surrogate from undecodable input bytes, or containing
        a NUL) gets an ``error`` instead of sinking the batch."""
        prepared = [prepare_url(url) for url in urls]
        labels, proba = self._run([normalised for normalised, _ in prepared if normalised is not None])
        scored = zip(labels, proba[:, 1])
        results = []
        for url, (normalised, error) in zip(urls, prepared):
            if normalised is None:  # then error says why
                results.append(UrlScore(url if isinstance(url, str) else repr(url), error=error))
            else:
                label, prob = next(scored)
                results.append(UrlScore(url, label=int(label), p_phishing=float(prob)))
        return results
