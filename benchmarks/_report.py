"""Render results.json as RESULTS.md (tables only; raw numbers stay in results.json)."""
from __future__ import annotations

from pipeline.common import MISSING, md_table


def _f(v, nd=2):
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _table(header, rows) -> list[str]:
    """RESULTS.md's tables: numbers formatted here, the table itself the pipeline's one markdown table."""
    return [md_table(header, ["---"] * len(header), [[c if isinstance(c, str) else _f(c) for c in r] for r in rows]), ""]


def _machine(m) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    return (f"{m['date']} on `{m['host']}`: {m['cpu']}, {m['logical_cpus']} logical CPUs, {m['memory_gb']} GB RAM, "
            f"Python {m['python']}; {libs}; git {m['git']}; load average at the end "
            f"{'/'.join(str(x) for x in m['load_average'])}")


def render(doc: dict) -> str:
    s = doc.get("sections", {})
    lines = ["# Benchmark results", "",
             "Written by `benchmarks/bench.py` (`make bench`); raw numbers in `results.json` next to this file. "
             "Each section lists the machine and date it ran on. The machine is shared (2 cores), so the load "
             "average is given: throughput uses the best of several repeats, latency the median of many calls.", ""]
    if any(sec.get("smoke") for sec in s.values()):
        lines += ["> **Smoke run** (tiny sizes): these numbers only show the script works.", ""]
    lines += _summary(s)
    if "serving" in s:
        lines += _serving(s["serving"])
    if "levers" in s:
        lines += _levers(s["levers"])
    if "candidates" in s:
        lines += _candidates(s["candidates"])
    if "profile" in s:
        lines += _profile(s["profile"])
    if "scaling" in s:
        lines += _scaling(s["scaling"])
    if "ci" in s:
        lines += _ci(s["ci"])
    if "train-memory" in s:
        lines += _train_memory(s["train-memory"])
    if "monitor" in s:
        lines += _monitor(s["monitor"])
    if "batch" in s:
        lines += _batch(s["batch"])
    return "\n".join(lines) + "\n"


def _summary(s) -> list[str]:
    """The issue's targets, computed from whatever sections are present."""
    out = []
    if "serving" in s:
        out += _serving_summary(s["serving"]["targets"])
    if "levers" in s and s["levers"].get("model_variants"):
        out += _lever_summary(s["levers"]["model_variants"])
    if "scaling" in s:
        runs = {r["factor"]: r for r in s["scaling"]["runs"]}
        if 1 in runs:
            r = runs[1]
            out.append(f"| full pipeline, default data <= 5 min on 2 cores | {r['wall_s'] / 60:.1f} min wall at load "
                       f"{r.get('load_average_after', ['?'])[0]}, {r.get('cpu_s', 0) / 60:.1f} CPU-min | "
                       f"{_f(r['wall_s'] <= 300)} wall / {_f(r.get('cpu_s', 1e9) <= 300)} CPU |")
            big = max(runs)
            if big > 1:
                b = runs[big]
                ratio = b.get("cpu_s", 0) / max(r.get("cpu_s", 1), 1e-9)
                peak = max(st["peak_rss_mb"] for st in b["stages"].values())
                out.append(f"| 10x data <= 12x time, <= 4 GB peak RSS | largest measured {big}x: {ratio:.1f}x CPU time, "
                           f"peak stage RSS {peak:,.0f} MB | {'measured' if big >= 10 else 'not measured at 10x'} |")
    if "monitor" in s:
        out += _monitor_targets(s["monitor"])
    if "batch" in s:
        big = s["batch"]["large"]
        out.append(f"| batch scoring of {big['urls']:,} URLs in constant memory on every core | "
                   f"{_f(big['urls_per_s'])} URLs/s on {big['workers']} {big['mode']} "
                   f"({_f(big['urls_per_s_per_core'])} per core, {_f(big['urls_per_cpu_s'])} per CPU-s), "
                   f"peak RSS {big['peak_rss_tree_mb']:,.0f} MB | measured |")
    if "train-memory" in s:
        runs = {r["factor"]: r for r in s["train-memory"]["runs"]}
        big = max(runs)
        peak = runs[big]["ru_maxrss_mb"]
        out.append(f"| train stage at 10x data <= 4 GB peak RSS | {big}x: {peak:,.0f} MB "
                   f"({runs[big]['rows']:,} train rows) | {_f(peak <= 4096) if big >= 10 else 'not measured at 10x'} |")
    if not out:
        return []
    return ["## Targets at a glance", "", "| target | measured | met |", "|---|---|---|", *out, ""]


