"""Outputs of a monitoring run: monitor.json, report.md, ratio.png, scores.png, rejects.csv.

monitor.json is the complete, machine-readable record; report.md is what a
person reads in the tracking issue, so it starts with the alerts and stays
short. Plots use matplotlib's object API (no pyplot state, no display).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline import common
from pipeline.common import md_cell, md_table, plot_text
from pipeline.formatting import MISSING, count, general, num, pct, pp, signed
from pipeline.monitoring import stats
from pipeline.monitoring.analysis import (
    INSUFFICIENT,
    Cell,
    Sample,
    finite_or_none,
    latest_cells,
)
from pipeline.monitoring.logs import PredictionLog
from pipeline.monitoring.result import Comparison, MonitorResult, WindowSummary
from pipeline.monitoring.thresholds import ProvenanceRecord, ThresholdRecord
from pipeline.monitoring.windows import parse_window

RECENT = 8  # time comparisons listed per version in report.md; the rest are in monitor.json
PSI_DIGITS = 3  # a PSI and a median score in report.md
P_DIGITS = 2  # significant digits of an adjusted p-value


def write_json(result: MonitorResult, path: Path) -> None:
    common.write_json(path, finite_or_none(result))


def write_rejects(log: PredictionLog, path: Path) -> None:
    """Always written (header only when clean), so the workflow can upload it unconditionally;
    its text cells are CSV-injection safe (:func:`common.write_csv`)."""
    common.write_csv(log.rejects, path)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """report.md's tables: text from the log (versions, reasons) is passed through md_cell by the callers."""
    return [md_table(header, ["---"] * len(header), rows), ""] if rows else []


def _comparison_row(c: Comparison) -> list[str]:
    tests: Mapping = c.get("tests") or {}
    ratio = tests.get("ratio", {})
    ks = tests.get("scores_ks", {})
    psi = tests.get("scores_psi", {})
    diff = ratio.get("effect_size", {}).get("ratio_diff")
    return [
        c["kind"], c["window"], md_cell(c["model_version"]),
        md_cell(c["reference"]["description"], code=False),
        f"{count(c['rows'])} / {count(c['reference_rows'])}",
        f"{pct(c['current']['flagged_ratio'])} vs {pct(c['reference']['flagged_ratio'])}",
        MISSING if diff is None else f"{signed(diff * 100, 1)} pp",
        general(ratio.get("p_adjusted"), P_DIGITS),
        num(psi.get("statistic"), PSI_DIGITS),
        general(ks.get("p_adjusted"), P_DIGITS),
        "; ".join(c["alert_reasons"]) if c["alert"] else c["status"],
    ]


COMPARISON_HEADER = ["kind", "window", "version", "against", "rows (current / ref)",
                     "flagged ratio", "change", "ratio p (BH)", "PSI", "KS p (BH)", "result"]


def _threshold_lines(thresholds: Mapping[str, ThresholdRecord], provenance: ProvenanceRecord | None = None,
                     ) -> list[str]:
    """Which threshold flagged the rows that logged no verdict, where it came from, and whether anyone
    checked who built that release (``--allow-unverified`` is always named)."""
    lines = []
    if provenance and not provenance.get("checked", True):
        unverified = [v for v, t in thresholds.items() if t.get("verified") is False]
        which = (f": {', '.join(md_cell(v) for v in unverified)}" if unverified
                 else " (none was applied in this run)")
        lines += [(f"**Thresholds unverified**: `--allow-unverified` was given, so the provenance of the "
                   f"releases giving thresholds was NOT checked{which}. Whoever can write a release "
                   "directory or the fetch cache could have silenced these alerts."), ""]
    if not thresholds:
        return lines
    used = "; ".join(f"{md_cell(v)} at {general(t['threshold'])} ({t['source']}"
                     f"{' ' + md_cell(t['release_dir']) if t.get('release_dir') else ''}"
                     f"{', **unverified**' if t.get('verified') is False else ''})"
                     for v, t in thresholds.items())
    return lines + [f"Rows without a verdict were flagged at their release's threshold: {used}.", ""]


def data_age_months(data_through: str | None, window_start: str) -> int | None:
    """Whole months from the newest month a model trained on to the month a window starts in."""
    if not data_through:
        return None
    stamp = pd.Timestamp(window_start)
    stamp = stamp.tz_convert(None) if stamp.tzinfo is not None else stamp
    return int((stamp.to_period("M") - pd.Period(data_through, freq="M")).n)


def _data_cell(result: MonitorResult, version: str, window_start: str) -> str:
    month = (result.get("model_data_through") or {}).get(version)
    age = data_age_months(month, window_start)
    return "unknown (no release names it)" if month is None else f"{month} ({age} months before)"


