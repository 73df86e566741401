"""What the card is rendered from: the pipeline outputs and the params sections it quotes.

The outputs are JSON documents whose shape the stages that write them define; the card reads
them as they are (:data:`Doc`) and looks a value up with :func:`dig`, which gives None where a
small sample lacks a source, month, slice or class.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from pipeline import paths
from pipeline.common import PipelineError, load_params, read_json
from pipeline.training.final import released_model

Doc = dict[str, Any]  # a JSON object from one of the outputs

SOURCES = {
    "metrics": paths.METRICS,
    "data_report": paths.DATA_REPORT,
    "operating_point": paths.OPERATING_POINT,
    "final_fit": paths.FINAL_FIT,
    "parity": paths.PARITY,
    "backtest": paths.BACKTEST,
    "manifest": paths.MANIFEST,
}
PARAM_SECTIONS = ("split", "evaluate", "train")  # the params.yaml sections the card quotes


class Sources(TypedDict):
    """Every input of the card, by name; each section function reads the ones it needs."""

    metrics: Doc          # metrics.json: the held-out model on test, future, slices, LOSO, out-of-source
    data_report: Doc      # reports/data_report.json: sources, classes, quarantine, splits
    operating_point: Doc  # reports/operating_point.json: the thresholds chosen on the validation split
    final_fit: Doc        # the released model (pipeline.training.final.released_model), not the raw report
    parity: Doc           # reports/parity.json: the export parity gate
    backtest: Doc         # reports/backtest.json: recall by model age
    manifest: Doc         # dist/manifest.json: model file, contract, provenance
    params: Doc           # the PARAM_SECTIONS of params.yaml


class Estimate(TypedDict):
    """A metric with its bootstrap 95% interval, as metrics.json holds each one."""

    value: float
    ci95_low: float
    ci95_high: float


def load_sources(root: Path = Path(".")) -> Sources:
    """The pipeline outputs the card is rendered from, plus the params sections it quotes."""
    doc = {name: read_json(root / path) for name, path in SOURCES.items()}
    released = released_model(doc["final_fit"], doc["operating_point"], doc["metrics"])
    if released is None:
        raise PipelineError(f"model card: {paths.FINAL_FIT}, {paths.OPERATING_POINT} and {paths.METRICS} describe no "
                            "released model (the final-fit, operating-point and evaluate stages write it)")
    params = load_params(root / paths.PARAMS)
    return Sources(metrics=doc["metrics"], data_report=doc["data_report"], operating_point=doc["operating_point"],
                   final_fit=released, parity=doc["parity"], backtest=doc["backtest"], manifest=doc["manifest"],
                   params={k: params[k] for k in PARAM_SECTIONS})


def dig(doc: Any, *keys: str | None) -> Any:
    """``doc[k1][k2]...`` or None when any level is missing (small samples lack some slices)."""
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def newest_months(src: Sources) -> int:
    """How many of the future split's newest months the headline pools (params ``evaluate.newest_months``)."""
    return int(src["params"]["evaluate"]["newest_months"])


def newest_key(src: Sources) -> str:
    """The key of the future split's newest-months headline in metrics.json."""
    return f"newest_{newest_months(src)}_months"


def latest_year(recall_by_year: Doc) -> str | None:
    """The most recent un-pooled year, or None (a tiny stream may be all pooled)."""
    years = [k for k in recall_by_year if k.isdigit()]
    return max(years, key=int) if years else None
