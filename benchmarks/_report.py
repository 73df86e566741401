"""Render results.json as RESULTS.md (tables only; raw numbers stay in results.json)."""
from __future__ import annotations

from typing import Any

from benchmarks._markdown import cell
from benchmarks._report_pipeline import (
    monitor_targets,
    render_batch,
    render_ci,
    render_monitor,
    render_scaling,
    render_train_memory,
)
from benchmarks._report_serving import (
    lever_summary,
    render_candidates,
    render_levers,
    render_profile,
    render_serving,
    serving_summary,
)


def render(doc: dict[str, Any]) -> str:
    """RESULTS.md: the targets at a glance, then one part per section present in results.json."""
    s = doc.get("sections", {})
    lines = ["# Benchmark results", "",
             ("Written by `benchmarks/bench.py` (`make bench`); raw numbers in `results.json` next to this file. "
             "Each section lists the machine and date it ran on. The machine is shared (2 cores), so the load "
             "average is given: throughput uses the best of several repeats, latency the median of many calls."), ""]
    if any(sec.get("smoke") for sec in s.values()):
        lines += ["> **Smoke run** (tiny sizes): these numbers only show the script works.", ""]
    lines += _summary(s)
    if "serving" in s:
        lines += render_serving(s["serving"])
    if "levers" in s:
        lines += render_levers(s["levers"])
    if "candidates" in s:
        lines += render_candidates(s["candidates"])
    if "profile" in s:
        lines += render_profile(s["profile"])
    if "scaling" in s:
        lines += render_scaling(s["scaling"])
    if "ci" in s:
        lines += render_ci(s["ci"])
    if "train-memory" in s:
        lines += render_train_memory(s["train-memory"])
    if "monitor" in s:
        lines += render_monitor(s["monitor"])
    if "batch" in s:
        lines += render_batch(s["batch"])
    return "\n".join(lines) + "\n"


def _summary(s: dict[str, Any]) -> list[str]:
    """The issue's targets, computed from whatever sections are present."""
    out = []
    if "serving" in s:
        out += serving_summary(s["serving"]["targets"])
    if "levers" in s and s["levers"].get("model_variants"):
        out += lever_summary(s["levers"]["model_variants"])
    if "scaling" in s:
        runs = {r["factor"]: r for r in s["scaling"]["runs"]}
        if 1 in runs:
            r = runs[1]
            out.append(f"| full pipeline, default data <= 5 min on 2 cores | {r['wall_s'] / 60:.1f} min wall at load "
                       f"{r.get('load_average_after', ['?'])[0]}, {r.get('cpu_s', 0) / 60:.1f} CPU-min | "
                       f"{cell(r['wall_s'] <= 300)} wall / {cell(r.get('cpu_s', 1e9) <= 300)} CPU |")
            big = max(runs)
            if big > 1:
                b = runs[big]
                ratio = b.get("cpu_s", 0) / max(r.get("cpu_s", 1), 1e-9)
                peak = max(st["peak_rss_mb"] for st in b["stages"].values())
                out.append(f"| 10x data <= 12x time, <= 4 GB peak RSS | largest measured {big}x: {ratio:.1f}x CPU time, "
                           f"peak stage RSS {peak:,.0f} MB | {'measured' if big >= 10 else 'not measured at 10x'} |")
    if "monitor" in s:
        out += monitor_targets(s["monitor"])
    if "batch" in s:
        big = s["batch"]["large"]
        out.append(f"| batch scoring of {big['urls']:,} URLs in constant memory on every core | "
                   f"{cell(big['urls_per_s'])} URLs/s on {big['workers']} {big['mode']} "
                   f"({cell(big['urls_per_s_per_core'])} per core, {cell(big['urls_per_cpu_s'])} per CPU-s), "
                   f"peak RSS {big['peak_rss_tree_mb']:,.0f} MB | measured |")
    if "train-memory" in s:
        runs = {r["factor"]: r for r in s["train-memory"]["runs"]}
        big = max(runs)
        peak = runs[big]["ru_maxrss_mb"]
        out.append(f"| train stage at 10x data <= 4 GB peak RSS | {big}x: {peak:,.0f} MB "
                   f"({runs[big]['rows']:,} train rows) | {cell(peak <= 4096) if big >= 10 else 'not measured at 10x'} |")
    if not out:
        return []
    return ["## Targets at a glance", "", "| target | measured | met |", "|---|---|---|", *out, ""]