def render_markdown(result: MonitorResult) -> str:
    """Short human summary: alerts first, then latest windows, versions, data quality."""
    inp = result["input"]
    alerts = [c for c in result["comparisons"] if c["alert"]]
    head = f"ALERT ({len(alerts)})" if alerts else "no alert"
    lines = [f"# Prediction monitoring: {head}", ""]
    span = (f"{(inp['first_timestamp'] or '')[:10]} to {(inp['last_timestamp'] or '')[:10]}"
            if inp["first_timestamp"] else "no valid rows")
    lines += [
        (f"Window {result['window']}, {span}; model versions: "
         f"{', '.join(md_cell(v) for v in result['model_versions']) or 'none'}. "
         f"{count(inp['rows_read'])} rows read, {count(inp['rows_valid'])} valid, "
         f"**{count(inp['rows_rejected'])} rejected** (`{inp['rejects_file']}`). "
         f"Alert rule: BH-adjusted p < {result['params']['alpha']} and |change| ≥ "
         f"{pp(result['params']['min_ratio_change'])} (ratio) or PSI ≥ "
         f"{result['params']['psi_alert']} (scores); at least {count(result['params']['min_rows'])} rows "
         f"on each side."), ""]
    lines += _threshold_lines(inp.get("thresholds") or {}, inp.get("provenance"))

    lines += ["## Alerts", ""]
    if alerts:
        lines += _table(COMPARISON_HEADER, [_comparison_row(c) for c in alerts])
    else:
        tested = sum(c["status"] == "tested" for c in result["comparisons"])
        lines += [(f"No alert: {tested} comparison(s) tested, none with a statistically real "
                   f"change of the alerting size."), ""]

    latest: dict[str, WindowSummary] = {}
    for w in result["windows"]:
        latest[w["model_version"]] = w
    if latest:
        lines += ["## Latest window per model version", ""]
    lines += _table(
        ["version", "window", "model data up to", "rows", "flagged ratio (95% CI)", "median score",
         "labelled rows", "precision", "recall", "status"],
        [[md_cell(w["model_version"]), w["window"], _data_cell(result, w["model_version"], w["window_start"]),
          count(w["rows"]),
          f"{pct(w['flagged_ratio'])} ({pct(w['ratio_ci_low'])}–{pct(w['ratio_ci_high'])})",
          num(w["score_quantiles"].get("0.5"), PSI_DIGITS), count(w.get("labelled_rows", 0)),
          pct(w.get("precision")), pct(w.get("recall")),
          "reference" if w.get("in_reference") and w["status"] == "ok" else w["status"]]
         for w in latest.values()])

    version = [c for c in result["comparisons"] if c["kind"] == "version"]
    if version:
        lines += ["## Model versions on the same traffic", ""]
        lines += _table(COMPARISON_HEADER, [_comparison_row(c) for c in version])

    time = [c for c in result["comparisons"] if c["kind"] == "time"]
    if time:
        insufficient = sum(c["status"] == INSUFFICIENT for c in time)
        lines += ["## Windows against their reference", "",
                  (f"{len(time)} window(s) compared, {insufficient} with insufficient data; "
                   f"the latest {RECENT} per version (all of them in `monitor.json`):"), ""]
        recent: list[Comparison] = []
        for v in result["model_versions"]:
            recent += [c for c in time if c["model_version"] == v][-RECENT:]
        lines += _table(COMPARISON_HEADER, [_comparison_row(c) for c in recent])

    if result["reference"]["per_version"]:
        lines += ["## References", ""]
    lines += _table(["version", "reference", "rows", "flagged ratio"],
                    [[md_cell(v), md_cell(r["description"], code=False), count(r["rows"]), pct(r["flagged_ratio"])]
                     for v, r in result["reference"]["per_version"].items()])

    if inp["rows_rejected"]:
        lines += ["## Rejected rows", ""]
        if inp.get("rejects_written", inp["rows_rejected"]) < inp["rows_rejected"]:
            lines += [(f"`{inp['rejects_file']}` holds the first {count(inp['rejects_written'])} of the "
                       f"{count(inp['rows_rejected'])} rejected rows (capped); the counts below are complete."), ""]
        lines += _table(["reason", "rows"], [[md_cell(k), count(n)] for k, n in inp["rejects_by_reason"].items()])
    if result["notes"]:
        lines += ["## Notes", ""] + [f"- {md_cell(n, code=False)}" for n in result["notes"]] + [""]
    return "\n".join(lines).rstrip() + "\n"


