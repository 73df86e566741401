"""Facts the review reads from a checkout's files: the released model, the ONNX file, dvc.lock."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline import paths
from pipeline.common import read_json
from pipeline.review import diffs, gather
from pipeline.review.payloads import OnnxFacts, PipelineFacts, ReleasedFacts
from pipeline.store.dvc import ReproRun
from pipeline.training.final import released_model


def json_or_none(path: Path) -> Any:
    return read_json(path) if path.is_file() else None


def yaml_or_none(text: str | None) -> Any:
    return yaml.safe_load(text) if text else None


def released_model_of(tree: Path) -> dict | None:
    """The released model's facts in a checkout (None for a commit from before final fits)."""
    return released_model(json_or_none(tree / paths.FINAL_FIT), json_or_none(tree / paths.OPERATING_POINT),
                          json_or_none(tree / paths.METRICS))


def released_facts(final_fit: dict | None) -> ReleasedFacts | None:
    """The released model (stage final-fit) as the comment shows it: data, threshold, its own test split."""
    if not final_fit:
        return None
    test, trained = final_fit["test"], final_fit["trained_on"]
    facts: ReleasedFacts = {"rows": trained["rows"], "newest_phishing_month": trained.get("newest_phishing_month"),
                            "threshold": final_fit["operating_point"]["ensemble"]["threshold"],
                            "test_rows": test["rows"]}
    if "roc_auc" in test:
        facts["roc_auc"] = test["roc_auc"]["value"]
    if "recall" in test:
        facts["recall"] = test["recall"]["value"]
    if "fpr" in test:
        facts["fpr"] = test["fpr"]["value"]
    return facts


def onnx_facts(manifest: dict | None, parity: dict | None) -> OnnxFacts:
    manifest, parity = manifest or {}, parity or {}
    model = manifest.get("model", {})
    return {"size_bytes": model.get("size_bytes"), "sha256": model.get("sha256"),
            "contract_digest": manifest.get("contract_digest"), "contract_major": manifest.get("contract_major"),
            "io_signature": manifest.get("io_signature"),
            "parity_rows": parity.get("rows"),
            "batch_sizes": sorted(int(b) for b in parity.get("batch_sizes", {})),
            "label_agreement": parity.get("label_agreement"),
            "max_abs_proba_diff": parity.get("max_abs_proba_diff"), "tolerance": parity.get("tolerance")}


def contract_changed(base: OnnxFacts, pr: OnnxFacts) -> bool:
    keys = ("contract_digest", "contract_major", "io_signature")
    return any(base.get(k) is not None and pr.get(k) is not None and base.get(k) != pr.get(k) for k in keys)


def outputs_to_commit(root: Path, dvc_yaml: dict) -> list[str]:
    """dvc.lock and the git-tracked (cache: false) outputs the reproduction changed."""
    lock = str(paths.DVC_LOCK)
    small = {lock}
    for stage in (dvc_yaml.get("stages") or {}).values():
        for section in ("outs", "metrics", "plots"):
            for entry in stage.get(section) or []:
                if isinstance(entry, dict):
                    for path, opts in entry.items():
                        if isinstance(opts, dict) and opts.get("cache") is False:
                            small.add(path)
    changed = [p for p in gather.git(root, "diff", "--name-only", "HEAD").splitlines() if p in small]
    return [lock] + sorted(p for p in changed if p != lock)


def add_pipeline_facts(root: Path, facts: PipelineFacts, pr_run: ReproRun | None) -> None:
    """The stages, and whether the committed dvc.lock is what was reproduced (what to commit if not)."""
    dvc_yaml = yaml.safe_load((root / paths.DVC_YAML).read_text())
    facts["stages"] = list(dvc_yaml.get("stages") or {})
    committed = gather.git_show(root, "HEAD", paths.DVC_LOCK.as_posix())
    reproduced = gather.read_text(root / paths.DVC_LOCK)
    facts["lock_checked"] = True
    facts["lock_mismatch"] = diffs.lock_mismatch(committed, reproduced)
    facts["files_to_commit"] = outputs_to_commit(root, dvc_yaml) if facts["lock_mismatch"] else []
    facts["stale_stages"] = [] if pr_run else gather.status_stages(root)
