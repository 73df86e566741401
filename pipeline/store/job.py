"""The main job (``make run``): restore what the DVC remote stores, compute only what is missing, check
every stored output against dvc.lock, store what was computed (the steps: ``pipeline/commands/run.py``)."""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline import paths
from pipeline.common import PipelineError, terminal
from pipeline.store import outputs
from pipeline.store.dvc import DvcError, Echo, changed_paths, remote_info, repro
from pipeline.store.remote import diagnose

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


def run_job(root: Path, push: bool = True, run_cache: bool = False, echo: Echo = sys.stdout) -> RunFacts:
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
    def names(items: list[str]) -> str:
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