def plot_ratio(result: MonitorResult, path: Path) -> None:
    """Flagged ratio per window with its Wilson band, one line per version, alerts marked."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    windows = pd.DataFrame(result["windows"])
    if windows.empty:
        ax.text(0.5, 0.5, "no valid rows", ha="center", va="center", transform=ax.transAxes)
        fig.savefig(path, dpi=110)
        return
    windows["x"] = pd.to_datetime(windows["window_start"], utc=True).dt.tz_convert(None)
    alert_marked = False
    data_through = result.get("model_data_through") or {}
    age_axis = ax.twinx() if data_through else None
    for i, version in enumerate(result["model_versions"]):
        w = windows[windows["model_version"] == version].sort_values("x")
        colour = f"C{i % 10}"
        month = data_through.get(version)
        label = plot_text(version) + (f" (data to {month})" if month else "")
        ax.plot(w["x"], w["flagged_ratio"], marker="o", ms=3, color=colour, label=label)
        if age_axis is not None and month:
            ages = np.array([data_age_months(month, s) for s in w["window_start"]], dtype=float)
            age_axis.plot(w["x"], ages, color=colour,
                          linestyle=":", linewidth=1.2)
        ax.fill_between(w["x"], w["ratio_ci_low"], w["ratio_ci_high"], color=colour, alpha=0.2,
                        linewidth=0)
        thin = w[w["status"] == INSUFFICIENT]
        ax.scatter(thin["x"], thin["flagged_ratio"], s=30, facecolors="white", edgecolors=colour,
                   zorder=3)
        ref = w[w["in_reference"]]
        ax.scatter(ref["x"], ref["flagged_ratio"], s=18, marker="s", color=colour, zorder=3)
        for c in result["comparisons"]:
            if not c["alert"] or c["model_version"] != version:
                continue
            lo = pd.Timestamp(c["current"]["start"]).tz_convert(None)
            hi = pd.Timestamp(c["current"]["end"]).tz_convert(None)
            hit = w[(w["x"] >= lo) & (w["x"] < hi)]
            ax.scatter(hit["x"], hit["flagged_ratio"], s=110, marker="x" if c["kind"] == "time" else "D",
                       color="red", zorder=4, facecolors="none" if c["kind"] == "version" else None,
                       label=None if alert_marked else "alert")
            alert_marked = True
    ax.set_ylabel("flagged ratio (verdict = phishing)")
    ax.set_title(f"Flagged ratio per {result['window']} window (95% Wilson band; "
                 "squares = reference, hollow = insufficient data, red = alert)", fontsize=9)
    ax.yaxis.set_major_formatter(lambda v, _: pct(v, 0))
    ax.grid(alpha=0.3)
    ax.legend(title="model version", fontsize=8)
    if age_axis is not None:
        age_axis.set_ylabel("model data age, months (dotted)")
        age_axis.set_ylim(bottom=0)
    fig.savefig(path, dpi=110)


def plot_scores(cells: list[Cell], result: MonitorResult, path: Path) -> None:
    """Score histograms of each version's reference against its latest window."""
    window = parse_window(result["window"])
    versions = result["model_versions"][-4:]
    fig = Figure(figsize=(5 * max(len(versions), 1), 3.8), layout="constrained")
    axes = fig.subplots(1, max(len(versions), 1), squeeze=False)[0]
    if not versions:
        axes[0].text(0.5, 0.5, "no valid rows", ha="center", va="center", transform=axes[0].transAxes)
    latest = latest_cells(cells)
    bins = np.linspace(0, 1, 41)
    for ax, version in zip(axes, versions):
        ref_labels = set(result["reference"]["per_version"][version]["windows"])
        ref = Sample.pool([c for c in cells if c.version == version
                                    and window.label(c.start) in ref_labels], "reference")
        cur = latest[version]
        if ref.rows:
            ax.hist(stats.GRID, bins=bins, weights=ref.hist, density=True, histtype="stepfilled", alpha=0.35,
                    color="C0", label=f"reference ({count(ref.rows)})")
        ax.hist(stats.GRID, bins=bins, weights=cur.hist, density=True, histtype="step", linewidth=1.6, color="C3",
                label=f"{window.label(cur.start)} ({count(cur.rows)})")
        title = plot_text(version)
        for c in result["comparisons"]:
            if (c["kind"] == "time" and c["model_version"] == version
                    and c["window"] == window.label(cur.start) and c["status"] == "tested"):
                title += (f": PSI {num(c['tests']['scores_psi']['statistic'], PSI_DIGITS)}, "
                          f"KS D {num(c['tests']['scores_ks']['statistic'], PSI_DIGITS)}")
                if c["alert"]:
                    title += " (ALERT)"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("phishing score")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("density (log scale)")
    fig.savefig(path, dpi=110)


def write_all(out: Path, log: PredictionLog, result: MonitorResult, cells: list[Cell]) -> dict[str, Path]:
    """Write every output of a run into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in
             ("monitor.json", "report.md", "ratio.png", "scores.png", "rejects.csv")}
    write_rejects(log, paths["rejects.csv"])
    write_json(result, paths["monitor.json"])
    paths["report.md"].write_text(render_markdown(result))
    plot_ratio(result, paths["ratio.png"])
    plot_scores(cells, result, paths["scores.png"])
    return paths
