"""The product's model loader: fetch a release, verify it, then score URLs.

A product must never run a model it cannot vouch for, so nothing is handed to
onnxruntime until every file has been checked: each against ``SHA256SUMS``,
the ONNX bytes against the manifest's sha256 and size, the manifest's contract
against its own digest, and its ``contract_major`` against the MAJOR this
loader was built for (``pipeline.contract.CONTRACT_MAJOR``). Verified releases
are cached under ``<cache>/<sha256 of the onnx>/<version>/`` and re-verified
on every use, so a corrupted cache is noticed and healed rather than trusted.

CLI: ``python -m pipeline fetch ...`` and ``python -m pipeline score ...``.
Exit codes: 0 ok, 1 network / other errors (or some URLs could not be
scored), 2 verification failure (or a command-line usage error).
"""
from __future__ import annotations

import argparse
import functools
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from pipeline import contract as C
from pipeline import github_releases as gh
from pipeline.release.versioning import parse_tag

SUMS_FILE = "SHA256SUMS"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "MODEL_CARD.md"
METRICS_FILE = "metrics.json"
REPO_ENV = "PHISHING_MODEL_REPO"
CACHE_ENV = "PHISHING_MODEL_CACHE"
BATCH = 1024

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SUMS_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


# -- errors -------------------------------------------------------------------
class LoaderError(Exception):
    """Anything that stops the loader; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class FetchError(LoaderError):
    """The release could not be obtained (network, HTTP status, short download)."""


class VerificationError(LoaderError):
    """The files were obtained but cannot be vouched for; never load them."""

    exit_code = 2


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


# -- release layout (shared with the release builder) --------------------------
def model_asset_name(version: str) -> str:
    """Release asset name of the ONNX file: ``phishing-url-detector-1.2.0.onnx``."""
    return f"{C.MODEL_NAME}-{version}.onnx"


def release_asset_names(version: str) -> list[str]:
    """Every asset a model release must carry (SHA256SUMS last: it covers the rest)."""
    return [model_asset_name(version), MANIFEST_FILE, CARD_FILE, METRICS_FILE, SUMS_FILE]


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def format_sha256sums(digests: dict[str, str]) -> str:
    """``sha256sum`` format (``<hex>  <name>``), sorted by name, so
    ``sha256sum -c SHA256SUMS`` works on the downloaded release too."""
    return "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))


def write_sha256sums(directory: str | os.PathLike, names: Iterable[str]) -> Path:
    """Hash ``names`` inside ``directory`` and write ``directory/SHA256SUMS``."""
    directory = Path(directory)
    target = directory / SUMS_FILE
    target.write_text(format_sha256sums({n: sha256_file(directory / n) for n in names}),
                      encoding="utf-8")
    return target


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and "\0" not in name


def parse_sha256sums(text: str, source: str = SUMS_FILE) -> dict[str, str]:
    """Parse ``sha256sum`` output strictly: a malformed or path-like line is refused
    rather than skipped, because a skipped line is a file nobody checked."""
    sums: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _SUMS_LINE.fullmatch(line.rstrip("\r"))
        if not match or not _plain_name(match.group(2)):
            raise VerificationError(f"{source}: line {lineno} is not '<sha256>  <file name>': {line!r}")
        digest, name = match.group(1).lower(), match.group(2)
        if name in sums:
            raise VerificationError(f"{source}: {name} is listed twice")
        sums[name] = digest
    if not sums:
        raise VerificationError(f"{source}: lists no files")
    return sums


# -- verification ---------------------------------------------------------------
@dataclass(frozen=True)
class VerifiedModel:
    """A model file that passed verification (or, for a bare local file, that
    the user chose to load unverified: ``verified`` is False then)."""

    onnx_path: Path
    sha256: str
    manifest: dict | None
    source: str
    verified: bool = True
    from_cache: bool = False

    @property
    def directory(self) -> Path:
        return self.onnx_path.parent

    @property
    def version(self) -> str | None:
        return (self.manifest or {}).get("version")

    @property
    def threshold(self) -> float | None:
        return (self.manifest or {}).get("threshold")

    @property
    def target_fpr(self) -> float | None:
        return (self.manifest or {}).get("target_fpr")


def _check_against_sums(directory: Path, sums: dict[str, str], names: Iterable[str],
                        known: dict[str, str]) -> None:
    for name in names:
        path = directory / name
        if name not in sums:
            raise VerificationError(f"{SUMS_FILE} in {directory} does not list {name}; refusing an "
                                    f"unlisted file")
        if not path.is_file():
            raise VerificationError(f"{name} is missing from {directory}")
        actual = known.get(name) or sha256_file(path)
        known[name] = actual
        if actual != sums[name]:
            raise VerificationError(f"{name}: sha256 {actual} does not match the {SUMS_FILE} entry "
                                    f"{sums[name]}; the file was altered or corrupted")


def _load_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise VerificationError(f"{path}: expected a JSON object")
    return manifest


def check_manifest(manifest: dict, onnx_path: Path, onnx_sha256: str, *,
                   expect_file: str | None = None, where: str = MANIFEST_FILE) -> None:
    """Refuse a manifest that does not describe ``onnx_path`` under our contract.

    Order matters for the message a user sees: a different contract MAJOR is
    reported first because it needs a different loader, not a re-download.
    """
    major = manifest.get("contract_major")
    if not isinstance(major, int) or isinstance(major, bool):
        raise VerificationError(f"{where}: missing or non-integer 'contract_major'")
    if major != C.CONTRACT_MAJOR:
        raise VerificationError(
            f"{where}: model contract major is {major} but this loader was built for contract "
            f"major {C.CONTRACT_MAJOR}; use a model-v{C.CONTRACT_MAJOR}.x.y release or a loader "
            f"built for major {major}")
    contract = manifest.get("contract")
    claimed = manifest.get("contract_digest")
    if not isinstance(contract, dict) or not isinstance(claimed, str):
        raise VerificationError(f"{where}: missing 'contract' object or 'contract_digest'")
    actual = C.contract_digest(contract)
    if actual != claimed:
        raise VerificationError(f"{where}: contract_digest {claimed} does not match the digest of its "
                                f"contract {actual}")
    model = manifest.get("model")
    if not isinstance(model, dict):
        raise VerificationError(f"{where}: missing 'model' object")
    if expect_file is not None and model.get("file") != expect_file:
        raise VerificationError(f"{where}: model.file is {model.get('file')!r}, expected {expect_file!r}")
    if model.get("sha256") != onnx_sha256:
        described = f" (it describes {model.get('file')!r})" if model.get("file") != onnx_path.name else ""
        raise VerificationError(f"{onnx_path.name}: sha256 {onnx_sha256} does not match {where} "
                                f"model.sha256 {model.get('sha256')}{described}")
    size = onnx_path.stat().st_size
    if model.get("size_bytes") != size:
        raise VerificationError(f"{onnx_path.name}: size {size} bytes does not match {where} "
                                f"model.size_bytes {model.get('size_bytes')}")
    threshold = manifest.get("threshold")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) \
            or not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise VerificationError(f"{where}: 'threshold' must be a number in [0, 1], got {threshold!r}")
    if claimed != C.contract_digest():
        _warn(f"warning: {where}: contract digest {claimed} differs from this loader's "
              f"{C.contract_digest()} (same major {major}); the graph's inputs/outputs are checked on load")


def verify_release_dir(directory: str | os.PathLike, version: str) -> VerifiedModel:
    """Verify a complete release directory (as downloaded, or before upload).

    Every asset is checked against SHA256SUMS before the manifest is even
    parsed; then the manifest must describe exactly this ONNX file and version.
    """
    directory = Path(directory)
    version = str(version)
    onnx_name = model_asset_name(version)
    sums_path = directory / SUMS_FILE
    if not sums_path.is_file():
        raise VerificationError(f"{SUMS_FILE} is missing from {directory}")
    sums = parse_sha256sums(sums_path.read_text(encoding="utf-8", errors="replace"), str(sums_path))
    known: dict[str, str] = {}
    _check_against_sums(directory, sums, [onnx_name, MANIFEST_FILE, CARD_FILE, METRICS_FILE], known)
    manifest = _load_manifest(directory / MANIFEST_FILE)
    onnx_path = directory / onnx_name
    check_manifest(manifest, onnx_path, known[onnx_name], expect_file=onnx_name)
    if manifest.get("version") != version:
        raise VerificationError(f"{MANIFEST_FILE}: version is {manifest.get('version')!r} but the "
                                f"release is {version}")
    return VerifiedModel(onnx_path, known[onnx_name], manifest, source=str(directory))


def verify_local_model(path: str | os.PathLike, *, warn: Callable[[str], None] = _warn) -> VerifiedModel:
    """Verify a local ONNX file against the SHA256SUMS and/or manifest.json beside it.

    With neither present there is nothing to check against; the model is loaded
    with a warning so a developer can still try an un-released build.
    """
    path = Path(path)
    if not path.is_file():
        raise LoaderError(f"model file {path} not found")
    directory = path.parent
    actual = sha256_file(path)
    sums_path, manifest_path = directory / SUMS_FILE, directory / MANIFEST_FILE
    has_sums, has_manifest = sums_path.is_file(), manifest_path.is_file()
    if has_sums:
        sums = parse_sha256sums(sums_path.read_text(encoding="utf-8", errors="replace"), str(sums_path))
        if path.name not in sums:
            raise VerificationError(f"{sums_path} does not list {path.name}; refusing a model it does "
                                    f"not vouch for")
        # Listed files that are not here are not needed to score; present ones must match.
        present = [n for n in sums if n == path.name or (directory / n).is_file()]
        _check_against_sums(directory, sums, present, {path.name: actual})
    manifest = None
    if has_manifest:
        manifest = _load_manifest(manifest_path)
        check_manifest(manifest, path, actual, where=str(manifest_path))
    if not (has_sums or has_manifest):
        warn(f"warning: no {SUMS_FILE} or {MANIFEST_FILE} beside {path}; loading it UNVERIFIED "
             f"(sha256 {actual})")
    return VerifiedModel(path, actual, manifest, source=str(path), verified=has_sums or has_manifest)


# -- fetching -------------------------------------------------------------------
def default_cache_dir() -> Path:
    """$PHISHING_MODEL_CACHE, else $XDG_CACHE_HOME/phishing-url-detector, else ~/.cache/..."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / C.MODEL_NAME


