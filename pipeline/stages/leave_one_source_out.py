"""Stage `leave-one-source-out`: for every training source S, refit the recipe without S and test on S.

The best in-repository proxy for data the model has never seen: a source brings
its own collection habits (home pages, crawled paths, one country's brands), and
a model that only learned those habits fails on the source it did not see.
Writes ``reports/leave_one_source_out.json``; `evaluate` copies it into metrics.json.
"""
from __future__ import annotations

from pathlib import Path

from pipeline import paths
from pipeline.common import terminal, write_json
from pipeline.stages import add_stage_command
from pipeline.stages.backtest import load_splits, run_folds
from pipeline.training.refits import leave_one_source_out_fold


def run(params: dict, out: Path = paths.LEAVE_ONE_SOURCE_OUT) -> dict:
    settings = params["leave_one_source_out"]
    splits = load_splits()
    sources = sorted(set(splits["train"]["source"]))
    results = run_folds(leave_one_source_out_fold, sources, splits, params, settings, "leave one source out")
    doc = {"max_train_rows": settings.get("max_train_rows"), "max_test_rows": settings.get("max_test_rows"),
           "seed": settings["seed"], "folds": {r["source"]: r for r in results}}
    write_json(out, doc)
    for r in results:
        auc = f"ROC AUC {r['roc_auc']:.4f}  " if "roc_auc" in r else ""
        rates = "  ".join(f"{k} {r[k]:.4f}" for k in ("recall", "fpr") if k in r)
        print(f"  without {terminal(r['source']):<14} test on {r['rows']:>6,} unseen rows  {auc}{rates}")
    return doc


def register(subparsers) -> None:
    add_stage_command(subparsers, "leave-one-source-out",
                      "refit without each source and test on it (DVC stage)", __doc__, run)
