"""Windowing, references, comparisons and the alert decision.

Two kinds of comparison, kept apart so that a change is attributed to its
cause:

* ``time``: each model version's window against that version's own
  reference (a time range, or its first windows). A version switch therefore
  never shows up as drift in time.
* ``version``: model versions that scored the same window (shadow or canary
  traffic), each against a baseline version; plus one Cochran-Mantel-Haenszel
  comparison per pair over all the windows they share.

Every p-value of a run (ratio and KS, time and version) goes into one
Benjamini-Hochberg family, so with no change anywhere the chance that a run
raises any alert is at most ``alpha``. An alert also needs a change big
enough to matter (``min_ratio_change`` on the ratio, ``psi_alert`` on the
scores) and ``min_rows`` on both sides; below that the window is reported as
"insufficient data" and never alerts.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from phishing_url_detector.versions import (
    version_key,  # the one version order (the thresholds use it too)
)
from pipeline.formatting import general, num, pct, signed
from pipeline.monitoring import stats
from pipeline.monitoring.config import MonitorParams
from pipeline.monitoring.logs import InputSummary, aggregate_rows
from pipeline.monitoring.result import (
    Analysis,
    Comparison,
    MonitorInput,
    MonitorResult,
    SampleInfo,
    TestEntry,
    WindowSummary,
)
from pipeline.monitoring.thresholds import ProvenanceRecord, ThresholdRecord
from pipeline.monitoring.windows import TimeRange, WindowSpec, parse_window

INSUFFICIENT = "insufficient data"


class _Counts:
    """Row and flagged counts of anything holding a score histogram and its flagged count."""

    hist: np.ndarray
    flagged: int

    @property
    def rows(self) -> int:
        return int(self.hist.sum())


@dataclass
class Cell(_Counts):
    """The rows of one model version in one window, as counts: a histogram of scores over
    ``stats.GRID`` (4 decimals), the flagged count and the labelled confusion counts."""

    version: str
    start: pd.Timestamp
    end: pd.Timestamp
    hist: np.ndarray
    flagged: int
    labelled: dict[str, int]  # tp, fp, fn, labelled


@dataclass
class Sample(_Counts):
    """Pooled rows used as one side of a comparison."""

    description: str
    version: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    hist: np.ndarray
    flagged: int

    @classmethod
    def pool(cls, cells: list[Cell], description: str) -> Sample:
        return cls(description, cells[0].version if cells else "",
                   min((c.start for c in cells), default=None),
                   max((c.end for c in cells), default=None),
                   np.sum([c.hist for c in cells], axis=0) if cells else np.zeros(stats.GRID.size, np.int64),
                   int(sum(c.flagged for c in cells)))


def cells_from_aggregates(agg: pd.DataFrame, window: WindowSpec) -> list[Cell]:
    """One Cell per (window, model version) of the engine's counts, in time then version order."""
    cells: list[Cell] = []
    for (start_us, version), group in agg.groupby(["window_us", "version"], sort=False):
        n = group["n"].to_numpy(np.int64)
        verdict = group["verdict"].to_numpy(np.int64)
        label = group["label"].to_numpy(float)
        hist = np.bincount(group["bin"].to_numpy(np.int64), weights=n, minlength=stats.GRID.size).astype(np.int64)
        labelled = {"tp": int(n[(verdict == 1) & (label == 1)].sum()), "fp": int(n[(verdict == 1) & (label == 0)].sum()),
                    "fn": int(n[(verdict == 0) & (label == 1)].sum()), "labelled": int(n[~np.isnan(label)].sum())}
        start = pd.Timestamp(int(start_us), unit="us", tz="UTC")
        cells.append(Cell(str(version), start, window.end(start), hist, int(n[verdict == 1].sum()), labelled))
    cells.sort(key=lambda c: (c.start, version_key(c.version)))
    return cells


def split_cells(rows: pd.DataFrame, window: WindowSpec) -> list[Cell]:
    """One Cell per (window, model version) of validated rows."""
    if rows.empty:
        return []
    return cells_from_aggregates(aggregate_rows(rows, window), window)


