"""The shape of monitor.json: typed payloads that ``analysis`` builds and ``render`` reads.

TypedDicts, not classes: the result is written as it is (``common.write_json``, sorted keys), so
naming its fields here changes no byte of the file.
"""
from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from pipeline.monitoring.logs import InputSummary
from pipeline.monitoring.thresholds import ProvenanceRecord, ThresholdRecord


class SampleInfo(TypedDict):
    """One side of a comparison."""

    description: str
    model_version: str
    start: str | None
    end: str | None
    rows: int
    flagged_ratio: float | None


class TestEntry(TypedDict):
    """A hypothesis test of a comparison; ``p_adjusted`` and ``significant`` are set by :func:`decide`."""

    test: str
    statistic: float
    p_value: float
    p_adjusted: float | None
    significant: bool
    effect_size: dict[str, float]


class PsiEntry(TypedDict):
    """The PSI: an effect size with no p-value."""

    test: str
    statistic: float
    p_value: None
    effect_size: dict[str, float]


class Tests(TypedDict):
    ratio: TestEntry
    scores_ks: TestEntry
    scores_psi: PsiEntry


class Comparison(TypedDict):
    """``current`` against ``reference``: kind ``time`` or ``version``, its tests (empty below
    ``min_rows``) and the alert decision."""

    kind: str
    window: str
    model_version: str
    current: SampleInfo
    reference: SampleInfo
    rows: int
    reference_rows: int
    status: str
    tests: Tests | dict[str, Any]
    alert: bool
    alert_reasons: list[str]
    pooled_windows: NotRequired[int]


class WindowSummary(TypedDict):
    """One version in one window."""

    window: str
    window_start: str
    window_end: str
    model_version: str
    rows: int
    flagged: int
    flagged_ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    score_quantiles: dict[str, float]
    status: str
    in_reference: NotRequired[bool]
    labelled_rows: NotRequired[int]
    precision: NotRequired[float | None]
    recall: NotRequired[float | None]


class ReferenceSummary(TypedDict):
    description: str
    windows: list[str]
    rows: int
    flagged_ratio: float | None


class References(TypedDict):
    range: list[str | None] | None
    version: str | None
    per_version: dict[str, ReferenceSummary]


class Analysis(TypedDict):
    """What :func:`analyse_cells` finds in the counted cells of a log."""

    window: str
    params: dict[str, Any]
    reference: References
    model_versions: list[str]
    windows: list[WindowSummary]
    comparisons: list[Comparison]
    alerts: int
    alert: bool
    notes: list[str]


class MonitorInput(InputSummary):
    """monitor.json's ``input``: the log's summary, the thresholds applied to rows without a verdict,
    and whether their releases' provenance was checked."""

    thresholds: dict[str, ThresholdRecord]
    provenance: ProvenanceRecord


class MonitorResult(Analysis):
    """monitor.json: the analysis, what was read, and how old each model's training data were."""

    input: MonitorInput
    model_data_through: dict[str, str]