def fetch(repo: str, tag: str = "latest", cache_dir: str | os.PathLike | None = None, *,
          api_url: str | None = None, token: str | None = None, timeout: float = 30.0,
          retries: int = 3, backoff: float = 1.0, warn: Callable[[str], None] = _warn) -> VerifiedModel:
    """Download (or reuse from cache) and verify one model release.

    ``tag`` is ``model-vX.Y.Z`` or ``latest``. ``api_url`` defaults to
    $GITHUB_API_URL or https://api.github.com; ``token`` to $GITHUB_TOKEN.
    Everything is verified in a staging directory before it enters the cache.
    """
    if not _REPO.fullmatch(repo or ""):
        raise LoaderError(f"repository must look like OWNER/NAME, got {repo!r}")
    if tag != "latest" and parse_tag(tag) is None:
        raise LoaderError(f"tag must be 'latest' or look like model-vMAJOR.MINOR.PATCH, got {tag!r}")
    try:
        client = gh.GitHubReleases(api_url, token, timeout=timeout, retries=retries, backoff=backoff)
        release = client.get_release(repo, tag)
    except gh.GitHubError as exc:
        raise FetchError(str(exc)) from None
    tag_name = release.get("tag_name")
    version = parse_tag(tag_name) if isinstance(tag_name, str) else None
    if version is None:
        raise FetchError(f"release {tag} of {repo} has tag {tag_name!r}, which is not a "
                         f"model-vMAJOR.MINOR.PATCH release; pass an explicit --tag")
    if tag != "latest" and tag_name != tag:
        raise VerificationError(f"asked for release {tag} of {repo} but GitHub returned {tag_name}")
    label = f"{repo}@{tag_name}"
    assets: dict[str, dict] = {}
    for asset in release["assets"]:
        if isinstance(asset, dict) and isinstance(asset.get("name"), str):
            assets.setdefault(asset["name"], asset)
    needed = release_asset_names(str(version))
    missing = [n for n in needed if n not in assets]
    if missing:
        raise VerificationError(f"release {tag_name} of {repo} is missing asset(s): "
                                f"{', '.join(missing)}; refusing an incomplete release")

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        try:
            client.download_asset(assets[SUMS_FILE], staging / SUMS_FILE)
            sums_bytes = (staging / SUMS_FILE).read_bytes()
            sums = parse_sha256sums(sums_bytes.decode("utf-8", "replace"), f"{SUMS_FILE} of {label}")
            onnx_name = model_asset_name(str(version))
            digest = sums.get(onnx_name)
            if digest is None or not _HEX64.fullmatch(digest):
                raise VerificationError(f"{SUMS_FILE} of {label} does not list {onnx_name}")
            target = cache / digest / str(version)
            if target.is_dir():
                try:
                    if (target / SUMS_FILE).read_bytes() != sums_bytes:
                        raise VerificationError(f"cached {SUMS_FILE} differs from the release's")
                    cached = verify_release_dir(target, str(version))
                    return dataclasses.replace(cached, source=label, from_cache=True)
                except (VerificationError, OSError) as exc:
                    warn(f"warning: cached copy in {target} failed verification ({exc}); downloading again")
                    shutil.rmtree(target, ignore_errors=True)
            for name in needed:
                if name != SUMS_FILE:
                    client.download_asset(assets[name], staging / name)
        except gh.GitHubError as exc:
            raise FetchError(str(exc)) from None
        verified = verify_release_dir(staging, str(version))
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            staging.rename(target)
        except OSError:  # another process cached it first: use theirs, verified
            return dataclasses.replace(verify_release_dir(target, str(version)), source=label)
        return dataclasses.replace(verified, onnx_path=target / onnx_name, source=label)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_release_ref(model: str) -> bool:
    """True when ``--model`` names a release (``latest`` / ``model-vX.Y.Z``) and no such
    local file exists; an existing file always wins, so paths are never surprising."""
    return (model == "latest" or parse_tag(model) is not None) and not os.path.exists(model)