def _serving(r) -> list[str]:
    lines = ["## 1. Serving: onnxruntime vs scikit-learn, same URLs", "", "_" + _machine(r["machine"]) + "_", "",
             f"{r['urls']:,} URLs sampled from the test split. Batch 1: latency per call over "
             f"{r['config']['latency_calls']:,} (ONNX) / {r['config']['latency_calls_sklearn']:,} (sklearn) calls. "
             f"Batch {r['config']['batch']}: URLs/s, best of repeats. sklearn is capped with threadpoolctl "
             "(BLAS and OpenMP pools); its URL split and lexical features run in onnxruntime (1 thread) by design.", ""]
    rows = []
    for name, e in r["engines"].items():
        rows.append([name, e["onnx_b1"]["p50_ms"], e["onnx_b1"]["p99_ms"], e["onnx_b1"].get("cpu_p50_ms"),
                     e["sklearn_b1"]["p50_ms"], e["sklearn_b1"]["p99_ms"], e["sklearn_b1"].get("cpu_p50_ms"),
                     f"{e['speedup_b1_p50']}x / {e.get('speedup_b1_cpu_p50', '-')}x",
                     e["onnx_b1024_t1"]["urls_per_s_best"],
                     e["onnx_b1024_t1"].get("urls_per_cpu_s"), e["sklearn_b1024_t1"]["urls_per_s_best"],
                     e["sklearn_b1024_t1"].get("urls_per_cpu_s"),
                     f"{e['speedup_b1024_t1']}x / {e.get('speedup_b1024_t1_cpu', '-')}x"])
    lines += _table(["model", "ONNX b1 p50 ms", "ONNX b1 p99 ms", "ONNX b1 CPU p50 ms", "sklearn b1 p50 ms",
                     "sklearn b1 p99 ms", "sklearn b1 CPU p50 ms", "speed-up b1 p50 (wall / CPU)", "ONNX b1024 URLs/s",
                     "ONNX b1024 URLs/CPU-s", "sklearn b1024 URLs/s", "sklearn b1024 URLs/CPU-s",
                     "speed-up b1024 (wall / CPU)"], rows)
    lines += ["(1 thread for both engines; 'CPU' columns use this process's CPU time, which other tenants of the "
              "machine cannot inflate.)", ""]
    e = r["engines"]["ensemble"]
    trows = []
    for k in sorted(x for x in e if x.startswith(("onnx_b1024_t", "sklearn_b1024_t"))):
        trows.append([k.replace("_b1024_t", ", batch 1024, threads "), e[k]["urls_per_s_best"], e[k]["urls_per_s_median"]])
    for k in sorted(x for x in e if x.startswith("onnx_b1_t")):
        trows.append([k.replace("_b1_t", ", batch 1 p50 ms, threads "), e[k]["p50_ms"], e[k]["p99_ms"]])
    if "sklearn_b1_default_threads" in e:
        trows.append(["sklearn, default thread pools, batch 1 p50/p99 ms", e["sklearn_b1_default_threads"]["p50_ms"],
                      e["sklearn_b1_default_threads"]["p99_ms"]])
    lines += ["Ensemble, threads:", ""] + _table(["engine", "best (URLs/s or p50)", "median (URLs/s or p99)"], trows)
    lm = r["load_and_memory"]
    lines += ["Load and memory (fresh process per engine: import, load, score 1 then 1024 URLs):", ""]
    lines += _table(["engine", "file MB", "load s (cold process)", "load s (in process)", "RSS after imports MB",
                     "RSS after load MB", "peak RSS MB"],
                    [[k, v["file_mb"], v["load_s"], v["load_s_in_process"], v["rss_after_imports_mb"],
                      v["rss_after_load_mb"], v["peak_rss_mb"]] for k, v in lm.items()])
    d = r["detector_b1024"]
    lines += [f"Product path (`Detector.predict_proba`, {d['batch']:,} URLs per call, URL-length order, "
              f"{d['session_threads']}): {_f(d['urls_per_s_best'])} URLs/s best, {_f(d['urls_per_s_median'])} median, "
              f"{_f(d['urls_per_cpu_s'])} URLs per CPU-second.", ""]
    lines += _reconciliation(r)
    g = r["graph"]
    lines += [f"Graph timed: {g['nodes']} nodes, {g['mb']} MB; "
              + ", ".join(f"{k} {v}" for k, v in g["ops"].items()) + f"; nodes computing what an earlier node "
              f"computed: {g['duplicate_nodes']}.", ""]
    if "baseline_graph" in r:
        bg = r["baseline_graph"]
        lines += [f"Baseline graph: {bg['nodes']} nodes, {bg['mb']} MB; " + ", ".join(f"{k} {v}" for k, v in bg["ops"].items())
                  + f"; nodes computing what an earlier node computed: {bg['duplicate_nodes']}.", ""]
    lines += ["Targets (issue 12; both harnesses, the lower figure counts):", "",
              *[f"- {line}" for line in _target_lines(r["targets"])],
              f"- parity of what was timed: max |P_onnx - P_sklearn| = {r['parity_max_abs_diff']:.2e}", ""]
    return lines


