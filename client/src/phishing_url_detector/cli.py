"""``phishing-url-detector fetch|score|verify``: the product's command line.

Exit codes: 0 ok, 1 network / other errors (or some URLs could not be scored),
2 verification failure (or a command-line usage error).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from phishing_url_detector import batch, provenance
from phishing_url_detector import contract as C
from phishing_url_detector.errors import LoaderError, VerificationError
from phishing_url_detector.exit_codes import ExitCode
from phishing_url_detector.fetch import CACHE_ENV, FetchOptions, fetch, resolve_model
from phishing_url_detector.releases import (
    REPO_ENV,
    VerifiedModel,
    configured_repo,
    verify_local_model,
    verify_release_dir,
)
from phishing_url_detector.text import terminal

if TYPE_CHECKING:  # numpy and onnxruntime: imported when URLs are scored, not by `--help`
    from phishing_url_detector.detector import Detector, UrlScore

PROG = "phishing-url-detector"
Command = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # what add_subparsers() returns


class ModelSummary(TypedDict):
    """The model a command used, as ``--json`` prints it."""

    source: str
    path: str
    sha256: str
    version: str | None
    threshold: float | None
    target_fpr: float | None
    verified: bool
    from_cache: bool


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


def _model_summary(model: VerifiedModel) -> ModelSummary:
    return {"source": model.source, "path": str(model.onnx_path), "sha256": model.sha256,
            "version": model.version, "threshold": model.threshold, "target_fpr": model.target_fpr,
            "verified": model.verified, "from_cache": model.from_cache}


def _fetch_kwargs(args: argparse.Namespace) -> FetchOptions:
    return {"api_url": args.api_url, "timeout": args.timeout, "trusted_root": args.trusted_root,
            "allow_unverified": args.allow_unverified}


def exit_on_error(command: Command) -> Command:
    """Print a loader failure as one line and return its exit code (2 = verification, 1 = other)."""
    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except LoaderError as exc:
            print(f"error: {terminal(exc, newlines=True)}", file=sys.stderr)
            return exc.exit_code
        except OSError as exc:  # e.g. an unwritable cache directory
            print(f"error: {terminal(exc, newlines=True)}", file=sys.stderr)
            return ExitCode.ERROR
    return wrapper


def _print_model(model: VerifiedModel, heading: str) -> None:
    threshold = f"{model.threshold:.4f}" if model.threshold is not None else "n/a"
    fpr = f" (target FPR {model.target_fpr})" if model.target_fpr is not None else ""
    print(terminal(heading))
    print(f"  directory: {terminal(model.directory)}")
    print(f"  model:     {terminal(model.onnx_path)}")
    print(f"  sha256:    {terminal(model.sha256)}")
    print(f"  version:   {terminal(model.version)}")
    print(f"  threshold: {threshold}{terminal(fpr)}")


@exit_on_error
def cmd_fetch(args: argparse.Namespace) -> int:
    repo = configured_repo(args.repo)
    if not repo:
        raise LoaderError(f"pass --repo OWNER/NAME or set {REPO_ENV}")
    model = fetch(repo, args.tag, args.cache_dir, **_fetch_kwargs(args))
    if args.json:
        print(json.dumps(_model_summary(model), indent=2))
    else:
        _print_model(model, f"verified {model.source} ({'from cache' if model.from_cache else 'downloaded'})")
    return ExitCode.OK


@exit_on_error
def cmd_score(args: argparse.Namespace) -> int:
    from phishing_url_detector.detector import Detector  # lazy: see TYPE_CHECKING

    if args.output:
        return _score_to_file(args)
    batch_only = [name for name, value, default in (("--input-format", args.input_format, None),
                  ("--url-column", args.url_column, "url"), ("--workers", args.workers, None),
                  ("--parallel", args.parallel, "processes")) if value != default]
    if batch_only:
        print(f"error: {', '.join(batch_only)} only apply with --output", file=sys.stderr)
        return ExitCode.USAGE
    urls = _gather_urls(args)
    if not urls:
        raise LoaderError("no URLs to score: give them as arguments, with --file PATH, or '-' for stdin")
    model = resolve_model(args.model, repo=args.repo, cache_dir=args.cache_dir, **_fetch_kwargs(args))
    results = _score_capped(Detector(model), urls)
    failed = [r for r in results if r.error is not None]
    if args.json:
        rows = [{"url": r.url, "error": r.error} if r.error is not None else
                {"url": r.url, "verdict": r.verdict, "label": r.label, "p_phishing": r.p_phishing}
                for r in results]
        print(json.dumps({"model": _model_summary(model), "results": rows}, indent=2))
    else:
        for r in results:
            if r.error is None:
                print(f"{r.verdict:<10}  {r.p_phishing:.4f}  {terminal(r.url)}")
        for r in failed:
            print(f"error: cannot score '{terminal(r.url)}': {terminal(r.error)}", file=sys.stderr)
    return ExitCode.ERROR if failed else ExitCode.OK


def _score_capped(detector: Detector, urls: list[str]) -> list[UrlScore]:
    """:meth:`Detector.score`, but a URL over ``batch.MAX_URL_CHARS`` is an error, as in ``--output``
    (the same URL gets the same outcome whichever way it comes in; a huge one would cost seconds)."""
    from phishing_url_detector.detector import UrlScore  # lazy: see TYPE_CHECKING

    refused = {i: why for i, url in enumerate(urls) if (why := batch.too_long(url))}
    scored = iter(detector.score([url for i, url in enumerate(urls) if i not in refused]))
    return [UrlScore(url, error=refused[i]) if i in refused else next(scored) for i, url in enumerate(urls)]


def _score_to_file(args: argparse.Namespace) -> int:
    """``score --file IN --output OUT``: streamed, on every core (phishing_url_detector.batch)."""
    if not args.file or args.urls:
        raise LoaderError("--output scores --file IN ('-' = stdin) only; give no URL arguments")
    batch.check_paths(args.file, Path(args.output))  # before fetching anything
    if args.workers is not None and args.workers < 1:
        raise LoaderError(f"--workers must be at least 1, not {args.workers}")
    model = resolve_model(args.model, repo=args.repo, cache_dir=args.cache_dir, **_fetch_kwargs(args))
    try:
        summary = batch.score_file(model, args.file, args.output, url_column=args.url_column,
                                   fmt=args.input_format, workers=args.workers, parallel=args.parallel,
                                   progress=_progress)
    except KeyboardInterrupt:
        print("interrupted: workers stopped, no output written", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except batch.Stopped as exc:
        print(f"{exc}: workers stopped, no output written", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps({"model": _model_summary(model), "batch": dataclasses.asdict(summary)}, indent=2))
    else:
        rate = summary.rows / summary.seconds if summary.seconds else 0.0
        print(f"scored {summary.rows:,} rows ({summary.errors:,} errors) in {summary.seconds:.1f} s "
              f"({rate:,.0f} rows/s, {summary.workers} {summary.parallel}) -> {terminal(summary.output)}")
    return ExitCode.ERROR if summary.errors else ExitCode.OK


def _progress(summary: batch.Summary) -> None:
    print(f"  {summary.rows:,} rows scored ({summary.errors:,} errors) in {summary.seconds:.0f} s",
          file=sys.stderr, flush=True)


_ONNX_NAME = re.compile(re.escape(C.MODEL_NAME) + r"-(\d+\.\d+\.\d+)\.onnx")


def verify_path(path: Path, policy: provenance.Policy | None = None, allow_unverified: bool = False) -> VerifiedModel:
    """A release directory (its one ``phishing-url-detector-X.Y.Z.onnx`` names the version), or an
    ONNX file with SHA256SUMS / manifest.json beside it (a file with neither is refused); then the
    provenance of its ONNX file and SHA256SUMS under ``policy``."""
    if path.is_dir():
        versions = [m.group(1) for p in sorted(path.iterdir()) if (m := _ONNX_NAME.fullmatch(p.name))]
        if len(versions) != 1:
            raise VerificationError(f"{path}: expected one {C.MODEL_NAME}-X.Y.Z.onnx, found {len(versions)}")
        model = verify_release_dir(path, versions[0])
    else:
        model = verify_local_model(path, warn=lambda _message: None, allow_unverified=True)  # refused below
        if not model.verified:
            raise VerificationError(f"{path}: no SHA256SUMS or manifest.json beside it; nothing to verify against")
    return provenance.check_model(model, policy, allow_unverified=allow_unverified)


@exit_on_error
def cmd_verify(args: argparse.Namespace) -> int:
    policy = provenance.policy_for(configured_repo(args.repo), args.trusted_root)
    model = verify_path(Path(args.path), policy, args.allow_unverified)
    if args.json:
        print(json.dumps(_model_summary(model), indent=2))
    else:
        _print_model(model, f"verified {model.source}")
    return ExitCode.OK


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
    _add_provenance_args(parser)


def _add_provenance_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trusted-root", metavar="FILE",
                        help="sigstore trusted_root.json to verify provenance bundles with, e.g. offline or for "
                             f"GitHub's own Sigstore instance (default: ${provenance.TRUSTED_ROOT_ENV}, else the "
                             "Sigstore public-good root shipped with the sigstore package)")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="skip the provenance check (and accept a model with no sidecar files): for local "
                             "development builds only; warns on every run")


def _add_batch_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "batch scoring (--file IN --output OUT)", textwrap.fill(
            "Stream --file of any size in constant memory, on every core, into OUT: CSV (.csv, .csv.gz) or "
            "Parquet (.parquet), columns row, url, score, verdict, model_version, error. 'row' is the input "
            "line (text) or data row (CSV: row n is line n + 1, one record per line; Parquet). A row that "
            f"cannot be scored (a broken CSV line: stray quote, embedded newline; a URL over {batch.MAX_URL_CHARS:,} "
            "characters; undecodable bytes) is a row with its error. OUT appears only when complete "
            "(written as OUT.partial; Ctrl-C leaves none). Parquet needs the [parquet] extra (pyarrow).", 78))
    group.add_argument("--output", metavar="OUT", help="write the results to OUT instead of printing them")
    group.add_argument("--input-format", choices=batch.INPUT_FORMATS,
                       help="format of --file (default: from its extension, .gz looked through: .csv, "
                            ".parquet, anything else one URL per line)")
    group.add_argument("--url-column", default="url", metavar="NAME",
                       help="the CSV / Parquet column holding the URLs (default: %(default)s)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="processes (or onnxruntime threads) to score with (default: every core)")
    group.add_argument("--parallel", choices=batch.PARALLEL, default=batch.DEFAULT_PARALLEL,
                       help="'processes': a model per worker process; 'threads': one model run by N threads at "
                            "once; 'intra-op': one model, N onnxruntime threads per batch (scores may differ from "
                            "1 worker in the last float32 bit). Default: %(default)s, the fastest in "
                            "benchmarks/RESULTS.md")


ENV_HELP = f"""\
environment:
  GITHUB_TOKEN         sent as a Bearer token to the GitHub API only (never to the
                       storage host downloads redirect to); raises the rate limit and
                       gives access to private repositories
  GITHUB_API_URL       API base URL, e.g. for GitHub Enterprise
  {REPO_ENV}  default for --repo
  PHISHING_MODEL_CACHE default for --cache-dir
  PHISHING_MODEL_TRUSTED_ROOT default for --trusted-root

