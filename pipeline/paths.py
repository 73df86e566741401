"""Where every pipeline artefact lives, relative to the repository root: one place for all readers.

Stages, the review, the release builder, the model card and the monitor read these names;
dvc.yaml declares the same files as stage outputs and dependencies, and a test checks that
every path here that dvc.yaml produces is spelled the same in both.
"""
from __future__ import annotations

from pathlib import Path

from phishing_url_detector.contract import MODEL_FILE

PARAMS = Path("params.yaml")
DVC_YAML = Path("dvc.yaml")
DVC_LOCK = Path("dvc.lock")

PREPARED = Path("data/prepared")
TRAIN = PREPARED / "train.parquet"
VALIDATION = PREPARED / "validation.parquet"
TEST = PREPARED / "test.parquet"
FUTURE = PREPARED / "future.parquet"
OUT_OF_SOURCE = PREPARED / "out_of_source.parquet"
QUARANTINE = PREPARED / "quarantine.csv"

MODEL = Path("models/model.joblib")        # the held-out model: trained on the train split, evaluated
FINAL_MODEL = Path("models/final.joblib")  # the released model: the same recipe on train + future

REPORTS = Path("reports")
DATA_REPORT = REPORTS / "data_report.json"
OPERATING_POINT = REPORTS / "operating_point.json"
LEAVE_ONE_SOURCE_OUT = REPORTS / "leave_one_source_out.json"
BACKTEST = REPORTS / "backtest.json"
BACKTEST_TABLE = REPORTS / "backtest.csv"
PARITY = REPORTS / "parity.json"
FINAL_FIT = REPORTS / "final_fit.json"  # the released model: what it trained on, its threshold, its test metrics

METRICS = Path("metrics.json")
PLOTS = Path("plots")
BACKTEST_PLOT = PLOTS / "backtest.png"

DIST = Path("dist")
ONNX = DIST / MODEL_FILE
MANIFEST = DIST / "manifest.json"

CARD_TEMPLATE = Path("model_card/template.md")
CARD = Path("model_card/MODEL_CARD.md")

BUILD = Path("build")
INGEST_REPORTS = BUILD / "ingest"
REPRODUCE = BUILD / "reproduce"  # python -m pipeline reproduce: reproduce.json, summary.md, repro.log
RUN_DIR = BUILD / "run"              # `python -m pipeline run`: repro.log and
RUN_FACTS = RUN_DIR / "run.json"     # what it restored, re-ran, verified (the release names its origin from it)
REVIEW = BUILD / "review"            # python -m pipeline report: report.md, comment.md, review.json
MONITORING = BUILD / "monitoring"    # python -m pipeline monitor: report.md, monitor.json, rejects.csv
SIMULATED_TRAFFIC = BUILD / "simulated-traffic" / "predictions.csv.gz"  # python -m pipeline simulate-traffic
# benchmarks/: scratch data they generate and reuse (never committed)
BENCH_MONITOR = BUILD / "monitor-bench"
BENCH_BATCH = BUILD / "bench-batch"
BENCH_TRAIN_MEMORY = BUILD / "train-memory"