def _target_lines(t) -> list[str]:
    return [f"batch-1 p50 <= 0.2 ms: bench {t['onnx_b1_p50_ms']} ms wall / {t['onnx_b1_cpu_p50_ms']} ms CPU, "
            f"independent {t['independent_b1_p50_ms']} ms wall / {t['independent_b1_cpu_p50_ms']} ms CPU: "
            f"wall {_f(t['b1_p50_le_0.2ms'])}, CPU {_f(t['b1_cpu_p50_le_0.2ms'])}",
            f">= 20,000 URLs/s on one core at batch 1024: bench {_f(t['onnx_b1024_t1_urls_per_s'])} wall / "
            f"{_f(t['onnx_b1024_t1_urls_per_cpu_s'])} per CPU-s, independent {_f(t['independent_b1024_urls_per_s'])} wall / "
            f"{_f(t['independent_b1024_urls_per_cpu_s'])} per CPU-s: CPU {_f(t['b1024_ge_20k_cpu'])}, wall "
            f"{_f(t['b1024_ge_20k_wall'])}",
            f">= 5x sklearn at batch 1024 (1 thread each): {t['speedup_vs_sklearn_b1024_cpu']}x on CPU time, "
            f"{t['speedup_vs_sklearn_b1024_wall']}x wall: {_f(t['speedup_ge_5x_cpu'])}",
            f"ratio to the physical limit ({_f(t['physical_limit_urls_per_s'])} URLs/s per core): "
            f"{t['ratio_to_physical_limit']:.2f}",
            f"load average when measured: {'/'.join(str(x) for x in t['load_average'])}"]


def _lever_summary(variants) -> list[str]:
    """The most accurate model lever that reaches 20k URLs per CPU-second, against the shipped model."""
    base = variants[0]
    fast = [v for v in variants[1:] if (v.get("b1024_urls_per_cpu_s") or 0) >= 20000]
    if not fast:
        return [f"| ... with a model lever | none of {len(variants) - 1} variants reaches 20k URLs/CPU-s | **no** |"]
    best = max(fast, key=lambda v: (v["tpr_at_fpr_0.01"], v["b1024_urls_per_cpu_s"]))
    return [f"| ... with a model lever (levers table; params.yaml unchanged) | {best['variant']}: "
            f"{_f(best['b1024_urls_per_cpu_s'])} URLs/CPU-s, b1 {best.get('b1_cpu_p50_ms')} ms CPU; TPR@1e-2 "
            f"{best['tpr_at_fpr_0.01']:.4f} (shipped {base['tpr_at_fpr_0.01']:.4f}), future "
            f"{_f(best.get('future_tpr_at_fpr_0.01'), 4)} (shipped {_f(base.get('future_tpr_at_fpr_0.01'), 4)}) "
            f"| 20k/CPU-s: yes, at that accuracy cost |"]


