"""``python -m pipeline release``: build the versioned release directory the release workflow uploads
(:mod:`pipeline.release.build`; its docstring is the command's help), report it, and hand the workflow
its outputs (``--github-output``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from phishing_url_detector.releases import model_asset_name
from pipeline.commands import help_text
from pipeline.common import ExitCode, terminal
from pipeline.release import build
from pipeline.release.build import DEFAULT_OUT, BuildResult
from pipeline.release.inputs import ReleaseError, git_tags
from pipeline.release.versioning import latest_version


def github_outputs(result: BuildResult) -> dict[str, str]:
    """The KEY=VALUE pairs the workflow's later steps read (empty strings when there is no release)."""
    onnx = (result.directory / model_asset_name(result.version)).as_posix() \
        if result.release and result.directory and result.version else ""
    return {"release": "true" if result.release else "false", "tag": result.tag or "",
            "version": result.version or "", "previous-tag": result.previous_tag or "",
            "dir": result.directory.as_posix() if result.directory else "",
            "notes": result.notes.as_posix() if result.notes else "",
            "onnx": onnx,
            "wheel": result.wheel or "",
            "outputs": result.origin.path if result.origin else "",
            "commit": result.origin.release_commit if result.origin else "",
            "bundle": result.origin.bundle or "" if result.origin else ""}


def report(result: BuildResult) -> None:
    """What a person reads: the decision, where the outputs came from, every asset with its digest."""
    if not result.release or result.origin is None:
        print(f"release: no release: {terminal(result.reason)}")
        return
    print(f"release: {result.tag} ({result.bump}: {terminal(result.reason)})")
    print(f"release: outputs {result.origin.path}; release commit {result.origin.release_commit}"
          + (f"; bot commit bundled in {result.origin.bundle}" if result.origin.bundle else ""))
    print(f"release: verified {terminal(result.directory)}/ with the loader's checks:")
    for f in result.files:
        print(f"  {f['sha256']}  {f['size_bytes']:>10}  {terminal(f['name'])}")
    print(f"release: {result.wheel} installed alone into a fresh venv, verified and scored with the release")
    print(f"release: notes in {result.notes}")


def run(args: argparse.Namespace) -> int:
    if args.latest_tag:
        latest = latest_version(git_tags(Path(".")) if args.tags is None else args.tags)
        if latest:
            print(latest.tag)
        return ExitCode.OK
    try:
        result = build.build(Path("."), Path(args.out), Path(args.previous_dir) if args.previous_dir else None,
                             args.tags, args.allow_dirty, args.commit_outputs)
    except ReleaseError as exc:
        print(f"release: error: {terminal(exc, newlines=True)}", file=sys.stderr)
        return ExitCode.ERROR
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in github_outputs(result).items())
    report(result)
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("release", help="build the versioned release directory the workflow uploads",
                              description=help_text(build.__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                   help="write DIR/release/ (the assets), DIR/release-notes.md and DIR/release.json "
                        "(default: %(default)s)")
    p.add_argument("--previous-dir", metavar="DIR",
                   help="the latest model release, downloaded (gh release download TAG --dir DIR); "
                        "required when a model-v* tag exists")
    p.add_argument("--tags", nargs="*", metavar="TAG",
                   help="the repository's tags (default: git tag --list 'model-v*'); '--tags' alone = none")
    p.add_argument("--allow-dirty", action="store_true",
                   help="build even if dvc.lock or the committed outputs differ from HEAD "
                        "(git_commit is then recorded as <sha>-dirty)")
    p.add_argument("--github-output", metavar="FILE",
                   help="append release, tag, version, previous-tag, dir, notes, onnx, wheel as KEY=VALUE lines "
                        "(the workflow passes $GITHUB_OUTPUT)")
    p.add_argument("--commit-outputs", action="store_true",
                   help="the release job: when dvc.lock or the outputs changed on this runner (trained here), "
                        "commit them as the release bot and release that commit; tag the release commit and "
                        "bundle a bot commit for the publish job (release-commit.bundle)")
    p.add_argument("--latest-tag", action="store_true",
                   help="only print the latest model-vX.Y.Z tag (nothing if none) and exit")
    p.set_defaults(func=run)
