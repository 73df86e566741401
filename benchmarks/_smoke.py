"""What ``bench.py --smoke`` runs on: a small model and a tiny raw data set (the test suite's sizes)."""
from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path
from typing import Any

from benchmarks._common import REPO, merged
from pipeline.training.sources import out_of_source, training_sources

# A small model for --smoke (params['train'] overrides): fits in seconds on a few thousand URLs.
SMOKE_TRAIN = {"char_tfidf": {"host_features": 300, "path_features": 200, "min_df": 2},
               "logistic_regression": {"max_iter": 300},
               "lexical_trees": {"max_iter": 20, "max_leaf_nodes": 15, "min_samples_leaf": 5}}


def smoke_train_params(train: dict[str, Any]) -> dict[str, Any]:
    """``params['train']`` shrunk for smoke runs."""
    return merged(train, SMOKE_TRAIN)


def smoke_pipeline_params(params: dict[str, Any]) -> dict[str, Any]:
    """params.yaml overrides for --smoke scaling/ci runs (a few hundred raw rows per source): a small
    model, small refits (one backtest cut-off, one month ahead), few bootstrap resamples."""
    refits = {"max_train_rows": 1000, "n_jobs": 1}
    return {"train": SMOKE_TRAIN,
            "leave_one_source_out": {**refits, "max_test_rows": 500},
            "backtest": {**refits, "cutoffs": params["backtest"]["cutoffs"][-1:], "horizon_months": 1},
            "evaluate": {"bootstrap_resamples": 10},
            "export": {"parity_batch_sizes": [1, 64]}}


def smoke_raw(dest: Path, params: dict[str, Any], per_label: int = 150) -> Path:
    """A tiny version of every raw file params.yaml names: a seeded sample of up to ``per_label`` rows per label."""
    dest.mkdir(parents=True, exist_ok=True)
    for source in [*training_sources(params), out_of_source(params)]:
        for rel in source.files:
            name = Path(rel).name
            header, rows = _read_csv(_smoke_source(source.name, rel))
            by_label: dict[str, list[list[str]]] = {}
            for row in rows:
                by_label.setdefault(row[header.index("label")], []).append(row)
            rng = random.Random(name)
            picked = [row for label in sorted(by_label)
                      for row in rng.sample(by_label[label], min(per_label, len(by_label[label])))]
            with gzip.open(dest / name, "wt", encoding="utf-8", newline="") as fh:
                csv.writer(fh, lineterminator="\n").writerows([header, *picked])
    return dest


def _smoke_source(source: str | None, rel: str) -> Path:
    """The tests/data sample of raw file ``rel`` (``<file>_sample.csv``, else ``<source>_sample.csv``: a monthly
    shard `ingest` added has no sample of its own, and its source's stands in) when there is one, else the
    raw file itself (DVC-pulled)."""
    samples = REPO / "tests" / "data"
    candidates = [samples / Path(rel).name.replace(".csv.gz", "_sample.csv"),
                  *([samples / f"{source}_sample.csv"] if source else []), REPO / rel]
    for path in candidates:
        if path.exists():
            return path
    raise FileNotFoundError(f"--smoke needs one of {[str(c.relative_to(REPO)) for c in candidates]} "
                            f"(`dvc pull {rel}.dvc`)")


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            header, *rows = csv.reader(fh)
    else:
        with open(path, encoding="utf-8", newline="") as fh:
            header, *rows = csv.reader(fh)
    return header, rows