def _serving_summary(t) -> list[str]:
    return [f"| ONNX batch-1 p50 <= 0.2 ms (both harnesses) | {max(t['onnx_b1_p50_ms'], t['independent_b1_p50_ms']):.3f} ms "
            f"wall, {max(t['onnx_b1_cpu_p50_ms'], t['independent_b1_cpu_p50_ms']):.3f} ms CPU | "
            f"wall {_f(t['b1_p50_le_0.2ms'])}, CPU {_f(t['b1_cpu_p50_le_0.2ms'])} |",
            f"| >= 20k URLs/s on one core at batch 1024 | {_f(min(t['onnx_b1024_t1_urls_per_cpu_s'], t['independent_b1024_urls_per_cpu_s']))} "
            f"per CPU-s, {_f(min(t['onnx_b1024_t1_urls_per_s'], t['independent_b1024_urls_per_s']))} wall (load "
            f"{t['load_average'][0]}); {t['ratio_to_physical_limit']:.2f} of the ~100k/s physical limit | "
            f"CPU {_f(t['b1024_ge_20k_cpu'])}, wall {_f(t['b1024_ge_20k_wall'])} |",
            f"| >= 5x sklearn at batch 1024 | {t['speedup_vs_sklearn_b1024_cpu']}x CPU, {t['speedup_vs_sklearn_b1024_wall']}x wall "
            f"| {_f(t['speedup_ge_5x_cpu'])} |"]


def _reconciliation(r) -> list[str]:
    ind = r["independent"]
    lines = ["### Reconciliation: the two harnesses, one factor at a time", "",
             f"`benchmarks/independent_serving.py` (onnxruntime, numpy and the standard library only) in a fresh "
             f"process on the same {ind['urls']:,} URLs: {ind['calls']:,} batch-1 calls, {ind['repeats']} batch-"
             f"{ind['batch']:,} calls, each on a different slice; load average {'/'.join(map(str, ind['load_average_before']))} "
             f"before, {'/'.join(map(str, ind['load_average_after']))} after. Each '...' row changes one thing. "
             "Throughput per CPU-second is what one core does; wall time adds whatever the other tenants take.", ""]
    lines += _table(["setup", "b1 p50 ms", "b1 CPU p50 ms", "b1024 URLs/s median", "b1024 URLs/s best",
                     "b1024 URLs/CPU-s", "CPU throughput vs independent default"],
                    [[x["setup"], x["b1_p50_ms"], x["b1_cpu_p50_ms"], x["urls_per_s_median"], x["urls_per_s_best"],
                      x["urls_per_cpu_s"], f"{x['cpu_ratio_vs_independent']:.2f}x"] for x in r["reconciliation"]])
    return lines


def _levers(r) -> list[str]:
    lines = ["## 2. Speed levers", "", "_" + _machine(r["machine"]) + "_", "",
             "### onnxruntime graph optimisation level (shipped graph, 1 thread)", ""]
    lines += _table(["level", "session create s", "b1 p50 ms", "b1 p99 ms", "b1 CPU p50 ms", "b1024 URLs/s",
                     "b1024 URLs/CPU-s"],
                    [[k, v["session_create_s"], v["b1_p50_ms"], v["b1_p99_ms"], v.get("b1_cpu_p50_ms"),
                      v["b1024_urls_per_s"], v.get("b1024_urls_per_cpu_s")]
                     for k, v in r["ort_optimisation_level"].items()])
    g = r["graph_rewrites"]
    lines += ["### Exact graph rewrites (the given ONNX file vs this checkout's export of the same model)", "",
              *[f"- {c}" for c in g["changes"]],
              f"- nodes {g['nodes_before']} -> {g['nodes_after']}; max |P - P_sklearn| after rewrite "
              f"{g['max_abs_proba_diff_vs_sklearn']:.2e}", ""]
    lines += _table(["graph", "b1 p50 ms", "b1 p99 ms", "b1 CPU p50 ms", "b1024 URLs/s", "b1024 URLs/CPU-s"],
                    [[k, v["b1_p50_ms"], v["b1_p99_ms"], v.get("b1_cpu_p50_ms"), v["b1024_urls_per_s"],
                      v.get("b1024_urls_per_cpu_s")] for k, v in
                     (("shipped", g["baseline"]), ("rewritten", g["rewritten"]))])
    lines += ["### intra-op threads (rewritten graph)", ""]
    lines += _table(["threads", "b1 p50 ms", "b1024 URLs/s best", "b1024 URLs/s median", "b1024 URLs/CPU-s"],
                    [[k, v["b1_p50_ms"], v["urls_per_s_best"], v["urls_per_s_median"], v.get("urls_per_cpu_s")]
                     for k, v in r["intra_op_threads"].items()])
    if "model_variants" in r:
        lines += ["### Model levers: accuracy and speed", "", r["model_variants_note"], ""]
        lines += _table(["variant", "ROC AUC", "TPR@FPR=1e-2", "future ROC AUC", "future TPR@FPR=1e-2", "b1 p50 ms",
                         "b1 CPU p50 ms", "b1024 URLs/s", "b1024 URLs/CPU-s", "ONNX MB", "fit s"],
                        [[v["variant"], f"{v['roc_auc']:.4f}", f"{v['tpr_at_fpr_0.01']:.4f}",
                          _f(v.get("future_roc_auc"), 4), _f(v.get("future_tpr_at_fpr_0.01"), 4), v["b1_p50_ms"],
                          v.get("b1_cpu_p50_ms"), v["b1024_urls_per_s"], v.get("b1024_urls_per_cpu_s"), v["onnx_mb"],
                          v["fit_s"]] for v in r["model_variants"]])
    return lines