def summarise_cell(cell: Cell, window: WindowSpec, params: MonitorParams) -> WindowSummary:
    """Rows, flagged ratio with its Wilson interval, quantiles, and precision/recall if labelled."""
    low, high = stats.wilson_interval(cell.flagged, cell.rows)
    out: WindowSummary = {
        "window": window.label(cell.start),
        "window_start": cell.start.isoformat(),
        "window_end": cell.end.isoformat(),
        "model_version": cell.version,
        "rows": cell.rows,
        "flagged": cell.flagged,
        "flagged_ratio": cell.flagged / cell.rows,
        "ratio_ci_low": low,
        "ratio_ci_high": high,
        "score_quantiles": stats.quantiles_hist(cell.hist, list(params.score_quantiles)),
        "status": INSUFFICIENT if cell.rows < params.min_rows else "ok",
    }
    if cell.labelled["labelled"]:
        c = cell.labelled
        out.update(stats.precision_recall_counts(c["tp"], c["fp"], c["fn"], c["labelled"]))
    return out


def _sample_info(sample: Sample) -> SampleInfo:
    return {"description": sample.description, "model_version": sample.version,
            "start": sample.start.isoformat() if sample.start is not None else None,
            "end": sample.end.isoformat() if sample.end is not None else None,
            "rows": sample.rows,
            "flagged_ratio": sample.flagged / sample.rows if sample.rows else None}


def compare(kind: str, label: str, current: Sample, reference: Sample, params: MonitorParams,
            strata: list[tuple[int, int, int, int]] | None = None) -> Comparison:
    """Tests of ``current`` against ``reference`` (ratio, KS, PSI), before BH.

    ``strata`` switches the ratio test to Cochran-Mantel-Haenszel over those
    per-window tables (for the version comparison over a shared period).
    """
    out: Comparison = {
        "kind": kind,
        "window": label,
        "model_version": current.version,
        "current": _sample_info(current),
        "reference": _sample_info(reference),
        "rows": current.rows,
        "reference_rows": reference.rows,
        "status": "tested",
        "tests": {},
        "alert": False,
        "alert_reasons": [],
    }
    if current.rows < params.min_rows or reference.rows < params.min_rows:
        out["status"] = INSUFFICIENT
        return out
    if strata:
        ratio = stats.cmh_test(strata)
    else:
        ratio = stats.two_proportion_ztest(current.flagged, current.rows,
                                           reference.flagged, reference.rows)
    ks = stats.ks_test_hist(current.hist, reference.hist)
    psi = stats.psi_hist(current.hist, reference.hist, params.psi_bins)
    out["tests"] = {
        "ratio": _test_dict(ratio),
        "scores_ks": _test_dict(ks),
        "scores_psi": {"test": f"population stability index ({params.psi_bins} reference-quantile bins)",
                       "statistic": psi, "p_value": None, "effect_size": {"psi": psi}},
    }
    return out


def _test_dict(result: stats.TestResult) -> TestEntry:
    return {"test": result.test, "statistic": result.statistic, "p_value": result.p_value,
            "p_adjusted": None, "significant": False, "effect_size": dict(result.effect_size)}


def decide(comparisons: list[Comparison], params: MonitorParams) -> None:
    """Benjamini-Hochberg over every p-value of the run, then the alert rule, in place."""
    family: list[TestEntry] = [test for c in comparisons if c["status"] == "tested"
                               for test in (c["tests"]["ratio"], c["tests"]["scores_ks"])]
    rejected, adjusted = stats.benjamini_hochberg([test["p_value"] for test in family], params.alpha)
    for test, rej, adj in zip(family, rejected, adjusted):
        test["p_adjusted"] = float(adj)
        test["significant"] = bool(rej)
    for c in comparisons:
        if c["status"] != "tested":
            continue
        ratio, ks, psi = c["tests"]["ratio"], c["tests"]["scores_ks"], c["tests"]["scores_psi"]
        diff = ratio["effect_size"]["ratio_diff"]
        if ratio["significant"] and abs(diff) >= params.min_ratio_change:
            c["alert_reasons"].append(
                f"flagged ratio {signed(diff * 100, 1)} pp (adjusted p={general(ratio['p_adjusted'], 2)})")
        if ks["significant"] and psi["statistic"] >= params.psi_alert:
            c["alert_reasons"].append(
                f"score distribution shift (PSI {num(psi['statistic'], 2)}, KS D={num(ks['statistic'], 2)}, "
                f"adjusted p={general(ks['p_adjusted'], 2)})")
        c["alert"] = bool(c["alert_reasons"])