def resolve_model(model: str, *, repo: str | None = None, cache_dir: str | os.PathLike | None = None,
                  **fetch_kwargs) -> VerifiedModel:
    """``--model`` semantics: a release reference is fetched (repo from the argument or
    $PHISHING_MODEL_REPO); anything else is a local path verified against its sidecars."""
    if is_release_ref(model):
        repo = repo or os.environ.get(REPO_ENV)
        if not repo:
            raise LoaderError(f"--model {model} names a release: pass --repo OWNER/NAME or set {REPO_ENV}")
        return fetch(repo, model, cache_dir, **fetch_kwargs)
    return verify_local_model(model)


# -- scoring ----------------------------------------------------------------------
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


class Detector:
    """A verified model in onnxruntime, scoring URLs exactly as the contract says."""

    def __init__(self, model: VerifiedModel):
        import onnxruntime as ort  # deferred: `fetch` and `--help` should not pay for it

        self.model = model
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(model.onnx_path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise LoaderError(f"{model.onnx_path}: onnxruntime cannot load it ({exc})") from None
        self._check_signature()

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

    def score(self, urls: Sequence[str]) -> list[UrlScore]:
        """Score ``urls`` in input order; a URL that cannot be fed to the model
        (not text, or not encodable as UTF-8, e.g. a lone surrogate from
        undecodable input bytes) gets an ``error`` instead of sinking the batch."""
        import numpy as np

        results: list[UrlScore | None] = [None] * len(urls)
        good: list[tuple[int, str]] = []
        for i, url in enumerate(urls):
            if not isinstance(url, str):
                results[i] = UrlScore(repr(url), error="not a string")
                continue
            normalised = C.normalise_url(url)
            try:
                normalised.encode("utf-8")
            except UnicodeEncodeError as exc:
                results[i] = UrlScore(url, error=f"not valid UTF-8 text ({exc.reason} at position "
                                                 f"{exc.start})")
                continue
            good.append((i, normalised))
        for start in range(0, len(good), BATCH):
            batch = good[start:start + BATCH]
            feed = np.array([u for _, u in batch], dtype=object).reshape(-1, 1)
            try:
                labels, proba = self.session.run([C.LABEL_OUTPUT, C.PROBA_OUTPUT], {C.INPUT_NAME: feed})
            except Exception as exc:  # onnxruntime raises its own exception types
                raise LoaderError(f"{self.model.onnx_path.name}: scoring failed ({exc})") from None
            labels, proba = np.asarray(labels), np.asarray(proba)
            if labels.shape != (len(batch),) or proba.shape != (len(batch), 2):
                raise VerificationError(f"{self.model.onnx_path.name}: output shapes {labels.shape} and "
                                        f"{proba.shape} violate the contract for {len(batch)} inputs")
            for (i, _), label, p in zip(batch, labels, proba[:, 1]):
                results[i] = UrlScore(urls[i], label=int(label), p_phishing=float(p))
        return results  # type: ignore[return-value]


# -- CLI ----------------------------------------------------------------------------
def _printable(text: str) -> str:
    """Lone surrogates cannot be written to a UTF-8 stream; show the original
    undecodable bytes (surrogateescape) as ``\\xff``, anything else as ``\\udXXX``."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _decode_lines(data: bytes) -> list[str]:
    # surrogateescape: an undecodable line becomes a per-URL error, not a crash
    text = data.decode("utf-8-sig", "surrogateescape")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def _stdin_bytes() -> bytes:
    stream = getattr(sys.stdin, "buffer", None)
    return stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")


def _gather_urls(args: argparse.Namespace) -> list[str]:
    urls: list[str] = []
    stdin_used = False
    for url in args.urls:
        if url == "-":
            if not stdin_used:
                urls.extend(_decode_lines(_stdin_bytes()))
                stdin_used = True
        else:
            urls.append(url)
    if args.file:
        if args.file == "-":
            if not stdin_used:
                urls.extend(_decode_lines(_stdin_bytes()))
        else:
            try:
                urls.extend(_decode_lines(Path(args.file).read_bytes()))
            except OSError as exc:
                raise LoaderError(f"cannot read --file {args.file}: {exc.strerror}") from None
    return urls


def _model_summary(model: VerifiedModel) -> dict:
    return {"source": model.source, "path": str(model.onnx_path), "sha256": model.sha256,
            "version": model.version, "threshold": model.threshold, "target_fpr": model.target_fpr,
            "verified": model.verified, "from_cache": model.from_cache}


def _fetch_kwargs(args: argparse.Namespace) -> dict:
    return {"api_url": args.api_url, "timeout": args.timeout}


def _exit_on_error(command):
    """Print a loader failure as one line and return its exit code (2 = verification, 1 = other)."""
    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except LoaderError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except OSError as exc:  # e.g. an unwritable cache directory
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return wrapper


@_exit_on_error
def _cmd_fetch(args: argparse.Namespace) -> int:
    repo = args.repo or os.environ.get(REPO_ENV)
    if not repo:
        raise LoaderError(f"pass --repo OWNER/NAME or set {REPO_ENV}")
    model = fetch(repo, args.tag, args.cache_dir, **_fetch_kwargs(args))
    if args.json:
        print(json.dumps(_model_summary(model), indent=2))
        return 0
    threshold = f"{model.threshold:.4f}" if model.threshold is not None else "n/a"
    fpr = f" (target FPR {model.target_fpr})" if model.target_fpr is not None else ""
    print(f"verified {model.source} ({'from cache' if model.from_cache else 'downloaded'})")
    print(f"  directory: {model.directory}")
    print(f"  model:     {model.onnx_path}")
    print(f"  sha256:    {model.sha256}")
    print(f"  version:   {model.version}")
    print(f"  threshold: {threshold}{fpr}")
    return 0


@_exit_on_error
def _cmd_score(args: argparse.Namespace) -> int:
    urls = _gather_urls(args)
    if not urls:
        raise LoaderError("no URLs to score: give them as arguments, with --file PATH, or '-' for stdin")
    model = resolve_model(args.model, repo=args.repo, cache_dir=args.cache_dir, **_fetch_kwargs(args))
    results = Detector(model).score(urls)
    failed = [r for r in results if r.error is not None]
    if args.json:
        rows = [{"url": r.url, "error": r.error} if r.error is not None else
                {"url": r.url, "verdict": r.verdict, "label": r.label, "p_phishing": r.p_phishing}
                for r in results]
        print(json.dumps({"model": _model_summary(model), "results": rows}, indent=2))
    else:
        for r in results:
            if r.error is None:
                print(f"{r.verdict:<10}  {r.p_phishing:.4f}  {_printable(r.url)}")
        for r in failed:
            print(f"error: cannot score '{_printable(r.url)}': {r.error}", file=sys.stderr)
    return 1 if failed else 0


def _add_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", metavar="OWNER/NAME",
                        help=f"GitHub repository holding the model releases (default: ${REPO_ENV})")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help=f"where verified releases are kept, by ONNX sha256 (default: ${CACHE_ENV} "
                             f"or ~/.cache/{C.MODEL_NAME})")
    parser.add_argument("--api-url", metavar="URL",
                        help="GitHub API base URL (default: $GITHUB_API_URL or https://api.github.com)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="per-request network timeout (default: %(default)s)")


_ENV_HELP = """\
environment:
  GITHUB_TOKEN         sent as a Bearer token to the GitHub API only (never to the
                       storage host downloads redirect to); raises the rate limit and
                       gives access to private repositories
  GITHUB_API_URL       API base URL, e.g. for GitHub Enterprise
  PHISHING_MODEL_REPO  default for --repo
  PHISHING_MODEL_CACHE default for --cache-dir

exit codes: 0 ok; 1 network or other error; 2 verification failed (or usage error)
"""


def register(subparsers) -> None:
    """Add the ``fetch`` and ``score`` sub-commands (the product-side tools)."""
    fetch_parser = subparsers.add_parser(
        "fetch", help="download and verify a model release from GitHub",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Download a model release, verify every file against SHA256SUMS and the manifest "
            "(model sha256 and size, contract digest, contract major "
            f"{C.CONTRACT_MAJOR}), and keep it in the cache. Nothing that fails verification "
            "is kept.", 78),
        epilog="example:\n  python -m pipeline fetch --repo acme/phishing-models --tag model-v1.2.0\n\n"
               + _ENV_HELP)
    fetch_parser.add_argument("--tag", default="latest", metavar="TAG",
                              help="model-vMAJOR.MINOR.PATCH or 'latest' (default: %(default)s)")
    _add_source_args(fetch_parser)
    fetch_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    fetch_parser.set_defaults(func=_cmd_fetch)

    score_parser = subparsers.add_parser(
        "score", help="score URLs with a verified model (local file or release)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Score URLs as phishing or legitimate. The model is verified before it is loaded: "
            "a release is fetched and verified; a local file is verified against SHA256SUMS / "
            "manifest.json beside it (without either it loads with a warning). Prints verdict, "
            "P(phishing) with 4 decimals and the URL, one line per URL, in input order.", 78),
        epilog="examples:\n"
               "  python -m pipeline score --model dist/phishing-url-detector.onnx http://example.com/\n"
               "  python -m pipeline score --model latest --repo acme/phishing-models --file urls.txt\n"
               "  cat urls.txt | python -m pipeline score --model model-v1.2.0 --json -\n\n" + _ENV_HELP)
    score_parser.add_argument("--model", required=True, metavar="PATH_OR_TAG",
                              help="path to an .onnx file, or a release: model-vX.Y.Z or 'latest' "
                                   "(an existing file of that name wins)")
    _add_source_args(score_parser)
    score_parser.add_argument("--file", metavar="PATH",
                              help="read URLs from PATH, one per line, blank lines skipped ('-' = stdin)")
    score_parser.add_argument("--json", action="store_true", help="print results as JSON")
    score_parser.add_argument("urls", nargs="*", metavar="URL", help="URLs to score ('-' = read stdin)")
    score_parser.set_defaults(func=_cmd_score)