def _candidates(r) -> list[str]:
    lines = ["### Shortlist, interleaved A/B", "", "_" + _machine(r["machine"]) + "_", "",
             f"{r['rounds']} rounds; in each, every candidate gets {r['calls_per_round']} batch-1 calls and 3 "
             "batch-1024 runs (1 thread, level all). Medians over rounds (URLs/s: best). Accuracy on the test "
             "split.", ""]
    lines += _table(["candidate", "ROC AUC", "TPR@FPR=1e-2", "b1 p50 ms", "b1 p99 ms", "b1 CPU p50 ms", "b1024 URLs/s",
                     "b1024 URLs/CPU-s", "ONNX MB"],
                    [[c["candidate"], f"{c['roc_auc']:.4f}", f"{c['tpr_at_fpr_0.01']:.4f}", c["b1_p50_ms"], c["b1_p99_ms"],
                      c["b1_cpu_p50_ms"], c["b1024_urls_per_s"], c["b1024_urls_per_cpu_s"], c["onnx_mb"]]
                     for c in r["candidates"]])
    return lines


def _profile(r) -> list[str]:
    lines = ["## 4. Profiles", "", "_" + _machine(r["machine"]) + "_", "",
             "### ONNX scoring: onnxruntime node profile (kernel time per run, 1 thread)", ""]
    profs = [(f"shipped, {k}", v) for k, v in r["onnx"].items()]
    profs += [(f"rewritten, {k}", v) for k, v in r.get("onnx_rewritten", {}).items() if k != "changes"]
    for label, p in profs:
        lines += [f"**{label}**: wall {p['wall_ms_per_run']} ms/run, kernels {p['kernel_ms_per_run']} ms/run, "
                  f"{p['nodes']} nodes", ""]
        lines += _table(["part", "ms/run", "share"], [[k, v["ms"], f"{v['share']:.0%}"] for k, v in p["by_part"].items()])
        lines += _table(["top nodes", "op", "us/run", "share"],
                        [[n["node"], n["op"], n["us"], f"{n['share']:.0%}"] for n in p["top_nodes"][:8]])
    if "train_stage" in r:
        t = r["train_stage"]
        lines += [f"### train stage (cProfile of `model.fit` on {t['rows']:,} URLs: {t['wall_s']} s)", "",
                  f"Member fits on 20k rows (wall s): {t['member_fit_s_on_20k_rows']}. {t['note']}.", ""]
        lines += _table(["function (by cumulative time)", "calls", "cumulative s", "own s"],
                        [[f"`{x['function']}`", x["calls"], x["cumulative_s"], x["own_s"]] for x in t["by_cumulative"]])
        lines += _table(["function (by own time)", "calls", "own s", "cumulative s"],
                        [[f"`{x['function']}`", x["calls"], x["own_s"], x["cumulative_s"]] for x in t["by_own_time"]])
    return lines


