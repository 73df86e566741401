"""``python -m pipeline store``: CI, after `dvc repro`: store the outputs a review evaluated (and the
run-cache) in the DVC remote, where the release job restores them. A remote inside the repository
(dvc-store/) needs nothing: its objects are committed with the code."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.common import ExitCode, terminal
from pipeline.store import outputs
from pipeline.store.dvc import remote_info


def run(args: argparse.Namespace) -> int:
    root = Path(".")
    remote, url = remote_info(root)
    inside = outputs.remote_inside(root)
    if inside is not None:
        print(f"store: the DVC remote `{terminal(remote)}` is {terminal(inside.as_posix())}/ inside the repository: "
              f"its objects travel in git (the author's `make run` pushed them there), nothing to store from here")
        return ExitCode.OK
    outputs.push_outputs(root, run_cache=True)
    print(f"store: pushed the outputs dvc.lock names, and the run-cache, to `{terminal(remote)}` ({terminal(url)})")
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    q = subparsers.add_parser("store", help="push the outputs a review evaluated (and the run-cache) to the DVC remote",
                              description="CI, after `dvc repro`: store the outputs this run evaluated, content-"
                                          "addressed, where the release job restores them. A remote inside the "
                                          "repository (dvc-store/) needs nothing: its objects are committed.")
    q.set_defaults(func=run)