def time_references(cells: list[Cell], params: MonitorParams, reference_range: TimeRange | None,
                    ) -> dict[str, tuple[list[Cell], str]]:
    """Per version: the cells that form its reference, and how they were chosen.

    A version with no rows in the reference range (it was released later) is
    referenced on its own first windows, so its launch is not read as drift.
    """
    by_version: dict[str, list[Cell]] = {}
    for cell in cells:
        by_version.setdefault(cell.version, []).append(cell)
    out = {}
    for version, own in by_version.items():
        chosen: list[Cell] = []
        how = ""
        if reference_range is not None:
            lo, hi = reference_range
            # Windows are the unit: one that overlaps the range belongs to it whole.
            chosen = [c for c in own if (lo is None or c.end > lo) and (hi is None or c.start < hi)]
            how = f"{version} in the reference range ({len(chosen)} window(s))"
        if not chosen:
            chosen = own[:params.reference_windows]
            how = f"first {len(chosen)} window(s) of {version}"
        out[version] = (chosen, how)
    return out


def time_comparisons(cells: list[Cell], window: WindowSpec, params: MonitorParams,
                     references: dict[str, tuple[list[Cell], str]]) -> list[Comparison]:
    """Every non-reference window of each version against that version's reference."""
    out: list[Comparison] = []
    for version, (ref_cells, how) in references.items():
        reference = Sample.pool(ref_cells, how)
        ref_ids = {id(c) for c in ref_cells}
        for cell in cells:
            if cell.version != version or id(cell) in ref_ids:
                continue
            current = Sample.pool([cell], f"{version} in {window.label(cell.start)}")
            out.append(compare("time", window.label(cell.start), current, reference, params))
    return out


def version_comparisons(cells: list[Cell], window: WindowSpec, params: MonitorParams,
                        baseline: str | None) -> list[Comparison]:
    """Versions that scored the same window, each against the baseline version.

    The baseline is ``baseline`` when given, else the oldest version present
    in that window (the incumbent a shadow or canary is measured against).
    """
    by_window: dict[pd.Timestamp, list[Cell]] = {}
    for cell in cells:
        by_window.setdefault(cell.start, []).append(cell)
    out: list[Comparison] = []
    shared: dict[tuple[str, str], list[tuple[Cell, Cell]]] = {}
    for start, group in sorted(by_window.items()):
        if len(group) < 2:
            continue
        versions = {c.version: c for c in group}
        base = baseline if baseline is not None else min(versions, key=version_key)
        if base not in versions:
            continue
        base_cell = versions[base]
        for version, cell in sorted(versions.items(), key=lambda kv: version_key(kv[0])):
            if version == base:
                continue
            shared.setdefault((version, base), []).append((cell, base_cell))
            current = Sample.pool([cell], f"{version} in {window.label(start)}")
            reference = Sample.pool([base_cell], f"{base} in {window.label(start)}")
            out.append(compare("version", window.label(start), current, reference, params))
    for (version, base), pairs in shared.items():
        if len(pairs) < 2:
            continue  # one shared window: the per-window comparison says it all
        first, last = pairs[0][0], pairs[-1][0]
        label = f"{window.label(first.start)}..{window.label(last.start)}"
        current = Sample.pool([p[0] for p in pairs], f"{version} over {len(pairs)} shared windows")
        reference = Sample.pool([p[1] for p in pairs], f"{base} over {len(pairs)} shared windows")
        strata = [(a.flagged, a.rows, b.flagged, b.rows) for a, b in pairs]
        comparison = compare("version", label, current, reference, params, strata=strata)
        comparison["pooled_windows"] = len(pairs)
        out.append(comparison)
    return out