def _scaling(r) -> list[str]:
    lines = ["## 3a. Pipeline scaling: `dvc repro --force`", "", "_" + _machine(r["machine"]) + "_", "",
             "Larger data sets keep every real row and add perturbed copies of randomly drawn real rows "
             "(see `Perturber` in benchmarks/_scaling.py: scheme/www toggles, a new subdomain label, a typo-squat "
             "of the registered domain -- a new split group --, a path segment or query value re-drawn from the "
             "same class's real tokens, digit runs re-drawn); every raw file is scaled, variants are unique. "
             f"{r['note']}.", ""]
    stages = list(dict.fromkeys(st for run in r["runs"] for st in (run.get("stages_run") or run["stages"])))
    rows = []
    for run in r["runs"]:
        def cell(s):
            st = run["stages"].get(s)
            if not st:
                return "-"
            return f"{st['wall_s']:.0f} s ({st.get('cpu_s', 0):.0f} cpu) / {st['peak_rss_mb']:,.0f} MB"
        rows.append([f"{run['factor']}x", run["raw_rows"], run["clean_rows"],
                     f"{run['wall_s']:.0f} s ({run.get('cpu_s', 0):.0f} cpu)",
                     "/".join(str(x) for x in run.get("load_average_after", []))] + [cell(s) for s in stages])
    lines += _table(["data", "raw rows", "clean rows", "total wall (CPU) s", "load avg after"]
                    + [f"{s}: wall (CPU) s / peak RSS" for s in stages], rows)
    if r.get("partial"):
        lines += ["_Partial: the remaining factors were still running or were interrupted._", ""]
    ex = r.get("exponent_time_vs_rows", {})
    if ex:
        lines += ["Fitted exponent b in time ~ rows^b (least squares on log-log over the factors; "
                  "'(cpu)' = on CPU seconds, which a busy machine does not inflate): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in ex.items() if v is not None), ""]
    return lines


def _ci(r) -> list[str]:
    lines = ["## 3b. CI overhead", "", "_" + _machine(r["machine"]) + "_", ""]
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
    lines += _table(["what", "wall s", "stages run"], rows)
    return lines


def _monitor_targets(r) -> list[str]:
    """The monitor's bar (100M Parquet rows <= 2 GB, <= 60 s) and the engines' equality."""
    out = []
    bar = r["bar"]
    big = max(r["scale"], key=lambda x: x["rows"])
    if big["rows"] >= bar["rows"]:
        out.append(f"| monitor: {bar['rows']:,} Parquet rows <= {bar['peak_rss_mb'] / 1024:.0f} GB peak RSS, "
                   f"<= {bar['wall_s']} s | {big['peak_rss_mb']:,.0f} MB, {big['wall_s']:.0f} s wall "
                   f"({big['cpu_s']:.0f} CPU s) at load {big['load_average_after'][0]} | "
                   f"RSS {_f(big['peak_rss_mb'] <= bar['peak_rss_mb'])}, time {_f(big['wall_s'] <= bar['wall_s'])} "
                   f"wall / {_f(big['cpu_s'] / 2 <= bar['wall_s'])} CPU on 2 cores |")
    e = r["engines"]
    same = all(all(v.values()) for v in e["identical"].values())
    out.append(f"| monitor: Spark local and DuckDB identical on one log | {e['rows']:,} rows, windows "
               f"{', '.join(e['identical'])}: monitor.json and rejects.csv byte-identical | {_f(same)} |")
    return out


def _monitor(r) -> list[str]:
    lines = ["## 5. The monitor at production volume", "", "_" + _machine(r["machine"]) + "_", "",
             "`python -m pipeline monitor` as a subprocess on a generated Parquet log (timestamp, model_version, "
             "score; a year of 2024), peak RSS summed over its whole process tree (a Spark JVM included), "
             "sampled every 0.1 s; CPU time is the tree's user + system time, which other tenants of the "
             "machine cannot inflate.", ""]
    lines += _table(["engine", "rows", "log MB", "wall s", "CPU s", "peak RSS MB", "load avg after"],
                    [[x["engine"], x["rows"], x["log_mb"], x["wall_s"], x["cpu_s"], x["peak_rss_mb"],
                      "/".join(str(v) for v in x["load_average_after"])] for x in r["scale"]])
    e = r["engines"]
    lines += [f"Spark local (`--engine spark --master local[2]`, JVM start included) against DuckDB on one "
              f"{e['rows']:,}-row log with {e['rows_rejected']:,} bad rows, same SQL:", ""]
    lines += _table(["engine", "window", "wall s", "CPU s", "peak RSS MB", "processes"],
                    [[x["engine"], x["window"], x["wall_s"], x["cpu_s"], x["peak_rss_mb"], x["processes"]]
                     for x in e["runs"]])
    lines += _table(["window", "monitor.json identical", "rejects.csv identical"],
                    [[w, v["monitor.json"], v["rejects.csv"]] for w, v in e["identical"].items()])
    return lines


def _batch(r) -> list[str]:
    lines = ["## 6. Batch scoring: `score --file urls.txt --output scores.parquet`", "",
             "_" + _machine(r["machine"]) + "_", "",
             f"The product command line as a subprocess; {r['note']}. Peak RSS is summed over the process tree "
             "(the scorer and its workers, polled every 0.2 s; pages shared between processes counted in each). "
             "CPU is user+system of the whole tree; 'cores got' = CPU s / wall s, what the scheduler gave the run. "
             "Per core = URLs/s / workers. When the load average exceeds the cores, wall-clock URLs/s measures the "
             "share of the machine a run got, not its mode: compare URLs/CPU-s.", ""]
    rows = [[f"{x['mode']}" + (" (default)" if x["mode"] == r["default_mode"] else ""), x["workers"], x["urls"],
             x["wall_s"], x["cpu_s"], round(x["cpu_s"] / x["wall_s"], 2), x["urls_per_s"], x["urls_per_s_per_core"],
             x["urls_per_cpu_s"], x["peak_rss_tree_mb"], f"{x['load_average_before']} / {x['load_average_after']}"]
            for x in [*r["compare"], r["large"]]]
    lines += _table(["mode", "workers", "URLs", "wall s", "CPU s", "cores got", "URLs/s", "URLs/s per core",
                     "URLs/CPU-s", "peak RSS MB", "load avg before / after"], rows)
    efficient = max(r["compare"], key=lambda x: x["urls_per_cpu_s"])
    lines += [f"Fastest wall clock on the comparison file in this run: **{r['fastest_mode']}**; fewest CPU seconds "
              f"per URL: **{efficient['mode']}** (the default is {r['default_mode']}). Input file for the large run: "
              f"{r['input_bytes'] / 2**20:,.0f} MB.", ""]
    return lines


def _train_memory(r) -> list[str]:
    """Section 3c: the train stage alone -- peak RSS, CPU, phases, fits and projections."""
    lines = ["## 3c. Training memory: the train stage alone", "", "_" + _machine(r["machine"]) + "_", "",
             f"Data as in 3a (perturbed copies of real rows, every raw file scaled), then the prepare stage; "
             f"{r['note']}. Fits shortened ({_flat(r['fit_override']) or 'not shortened'}): memory does not depend on the "
             "iteration count (L-BFGS keeps a fixed history; trees are a few KB each), time does, so CPU and wall "
             "times here are for the shortened fits.", ""]
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
    lines += _table(header, rows)
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
    lines += _table(["phase", "s", "peak RSS MB"] + ([f"s at `{ref}`", f"peak RSS MB at `{ref}`"] if base else []), prow)
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
                         + [f"{proj[k].get('power', 0):,.0f} / {proj[k].get('linear', 0):,.0f}" for k in _by_number(proj)])
        lines += [f"Fits over the measured factors (rows = train rows; 1x = {pj['base_rows']:,}) and projections "
                  "(power law / linear):", ""]
        lines += _table(["metric", "power law", "linear (fixed + per row)"]
                        + [f"{k} projected" for k in _by_number(pj["projected"]["ru_maxrss_mb"])], frows)
        if pj["max_rows_for_ram"]:
            lines += [f"Largest train split whose projected peak (linear fit) fits in {pj['headroom']:.0%} of a "
                      "runner's RAM: " + ", ".join(f"{k}: {v:,} rows ({v / pj['base_rows']:.0f}x)"
                                                   for k, v in ((k, pj["max_rows_for_ram"][k])
                                                                for k in _by_number(pj["max_rows_for_ram"]))) + ".", ""]
    return lines


def _flat(d: dict, prefix: str = "") -> str:
    """{'a': {'b': 1}} -> 'a.b=1' (a params override, readable)."""
    return ", ".join(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else f"{prefix}{k}={v}" for k, v in d.items())


def _by_number(d: dict) -> list[str]:
    """Keys like '30x', '100x', '7 GB' in numeric order (results.json stores keys sorted as text)."""
    return sorted(d, key=lambda k: float(k.rstrip("x").split()[0]))