exit codes: {ExitCode.OK:d} ok; {ExitCode.ERROR:d} network or other error; {ExitCode.VERIFICATION:d} verification failed (or usage error)
"""


def _parser(subparsers: Subparsers, name: str, help_text: str, description: str,
            examples: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(name, help=help_text, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=textwrap.fill(description, 78),
                                 epilog=f"example{'s' if examples.count(chr(10)) > 1 else ''}:\n{examples}\n"
                                        + ENV_HELP)


def register(subparsers: Subparsers, prog: str = PROG) -> None:
    """Add ``fetch``, ``score`` and ``verify`` to a command line (this package's, or the pipeline's)."""
    p = _parser(subparsers, "fetch", "download and verify a model release from GitHub",
                "Download a model release, verify every file against SHA256SUMS and the manifest (model "
                f"sha256 and size, contract digest, contract major {C.CONTRACT_MAJOR}) and its provenance (the "
                "Sigstore bundles of the ONNX file and SHA256SUMS must show they were built by "
                ".github/workflows/release.yml of --repo on refs/heads/main), and keep it in the cache. "
                "Nothing that fails verification is kept.",
                f"  {prog} fetch --repo acme/phishing-models --tag model-v1.2.0\n")
    p.add_argument("--tag", default="latest", metavar="TAG", help="model-vMAJOR.MINOR.PATCH or 'latest' (default: %(default)s)")
    _add_source_args(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_fetch)

    p = _parser(subparsers, "score", "score URLs with a verified model (local file or release)",
                "Score URLs as phishing or legitimate. The model is verified before it is loaded: a release is "
                "fetched and verified; a local file is verified against SHA256SUMS / manifest.json and the "
                "provenance bundles of the file and of SHA256SUMS (which must list manifest.json) beside it "
                f"(--repo or ${REPO_ENV} names the "
                "repository that must have built it; --allow-unverified for a local development build). "
                "Prints verdict, P(phishing) with 4 decimals and the URL, one line per URL, in input order.",
                f"  {prog} score --allow-unverified --model dist/phishing-url-detector.onnx http://example.com/\n"
                f"  {prog} score --model latest --repo acme/phishing-models --file urls.txt\n"
                f"  cat urls.txt | {prog} score --model model-v1.2.0 --json -\n"
                f"  {prog} score --model latest --file urls.csv.gz --url-column link --output scores.parquet\n")
    p.add_argument("--model", required=True, metavar="PATH_OR_TAG",
                   help="path to an .onnx file, or a release: model-vX.Y.Z or 'latest' (an existing file of that name wins)")
    _add_source_args(p)
    p.add_argument("--file", metavar="PATH", help="read URLs from PATH, one per line, blank lines skipped ('-' = stdin)")
    p.add_argument("--json", action="store_true", help="print results as JSON (with --output: the run's summary)")
    p.add_argument("urls", nargs="*", metavar="URL", help="URLs to score ('-' = read stdin)")
    _add_batch_args(p)
    p.set_defaults(func=cmd_score)

    p = _parser(subparsers, "verify", "verify a release directory or a model file, without loading it",
                "Check a downloaded release directory (every file against SHA256SUMS, the manifest against "
                "the ONNX file and this package's contract) or an ONNX file against the SHA256SUMS / "
                "manifest.json beside it, then the provenance bundles of the ONNX file and SHA256SUMS against "
                f"--repo's release workflow on main. Exit {ExitCode.VERIFICATION:d} when anything does not match.",
                f"  {prog} verify --repo acme/phishing-models ~/Downloads/model-v1.2.0/\n")
    p.add_argument("path", help="release directory, or an .onnx file with its sidecar files")
    p.add_argument("--repo", metavar="OWNER/NAME",
                   help=f"repository whose release workflow must have built it (default: ${REPO_ENV})")
    _add_provenance_args(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_verify)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Score URLs with a verified phishing-URL model.")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