def switch_notes(cells: list[Cell], window: WindowSpec) -> list[str]:
    """Versions that replaced another without a shared window cannot be compared fairly; say so."""
    spans: dict[str, list[Cell]] = {}
    for cell in cells:
        spans.setdefault(cell.version, []).append(cell)
    order = sorted(spans, key=lambda v: (spans[v][0].start, version_key(v)))
    notes = []
    for old, new in pairwise(order):
        old_starts = {c.start for c in spans[old]}
        if any(c.start in old_starts for c in spans[new]):
            continue
        before, after = spans[old][-1], spans[new][0]
        notes.append(
            f"{new} replaced {old} at {window.label(after.start)} with no window scored by both: "
            f"the versions cannot be compared on the same traffic (flagged ratio "
            f"{pct(before.flagged / before.rows)} in the last {old} window, "
            f"{pct(after.flagged / after.rows)} in the first {new} window). "
            f"Run a shadow or canary period to attribute a difference to the version.")
    return notes


def analyse(rows: pd.DataFrame, params: MonitorParams, *, reference_range: TimeRange | None = None,
            reference_version: str | None = None) -> Analysis:
    """The whole monitoring result for validated log rows, as a JSON-ready dict."""
    return analyse_cells(split_cells(rows, parse_window(params.window)), params,
                         reference_range=reference_range, reference_version=reference_version)


def analyse_cells(cells: list[Cell], params: MonitorParams, *, reference_range: TimeRange | None = None,
                  reference_version: str | None = None) -> Analysis:
    """The whole monitoring result for the counted cells of a log (see ``logs.scan``)."""
    window = parse_window(params.window)
    versions = sorted({c.version for c in cells}, key=version_key)
    if reference_version is not None and reference_version not in versions:
        raise ValueError(f"reference version {reference_version!r} is not in the log "
                         f"(versions: {', '.join(versions) or 'none'})")
    references = time_references(cells, params, reference_range)
    ref_ids = {id(c) for ref_cells, _ in references.values() for c in ref_cells}
    windows = []
    for cell in cells:
        summary = summarise_cell(cell, window, params)
        summary["in_reference"] = id(cell) in ref_ids
        windows.append(summary)
    comparisons = time_comparisons(cells, window, params, references)
    comparisons += version_comparisons(cells, window, params, reference_version)
    decide(comparisons, params)
    alerts = [c for c in comparisons if c["alert"]]
    return {
        "window": window.text,
        "params": {
            "alpha": params.alpha, "min_rows": params.min_rows,
            "min_ratio_change": params.min_ratio_change, "psi_alert": params.psi_alert,
            "psi_bins": params.psi_bins, "reference_windows": params.reference_windows,
            "multiple_comparisons": "Benjamini-Hochberg over all ratio and KS p-values of the run",
            "interval": "Wilson 95%",
        },
        "reference": {
            "range": None if reference_range is None else [
                None if t is None else t.isoformat() for t in reference_range],
            "version": reference_version,
            "per_version": {
                v: {"description": how, "windows": [window.label(c.start) for c in ref_cells],
                    "rows": int(sum(c.rows for c in ref_cells)),
                    "flagged_ratio": (sum(c.flagged for c in ref_cells) / sum(c.rows for c in ref_cells))
                    if ref_cells else None}
                for v, (ref_cells, how) in sorted(references.items(), key=lambda kv: version_key(kv[0]))
            },
        },
        "model_versions": versions,
        "windows": windows,
        "comparisons": comparisons,
        "alerts": len(alerts),
        "alert": bool(alerts),
        "notes": switch_notes(cells, window),
    }


def latest_cells(cells: Iterable[Cell]) -> dict[str, Cell]:
    """The most recent window of each version (what scores.png shows)."""
    out: dict[str, Cell] = {}
    for cell in cells:
        if cell.version not in out or cell.start > out[cell.version].start:
            out[cell.version] = cell
    return out


def monitor_result(analysed: Analysis, summary: InputSummary, thresholds: dict[str, ThresholdRecord],
                   provenance: ProvenanceRecord, data_through: dict[str, str]) -> MonitorResult:
    """monitor.json: the analysis of a log with what was read and the thresholds its rows needed."""
    given: MonitorInput = {**summary, "thresholds": thresholds, "provenance": provenance}
    return {**analysed, "input": given, "model_data_through": data_through}


def finite_or_none(value: Any) -> Any:
    """JSON has no NaN: map it (and inf) to null, recursively."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
