"""RESULTS.md sections 3, 5 and 6: pipeline scaling, CI overhead, training memory, the monitor, batch scoring."""
from __future__ import annotations

from typing import Any

from benchmarks._markdown import by_number, cell, flat, machine_line, table


def render_scaling(r: dict[str, Any]) -> list[str]:
    lines = ["## 3a. Pipeline scaling: `dvc repro --force`", "", "_" + machine_line(r["machine"]) + "_", "",
             ("Larger data sets keep every real row and add perturbed copies of randomly drawn real rows "
             "(see `Perturber` in benchmarks/_scaling.py: scheme/www toggles, a new subdomain label, a typo-squat "
             "of the registered domain -- a new split group --, a path segment or query value re-drawn from the "
             "same class's real tokens, digit runs re-drawn); every raw file is scaled, variants are unique. "
             f"{r['note']}."), ""]
    stages = list(dict.fromkeys(st for run in r["runs"] for st in (run.get("stages_run") or run["stages"])))
    rows = []
    for run in r["runs"]:
        rows.append([f"{run['factor']}x", run["raw_rows"], run["clean_rows"],
                     f"{run['wall_s']:.0f} s ({run.get('cpu_s', 0):.0f} cpu)",
                     "/".join(str(x) for x in run.get("load_average_after", []))]
                    + [_stage_cell(run["stages"].get(s)) for s in stages])
    lines += table(["data", "raw rows", "clean rows", "total wall (CPU) s", "load avg after"]
                    + [f"{s}: wall (CPU) s / peak RSS" for s in stages], rows)
    if r.get("partial"):
        lines += ["_Partial: the remaining factors were still running or were interrupted._", ""]
    ex = r.get("exponent_time_vs_rows", {})
    if ex:
        lines += ["Fitted exponent b in time ~ rows^b (least squares on log-log over the factors; "
                  "'(cpu)' = on CPU seconds, which a busy machine does not inflate): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in ex.items() if v is not None), ""]
    return lines


def _stage_cell(st: dict[str, Any] | None) -> str:
    """One stage of one scaling run: wall (CPU) seconds / peak RSS."""
    if not st:
        return "-"
    return f"{st['wall_s']:.0f} s ({st.get('cpu_s', 0):.0f} cpu) / {st['peak_rss_mb']:,.0f} MB"


def render_ci(r: dict[str, Any]) -> list[str]:
    lines = ["## 3b. CI overhead", "", "_" + machine_line(r["machine"]) + "_", ""]
    e = r["eval_params_change"]
    rows = [[f"no-op `dvc repro` (all cached), {len(r['noop_repro_s'])} runs",
             ", ".join(f"{x:.1f}" for x in r["noop_repro_s"]),
             ", ".join(r["noop_stages_run"]) or "none"],
            [f"params change ({e['change']})", f"{e['wall_s']:.1f} ({e.get('cpu_s', 0):.0f} CPU s)",
             ", ".join(f"{st} {e['stages'].get(st, {}).get('wall_s', 0):.0f} s ({e['stages'].get(st, {}).get('cpu_s', 0):.0f} CPU s)"
                       for st in e["stages_run"])],
            ["`dvc status`", f"{r['dvc_status_s']:.1f}", "-"]]
    if r.get("cache_build"):
        rows.insert(0, ["first `dvc repro` (empty cache)", f"{r['cache_build']['wall_s']:.1f}",
                        ", ".join(r["cache_build"]["stages_run"])])
    lines += table(["what", "wall s", "stages run"], rows)
    return lines


def monitor_targets(r: dict[str, Any]) -> list[str]:
    """The monitor's bar (100M Parquet rows <= 2 GB, <= 60 s) and the engines' equality."""
    out = []
    bar = r["bar"]
    big = max(r["scale"], key=lambda x: x["rows"])
    if big["rows"] >= bar["rows"]:
        out.append(f"| monitor: {bar['rows']:,} Parquet rows <= {bar['peak_rss_mb'] / 1024:.0f} GB peak RSS, "
                   f"<= {bar['wall_s']} s | {big['peak_rss_mb']:,.0f} MB, {big['wall_s']:.0f} s wall "
                   f"({big['cpu_s']:.0f} CPU s) at load {big['load_average_after'][0]} | "
                   f"RSS {cell(big['peak_rss_mb'] <= bar['peak_rss_mb'])}, time {cell(big['wall_s'] <= bar['wall_s'])} "
                   f"wall / {cell(big['cpu_s'] / 2 <= bar['wall_s'])} CPU on 2 cores |")
    e = r["engines"]
    same = all(all(v.values()) for v in e["identical"].values())
    out.append(f"| monitor: Spark local and DuckDB identical on one log | {e['rows']:,} rows, windows "
               f"{', '.join(e['identical'])}: monitor.json and rejects.csv byte-identical | {cell(same)} |")
    return out


def render_monitor(r: dict[str, Any]) -> list[str]:
    lines = ["## 5. The monitor at production volume", "", "_" + machine_line(r["machine"]) + "_", "",
             ("`python -m pipeline monitor` as a subprocess on a generated Parquet log (timestamp, model_version, "
             "score; a year of 2024), peak RSS summed over its whole process tree (a Spark JVM included), "
             "sampled every 0.1 s; CPU time is the tree's user + system time, which other tenants of the "
             "machine cannot inflate."), ""]
    lines += table(["engine", "rows", "log MB", "wall s", "CPU s", "peak RSS MB", "load avg after"],
                    [[x["engine"], x["rows"], x["log_mb"], x["wall_s"], x["cpu_s"], x["peak_rss_mb"],
                      "/".join(str(v) for v in x["load_average_after"])] for x in r["scale"]])
    e = r["engines"]
    lines += [(f"Spark local (`--engine spark --master local[2]`, JVM start included) against DuckDB on one "
              f"{e['rows']:,}-row log with {e['rows_rejected']:,} bad rows, same SQL:"), ""]
    lines += table(["engine", "window", "wall s", "CPU s", "peak RSS MB", "processes"],
                    [[x["engine"], x["window"], x["wall_s"], x["cpu_s"], x["peak_rss_mb"], x["processes"]]
                     for x in e["runs"]])
    lines += table(["window", "monitor.json identical", "rejects.csv identical"],
                    [[w, v["monitor.json"], v["rejects.csv"]] for w, v in e["identical"].items()])
    return lines


def render_batch(r: dict[str, Any]) -> list[str]:
    lines = ["## 6. Batch scoring: `score --file urls.txt --output scores.parquet`", "",
             "_" + machine_line(r["machine"]) + "_", "",
             (f"The product command line as a subprocess; {r['note']}. Peak RSS is summed over the process tree "
             "(the scorer and its workers, polled every 0.2 s; pages shared between processes counted in each). "
             "CPU is user+system of the whole tree; 'cores got' = CPU s / wall s, what the scheduler gave the run. "
             "Per core = URLs/s / workers. When the load average exceeds the cores, wall-clock URLs/s measures the "
             "share of the machine a run got, not its mode: compare URLs/CPU-s."), ""]
    rows = [[f"{x['mode']}" + (" (default)" if x["mode"] == r["default_mode"] else ""), x["workers"], x["urls"],
             x["wall_s"], x["cpu_s"], round(x["cpu_s"] / x["wall_s"], 2), x["urls_per_s"], x["urls_per_s_per_core"],
             x["urls_per_cpu_s"], x["peak_rss_tree_mb"], f"{x['load_average_before']} / {x['load_average_after']}"]
            for x in [*r["compare"], r["large"]]]
    lines += table(["mode", "workers", "URLs", "wall s", "CPU s", "cores got", "URLs/s", "URLs/s per core",
                     "URLs/CPU-s", "peak RSS MB", "load avg before / after"], rows)
    efficient = max(r["compare"], key=lambda x: x["urls_per_cpu_s"])
    lines += [(f"Fastest wall clock on the comparison file in this run: **{r['fastest_mode']}**; fewest CPU seconds "
              f"per URL: **{efficient['mode']}** (the default is {r['default_mode']}). Input file for the large run: "
              f"{r['input_bytes'] / 2**20:,.0f} MB."), ""]
    return lines


def render_train_memory(r: dict[str, Any]) -> list[str]:
    """Section 3c: the train stage alone -- peak RSS, CPU, phases, fits and projections."""
    lines = ["## 3c. Training memory: the train stage alone", "", "_" + machine_line(r["machine"]) + "_", "",
             (f"Data as in 3a (perturbed copies of real rows, every raw file scaled), then the prepare stage; "
             f"{r['note']}. Fits shortened ({flat(r['fit_override']) or 'not shortened'}): memory does not depend on the "
             "iteration count (L-BFGS keeps a fixed history; trees are a few KB each), time does, so CPU and wall "
             "times here are for the shortened fits."), ""]
    base = {b["factor"]: b for b in r.get("baseline", {}).get("runs", [])}
    ref = r.get("baseline", {}).get("ref")
    rows = []
    for run in r["runs"]:
        top = max(run["phases"].items(), key=lambda kv: kv[1]["peak_rss_mb"])[0]
        row = [f"{run['factor']}x", run["rows"], run["vocabulary"], f"{run['ru_maxrss_mb']:,.0f} MB",
               f"{run['cpu_s']:.0f} / {run['wall_s']:.0f}", top, "/".join(str(x) for x in run["load_average_after"])]
        if base:
            b = base.get(run["factor"])
            row += [f"{b['ru_maxrss_mb']:,.0f} MB ({run['ru_maxrss_mb'] / b['ru_maxrss_mb']:.2f}x)" if b else "-",
                    f"{b['cpu_s']:.0f} / {b['wall_s']:.0f}" if b else "-"]
        rows.append(row)
    header = ["data", "train rows", "vocabulary", "peak RSS", "CPU / wall s", "phase at the peak", "load after"]
    if base:
        header += [f"peak RSS at `{ref}` (ratio now/then)", f"CPU / wall s at `{ref}`"]
    lines += table(header, rows)
    big = max(r["runs"], key=lambda run: run["factor"])
    phases = list(big["phases"])
    if big["factor"] in base:
        phases += [p for p in base[big["factor"]]["phases"] if p not in phases]
    prow = []
    for name in phases:
        now, then = big["phases"].get(name), base.get(big["factor"], {}).get("phases", {}).get(name)
        prow.append([name] + ([f"{now['seconds']:.1f}", f"{now['peak_rss_mb']:,.0f}"] if now else ["-", "-"])
                    + (([f"{then['seconds']:.1f}", f"{then['peak_rss_mb']:,.0f}"] if then else ["-", "-"]) if base else []))
    lines += [f"Phases at {big['factor']}x (sampled RSS; a phase shorter than the polling interval may show no peak):", ""]
    lines += table(["phase", "s", "peak RSS MB"] + ([f"s at `{ref}`", f"peak RSS MB at `{ref}`"] if base else []), prow)
    pj = r["projections"]
    if pj["fits"]:
        frows = []
        for key, label, unit in (("ru_maxrss_mb", "peak RSS MB", "KB"), ("cpu_s", "CPU s", "us"),
                                 ("wall_s", "wall s", "us")):
            fits, proj = pj["fits"][key], pj["projected"][key]
            power, lin = fits.get("power"), fits.get("linear")
            per_row = lin["per_row"] * (1024 if unit == "KB" else 1e6) if lin else 0
            frows.append([label, f"{power['a']:.3g} * rows^{power['b']:.2f}" if power else "-",
                          f"{lin['fixed']:,.0f} + {per_row:.2f} {unit}/row" if lin else "-"]
                         + [f"{proj[k].get('power', 0):,.0f} / {proj[k].get('linear', 0):,.0f}" for k in by_number(proj)])
        lines += [(f"Fits over the measured factors (rows = train rows; 1x = {pj['base_rows']:,}) and projections "
                  "(power law / linear):"), ""]
        lines += table(["metric", "power law", "linear (fixed + per row)"]
                        + [f"{k} projected" for k in by_number(pj["projected"]["ru_maxrss_mb"])], frows)
        if pj["max_rows_for_ram"]:
            lines += [f"Largest train split whose projected peak (linear fit) fits in {pj['headroom']:.0%} of a "
                      "runner's RAM: " + ", ".join(f"{k}: {v:,} rows ({v / pj['base_rows']:.0f}x)"
                                                   for k, v in ((k, pj["max_rows_for_ram"][k])
                                                                for k in by_number(pj["max_rows_for_ram"]))) + ".", ""]
    return lines
