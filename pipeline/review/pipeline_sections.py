"""The comment's build sections: how both pipelines ran (dvc.lock, stages, timings) and the ONNX files."""
from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from pipeline import paths
from pipeline.common import MISSING, md_cell, terminal
from pipeline.formatting import count, is_missing, pct
from pipeline.review.cells import names, seconds, short_digest, value_cell
from pipeline.review.payloads import Review
from pipeline.store.dvc import RESTORED

STATUS_TEXT = {"re-ran": "🔄 re-ran", "restored from run-cache": "♻️ restored from run-cache",
               "up to date": "✔️ up to date (outputs from the DVC cache)",
               RESTORED: "📦 restored from the DVC remote (dvc.lock's bytes)"}


# -- 6. pipeline -------------------------------------------------------------------------------

def base_sentence(pulled: Mapping[str, Any], base_run: Mapping[str, Any]) -> str:
    """Whether the base is the model its dvc.lock names (restored) or a re-training (the fallback)."""
    model, took = paths.MODEL.as_posix(), seconds(base_run["seconds"])
    ran = [s for s, status in base_run["stages"].items() if status == "re-ran"]
    if model in (pulled.get("outputs_not_stored") or []):
        return (f"⚠️ **The base was trained again here** ({took}; re-ran {names(ran)}): its outputs are not in "
                f"the DVC remote, so the base numbers come from a re-training, not from the stored model.")
    where = "restored from the DVC remote" if model in (pulled.get("outputs_restored") or []) else "in the DVC cache"
    return (f"Base: the model, ONNX file and plots its `dvc.lock` names were **{where}**, not trained again; "
            f"its worktree re-ran {names(ran)} ({took}).")


def pipeline_section(review: Review) -> list[str]:
    facts = review["pipeline"]
    pr_run, base_run = facts.get("pr"), facts.get("base")
    out = ["### Pipeline", ""]
    stages = facts["stages"]
    if pr_run or base_run:
        out += ["| stage | PR (this run) | base |", "|---|---|---|"]
        stale = set(facts.get("stale_stages") or [])
        for stage in stages:
            if pr_run:
                a = STATUS_TEXT.get(pr_run["stages"].get(stage), MISSING)
            else:
                a = "⚠️ out of date (`dvc status`)" if stage in stale else "✔️ up to date (`dvc status`)"
            b = STATUS_TEXT.get((base_run or {}).get("stages", {}).get(stage), MISSING)
            out.append(f"| {md_cell(stage)} | {a} | {b} |")
        out.append("")
    if pr_run:
        reused = [s for s in stages if pr_run["stages"].get(s) in ("restored from run-cache", "up to date", RESTORED)]
        ran = [s for s in stages if pr_run["stages"].get(s) == "re-ran"]
        out.append(f"`dvc repro` of the PR: {seconds(pr_run['seconds'])}; re-ran {names(ran)}; reused from "
                   f"the DVC cache {names(reused)}.")
    else:
        outdated = facts.get("stale_stages") or []
        out.append("No `dvc repro` log was given (`--repro` or `--repro-log`). "
                   + (f"`dvc status`: **outputs are out of date** for {names(outdated)}; run `dvc repro` first."
                      if outdated else "`dvc status`: outputs are up to date with code, params and data."))
    if base_run:
        out.append(base_sentence(facts.get("base_outputs") or {}, base_run))
    out.append(f"Whole review: {seconds(facts.get('review_seconds'))}.")
    out.append("")
    mismatch = facts.get("lock_mismatch")
    if mismatch:
        files = " ".join(shlex.quote(terminal(f)) for f in facts.get("files_to_commit") or [str(paths.DVC_LOCK)])
        if pr_run:
            out.append("**⚠️ The committed `dvc.lock` does not match what was reproduced here.** The numbers in "
                       "this comment come from the reproduction, not from the committed outputs. Stages that differ:")
        else:
            out.append("**⚠️ The committed `dvc.lock` does not match the working tree's.** Stages that differ:")
        out.append("")
        # each entry of "what" is markdown already: lock_mismatch passes its keys through md_cell
        out += [f"- {md_cell(m['stage'])}: " + ", ".join(m["what"][:6]) + (" …" if len(m["what"]) > 6 else "")
                for m in mismatch]
        out += ["", ("To fix it, reproduce on your branch (merge the base branch first if it moved) and commit "
                "the lock and the small outputs:"), "",
                f"```bash\ndvc repro && git add {files} && git commit -m \"dvc repro\"\n```", ""]
    elif facts.get("lock_checked"):
        out += ["✅ The committed `dvc.lock` matches " + ("what was reproduced." if pr_run else "the working tree's."),
                ""]
    if not facts.get("metrics_consistent", True):
        out += [("⚠️ `metrics.json` does not match the PR model's scores on the test split: the outputs are "
                "stale. Run `dvc repro`."), ""]
    return out


# -- 7. onnx -----------------------------------------------------------------------------------

def onnx_section(review: Review) -> list[str]:
    o = review["onnx"]
    b, p = o["base"], o["pr"]
    out = ["### ONNX model", ""]
    if o.get("contract_changed"):
        out += [(f"**⚠️ The I/O contract changed (digest {short_digest(b.get('contract_digest'), 12)} → "
                f"{short_digest(p.get('contract_digest'), 12)}, contract major {value_cell(b.get('contract_major'))} → "
                f"{value_cell(p.get('contract_major'))}). This is a breaking change for the product: every consumer must be "
                "updated, and the release gets a new MAJOR version.**"), ""]
    else:
        out += ["I/O contract unchanged.", ""]
    out += ["| | base | PR |", "|---|---:|---:|",
            f"| file size (bytes) | {count(b.get('size_bytes'))} | {count(p.get('size_bytes'))} |",
            f"| sha256 | {short_digest(b.get('sha256'), 12)} | {short_digest(p.get('sha256'), 12)} |",
            f"| parity rows | {count(b.get('parity_rows'))} | {count(p.get('parity_rows'))} |",
            f"| parity batch sizes | {_batches(b)} | {_batches(p)} |",
            f"| label agreement | {_agree(b)} | {_agree(p)} |",
            f"| max \\|P_sklearn − P_onnx\\| | {_sci(b.get('max_abs_proba_diff'))} | {_sci(p.get('max_abs_proba_diff'))} |",
            f"| parity tolerance | {_sci(b.get('tolerance'))} | {_sci(p.get('tolerance'))} |",
            f"| contract digest | {short_digest(b.get('contract_digest'), 12)} | {short_digest(p.get('contract_digest'), 12)} |",
            ""]
    return out


def _batches(side: dict) -> str:
    return ", ".join(value_cell(x) for x in side.get("batch_sizes") or []) or MISSING


def _agree(side: dict) -> str:
    return pct(side.get("label_agreement"), 2)


def _sci(x: float | None) -> str:
    """A parity difference or tolerance in scientific notation: ``1.00e-04``."""
    return MISSING if x is None or is_missing(x) else f"{x:.2e}"
