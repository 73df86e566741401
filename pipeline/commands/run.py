"""``python -m pipeline run``: the main job (``make run``). Restore what the DVC remote stores,
compute only what is missing, check every stored output against dvc.lock, store what was computed.

1. ``dvc pull --allow-missing``: the raw data and every stored output dvc.lock names.
2. ``dvc repro``: re-runs only the stages whose outputs are missing or out of date. On a fresh
   clone of a commit whose outputs were pushed, that is ``prepare`` alone: nothing is trained.
3. Each stored output's MD5 is compared with dvc.lock, and ``dvc status`` must be clean.
4. ``dvc push`` stores what this run computed. The default remote is ``dvc-store/`` inside the
   repository: commit it together with dvc.lock, so the review and the release restore exactly
   these bytes instead of training again (``--no-push`` to skip).

The summary says what was restored and verified, what was re-run here, and whether a model was
trained; ``build/run/run.json`` keeps it.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from pipeline import paths
from pipeline.commands import help_text
from pipeline.common import ExitCode, write_json
from pipeline.store.job import run_job, summary


def run(args: argparse.Namespace) -> int:
    facts = run_job(Path("."), push=not args.no_push, run_cache=args.run_cache)
    write_json(paths.RUN_FACTS, asdict(facts))
    print("\n".join(summary(facts)))
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="the main job: restore stored outputs, reproduce the rest, verify, store",
                              description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-push", action="store_true", help="do not push what this run computed to the remote")
    p.add_argument("--run-cache", action="store_true",
                   help="also pull and push DVC's run-cache (CI with a shared object store: a later job restores "
                        "a run whose dvc.lock was never committed); ignored for a remote inside the repository")
    p.set_defaults(func=run)
