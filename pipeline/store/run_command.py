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
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline import paths
from pipeline.common import ExitCode, PipelineError, terminal, write_json
from pipeline.review.remote import diagnose
from pipeline.store import outputs
from pipeline.store.dvc import DvcError, changed_paths, remote_info, repro

log = logging.getLogger(__name__)


@dataclass
class RunFacts:
    remote: str | None
    restored: list[str]          # stored outputs that came from the DVC cache or remote
    re_ran: list[str]            # stages computed on this machine
    model_trained: bool          # the stage that writes the model re-ran
    verified: list[str]          # stored outputs whose MD5 equals dvc.lock's, after the run
    pushed: bool
    changed_in_git: list[str]    # tracked files this run changed (dvc.lock, metrics ...): commit them
    repro_seconds: float | None
    lock_sha256: str             # dvc.lock as this run left it: a later reader checks the record still applies


def model_stages(root: Path) -> set[str]:
    """The stages that fit a model: the held-out model (evaluated) and the final fit (released)."""
    lock = outputs.lock_outputs(outputs.read_lock(root))
    return {lock[p.as_posix()].stage for p in (paths.MODEL, paths.FINAL_MODEL) if p.as_posix() in lock}


def run_job(root: Path, push: bool = True, run_cache: bool = False, echo=sys.stdout) -> RunFacts:
    """Pull, reproduce what is missing, verify, push; the facts of what happened."""
    remote, _ = remote_info(root)
    run_cache = run_cache and outputs.remote_inside(root) is None  # never commit DVC's run history to git
    log.info("run: dvc pull (raw data and stored outputs, from the remote `%s`) ...", remote)
    try:
        pulled = outputs.pull_outputs(root, run_cache=run_cache)
    except DvcError as exc:  # say why in words (credentials, plugin, unpushed data), as the review does
        diagnosis = diagnose(str(exc), *remote_info(root), os.environ, from_fork=False)
        raise PipelineError(f"{diagnosis.title}\n{diagnosis.advice}\n\n{exc}") from None
    if pulled.not_stored:
        log.info("run: not in the remote, so computed here: %s", ", ".join(pulled.not_stored))
    log.info("run: dvc repro ...")
    reproduced = repro(root, root / paths.RUN_DIR / "repro.log", echo=echo, args=("--pull",) if run_cache else ())
    if reproduced.returncode != 0:
        raise PipelineError(f"`dvc repro` failed (log: {paths.RUN_DIR / 'repro.log'})")
    verified, problems = outputs.verify_stored(root)
    clean, status = outputs.status_clean(root)
    if problems or not clean:
        raise PipelineError("the outputs are not what dvc.lock records:\n  " + "\n  ".join(problems or [status]))
    ran = reproduced.ran()
    computed = outputs.stored_by(root, ran)
    did_push = push and bool(computed)
    if did_push:
        log.info("run: dvc push (what this run computed) to `%s` ...", remote)
        outputs.push_outputs(root, run_cache=run_cache)
    kept = set(pulled.restored) - set(computed)  # restored, then not recomputed
    return RunFacts(remote, sorted(kept), ran, bool(model_stages(root) & set(ran)), verified, did_push,
                    changed_paths(root, untracked=False), reproduced.seconds, outputs.lock_sha256(root))


def summary(facts: RunFacts) -> list[str]:
    """What a person reads at the end of ``make run``."""
    def names(items):
        return ", ".join(terminal(i) for i in items) or "nothing"

    lines = [f"run: restored from the DVC cache/remote `{terminal(facts.remote)}`: {names(facts.restored)}",
             f"run: re-ran on this machine: {names(facts.re_ran)}",
             "run: model trained here: " + ("yes (its outputs were not stored for this dvc.lock)" if facts.model_trained
                                            else "no (restored, the bytes the review evaluated)"),
             f"run: verified against dvc.lock (MD5): {len(facts.verified)} stored outputs; `dvc status` clean"]
    if facts.pushed:
        lines.append(f"run: pushed what was computed to `{terminal(facts.remote)}`")
    if facts.changed_in_git:
        lines.append(f"run: changed tracked files (commit them, with dvc-store/ if that is the remote): "
                     f"{names(facts.changed_in_git)}")
    else:
        lines.append("run: git status: no tracked file changed")
    return lines


def _cmd_run(args: argparse.Namespace) -> int:
    facts = run_job(Path("."), push=not args.no_push, run_cache=args.run_cache)
    write_json(paths.RUN_FACTS, asdict(facts))
    print("\n".join(summary(facts)))
    return ExitCode.OK


def _cmd_store(args: argparse.Namespace) -> int:
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


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="the main job: restore stored outputs, reproduce the rest, verify, store",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-push", action="store_true", help="do not push what this run computed to the remote")
    p.add_argument("--run-cache", action="store_true",
                   help="also pull and push DVC's run-cache (CI with a shared object store: a later job restores "
                        "a run whose dvc.lock was never committed); ignored for a remote inside the repository")
    p.set_defaults(func=_cmd_run)

    q = subparsers.add_parser("store", help="push the outputs a review evaluated (and the run-cache) to the DVC remote",
                              description="CI, after `dvc repro`: store the outputs this run evaluated, content-"
                                          "addressed, where the release job restores them. A remote inside the "
                                          "repository (dvc-store/) needs nothing: its objects are committed.")
    q.set_defaults(func=_cmd_store)
