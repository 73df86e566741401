"""RESULTS.md sections 1, 2 and 4: serving, the speed levers and shortlist, the profiles."""
from __future__ import annotations

from typing import Any

from benchmarks._markdown import cell, machine_line, table
from pipeline.formatting import num, pct


def render_serving(r: dict[str, Any]) -> list[str]:
    lines = ["## 1. Serving: onnxruntime vs scikit-learn, same URLs", "", "_" + machine_line(r["machine"]) + "_", "",
             (f"{r['urls']:,} URLs sampled from the test split. Batch 1: latency per call over "
             f"{r['config']['latency_calls']:,} (ONNX) / {r['config']['latency_calls_sklearn']:,} (sklearn) calls. "
             f"Batch {r['config']['batch']}: URLs/s, best of repeats. sklearn is capped with threadpoolctl "
             "(BLAS and OpenMP pools); its URL split and lexical features run in onnxruntime (1 thread) by design."), ""]
    rows = []
    for name, e in r["engines"].items():
        rows.append([name, e["onnx_b1"]["p50_ms"], e["onnx_b1"]["p99_ms"], e["onnx_b1"].get("cpu_p50_ms"),
                     e["sklearn_b1"]["p50_ms"], e["sklearn_b1"]["p99_ms"], e["sklearn_b1"].get("cpu_p50_ms"),
                     f"{e['speedup_b1_p50']}x / {e.get('speedup_b1_cpu_p50', '-')}x",
                     e["onnx_b1024_t1"]["urls_per_s_best"],
                     e["onnx_b1024_t1"].get("urls_per_cpu_s"), e["sklearn_b1024_t1"]["urls_per_s_best"],
                     e["sklearn_b1024_t1"].get("urls_per_cpu_s"),
                     f"{e['speedup_b1024_t1']}x / {e.get('speedup_b1024_t1_cpu', '-')}x"])
    lines += table(["model", "ONNX b1 p50 ms", "ONNX b1 p99 ms", "ONNX b1 CPU p50 ms", "sklearn b1 p50 ms",
                     "sklearn b1 p99 ms", "sklearn b1 CPU p50 ms", "speed-up b1 p50 (wall / CPU)", "ONNX b1024 URLs/s",
                     "ONNX b1024 URLs/CPU-s", "sklearn b1024 URLs/s", "sklearn b1024 URLs/CPU-s",
                     "speed-up b1024 (wall / CPU)"], rows)
    lines += [("(1 thread for both engines; 'CPU' columns use this process's CPU time, which other tenants of the "
              "machine cannot inflate.)"), ""]
    e = r["engines"]["ensemble"]
    trows = []
    for k in sorted(x for x in e if x.startswith(("onnx_b1024_t", "sklearn_b1024_t"))):
        trows.append([k.replace("_b1024_t", ", batch 1024, threads "), e[k]["urls_per_s_best"], e[k]["urls_per_s_median"]])
    for k in sorted(x for x in e if x.startswith("onnx_b1_t")):
        trows.append([k.replace("_b1_t", ", batch 1 p50 ms, threads "), e[k]["p50_ms"], e[k]["p99_ms"]])
    if "sklearn_b1_default_threads" in e:
        trows.append(["sklearn, default thread pools, batch 1 p50/p99 ms", e["sklearn_b1_default_threads"]["p50_ms"],
                      e["sklearn_b1_default_threads"]["p99_ms"]])
    lines += ["Ensemble, threads:", ""] + table(["engine", "best (URLs/s or p50)", "median (URLs/s or p99)"], trows)
    lm = r["load_and_memory"]
    lines += ["Load and memory (fresh process per engine: import, load, score 1 then 1024 URLs):", ""]
    lines += table(["engine", "file MB", "load s (cold process)", "load s (in process)", "RSS after imports MB",
                     "RSS after load MB", "peak RSS MB"],
                    [[k, v["file_mb"], v["load_s"], v["load_s_in_process"], v["rss_after_imports_mb"],
                      v["rss_after_load_mb"], v["peak_rss_mb"]] for k, v in lm.items()])
    d = r["detector_b1024"]
    lines += [(f"Product path (`Detector.predict_proba`, {d['batch']:,} URLs per call, URL-length order, "
              f"{d['session_threads']}): {cell(d['urls_per_s_best'])} URLs/s best, {cell(d['urls_per_s_median'])} median, "
              f"{cell(d['urls_per_cpu_s'])} URLs per CPU-second."), ""]
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


def _target_lines(t: dict[str, Any]) -> list[str]:
    return [(f"batch-1 p50 <= 0.2 ms: bench {t['onnx_b1_p50_ms']} ms wall / {t['onnx_b1_cpu_p50_ms']} ms CPU, "
            f"independent {t['independent_b1_p50_ms']} ms wall / {t['independent_b1_cpu_p50_ms']} ms CPU: "
            f"wall {cell(t['b1_p50_le_0.2ms'])}, CPU {cell(t['b1_cpu_p50_le_0.2ms'])}"),
            (f">= 20,000 URLs/s on one core at batch 1024: bench {cell(t['onnx_b1024_t1_urls_per_s'])} wall / "
            f"{cell(t['onnx_b1024_t1_urls_per_cpu_s'])} per CPU-s, independent {cell(t['independent_b1024_urls_per_s'])} wall / "
            f"{cell(t['independent_b1024_urls_per_cpu_s'])} per CPU-s: CPU {cell(t['b1024_ge_20k_cpu'])}, wall "
            f"{cell(t['b1024_ge_20k_wall'])}"),
            (f">= 5x sklearn at batch 1024 (1 thread each): {t['speedup_vs_sklearn_b1024_cpu']}x on CPU time, "
            f"{t['speedup_vs_sklearn_b1024_wall']}x wall: {cell(t['speedup_ge_5x_cpu'])}"),
            (f"ratio to the physical limit ({cell(t['physical_limit_urls_per_s'])} URLs/s per core): "
            f"{t['ratio_to_physical_limit']:.2f}"),
            f"load average when measured: {'/'.join(str(x) for x in t['load_average'])}"]


def lever_summary(variants: list[dict[str, Any]]) -> list[str]:
    """The most accurate model lever that reaches 20k URLs per CPU-second, against the shipped model."""
    base = variants[0]
    fast = [v for v in variants[1:] if (v.get("b1024_urls_per_cpu_s") or 0) >= 20000]
    if not fast:
        return [f"| ... with a model lever | none of {len(variants) - 1} variants reaches 20k URLs/CPU-s | **no** |"]
    best = max(fast, key=lambda v: (v["tpr_at_fpr_0.01"], v["b1024_urls_per_cpu_s"]))
    return [(f"| ... with a model lever (levers table; params.yaml unchanged) | {best['variant']}: "
            f"{cell(best['b1024_urls_per_cpu_s'])} URLs/CPU-s, b1 {best.get('b1_cpu_p50_ms')} ms CPU; TPR@1e-2 "
            f"{best['tpr_at_fpr_0.01']:.4f} (shipped {base['tpr_at_fpr_0.01']:.4f}), future "
            f"{cell(best.get('future_tpr_at_fpr_0.01'), 4)} (shipped {cell(base.get('future_tpr_at_fpr_0.01'), 4)}) "
            f"| 20k/CPU-s: yes, at that accuracy cost |")]


def serving_summary(t: dict[str, Any]) -> list[str]:
    return [(f"| ONNX batch-1 p50 <= 0.2 ms (both harnesses) | {max(t['onnx_b1_p50_ms'], t['independent_b1_p50_ms']):.3f} ms "
            f"wall, {max(t['onnx_b1_cpu_p50_ms'], t['independent_b1_cpu_p50_ms']):.3f} ms CPU | "
            f"wall {cell(t['b1_p50_le_0.2ms'])}, CPU {cell(t['b1_cpu_p50_le_0.2ms'])} |"),
            (f"| >= 20k URLs/s on one core at batch 1024 | {cell(min(t['onnx_b1024_t1_urls_per_cpu_s'], t['independent_b1024_urls_per_cpu_s']))} "
            f"per CPU-s, {cell(min(t['onnx_b1024_t1_urls_per_s'], t['independent_b1024_urls_per_s']))} wall (load "
            f"{t['load_average'][0]}); {t['ratio_to_physical_limit']:.2f} of the ~100k/s physical limit | "
            f"CPU {cell(t['b1024_ge_20k_cpu'])}, wall {cell(t['b1024_ge_20k_wall'])} |"),
            (f"| >= 5x sklearn at batch 1024 | {t['speedup_vs_sklearn_b1024_cpu']}x CPU, {t['speedup_vs_sklearn_b1024_wall']}x wall "
            f"| {cell(t['speedup_ge_5x_cpu'])} |")]


def _reconciliation(r: dict[str, Any]) -> list[str]:
    ind = r["independent"]
    lines = ["### Reconciliation: the two harnesses, one factor at a time", "",
             (f"`benchmarks/independent_serving.py` (onnxruntime, numpy and the standard library only) in a fresh "
             f"process on the same {ind['urls']:,} URLs: {ind['calls']:,} batch-1 calls, {ind['repeats']} batch-"
             f"{ind['batch']:,} calls, each on a different slice; load average {'/'.join(map(str, ind['load_average_before']))} "
             f"before, {'/'.join(map(str, ind['load_average_after']))} after. Each '...' row changes one thing. "
             "Throughput per CPU-second is what one core does; wall time adds whatever the other tenants take."), ""]
    lines += table(["setup", "b1 p50 ms", "b1 CPU p50 ms", "b1024 URLs/s median", "b1024 URLs/s best",
                     "b1024 URLs/CPU-s", "CPU throughput vs independent default"],
                    [[x["setup"], x["b1_p50_ms"], x["b1_cpu_p50_ms"], x["urls_per_s_median"], x["urls_per_s_best"],
                      x["urls_per_cpu_s"], num(x['cpu_ratio_vs_independent'], 2) + "x"] for x in r["reconciliation"]])
    return lines


def render_levers(r: dict[str, Any]) -> list[str]:
    lines = ["## 2. Speed levers", "", "_" + machine_line(r["machine"]) + "_", "",
             "### onnxruntime graph optimisation level (shipped graph, 1 thread)", ""]
    lines += table(["level", "session create s", "b1 p50 ms", "b1 p99 ms", "b1 CPU p50 ms", "b1024 URLs/s",
                     "b1024 URLs/CPU-s"],
                    [[k, v["session_create_s"], v["b1_p50_ms"], v["b1_p99_ms"], v.get("b1_cpu_p50_ms"),
                      v["b1024_urls_per_s"], v.get("b1024_urls_per_cpu_s")]
                     for k, v in r["ort_optimisation_level"].items()])
    g = r["graph_rewrites"]
    lines += ["### Exact graph rewrites (the given ONNX file vs this checkout's export of the same model)", "",
              *[f"- {c}" for c in g["changes"]],
              (f"- nodes {g['nodes_before']} -> {g['nodes_after']}; max |P - P_sklearn| after rewrite "
              f"{g['max_abs_proba_diff_vs_sklearn']:.2e}"), ""]
    lines += table(["graph", "b1 p50 ms", "b1 p99 ms", "b1 CPU p50 ms", "b1024 URLs/s", "b1024 URLs/CPU-s"],
                    [[k, v["b1_p50_ms"], v["b1_p99_ms"], v.get("b1_cpu_p50_ms"), v["b1024_urls_per_s"],
                      v.get("b1024_urls_per_cpu_s")] for k, v in
                     (("shipped", g["baseline"]), ("rewritten", g["rewritten"]))])
    lines += ["### intra-op threads (rewritten graph)", ""]
    lines += table(["threads", "b1 p50 ms", "b1024 URLs/s best", "b1024 URLs/s median", "b1024 URLs/CPU-s"],
                    [[k, v["b1_p50_ms"], v["urls_per_s_best"], v["urls_per_s_median"], v.get("urls_per_cpu_s")]
                     for k, v in r["intra_op_threads"].items()])
    if "model_variants" in r:
        lines += ["### Model levers: accuracy and speed", "", r["model_variants_note"], ""]
        lines += table(["variant", "ROC AUC", "TPR@FPR=1e-2", "future ROC AUC", "future TPR@FPR=1e-2", "b1 p50 ms",
                         "b1 CPU p50 ms", "b1024 URLs/s", "b1024 URLs/CPU-s", "ONNX MB", "fit s"],
                        [[v["variant"], num(v['roc_auc'], 4), num(v['tpr_at_fpr_0.01'], 4),
                          cell(v.get("future_roc_auc"), 4), cell(v.get("future_tpr_at_fpr_0.01"), 4), v["b1_p50_ms"],
                          v.get("b1_cpu_p50_ms"), v["b1024_urls_per_s"], v.get("b1024_urls_per_cpu_s"), v["onnx_mb"],
                          v["fit_s"]] for v in r["model_variants"]])
    return lines


def render_candidates(r: dict[str, Any]) -> list[str]:
    lines = ["### Shortlist, interleaved A/B", "", "_" + machine_line(r["machine"]) + "_", "",
             (f"{r['rounds']} rounds; in each, every candidate gets {r['calls_per_round']} batch-1 calls and 3 "
             "batch-1024 runs (1 thread, level all). Medians over rounds (URLs/s: best). Accuracy on the test "
             "split."), ""]
    lines += table(["candidate", "ROC AUC", "TPR@FPR=1e-2", "b1 p50 ms", "b1 p99 ms", "b1 CPU p50 ms", "b1024 URLs/s",
                     "b1024 URLs/CPU-s", "ONNX MB"],
                    [[c["candidate"], num(c['roc_auc'], 4), num(c['tpr_at_fpr_0.01'], 4), c["b1_p50_ms"], c["b1_p99_ms"],
                      c["b1_cpu_p50_ms"], c["b1024_urls_per_s"], c["b1024_urls_per_cpu_s"], c["onnx_mb"]]
                     for c in r["candidates"]])
    return lines


def render_profile(r: dict[str, Any]) -> list[str]:
    lines = ["## 4. Profiles", "", "_" + machine_line(r["machine"]) + "_", "",
             "### ONNX scoring: onnxruntime node profile (kernel time per run, 1 thread)", ""]
    profs = [(f"shipped, {k}", v) for k, v in r["onnx"].items()]
    profs += [(f"rewritten, {k}", v) for k, v in r.get("onnx_rewritten", {}).items() if k != "changes"]
    for label, p in profs:
        lines += [(f"**{label}**: wall {p['wall_ms_per_run']} ms/run, kernels {p['kernel_ms_per_run']} ms/run, "
                  f"{p['nodes']} nodes"), ""]
        lines += table(["part", "ms/run", "share"], [[k, v["ms"], pct(v['share'], 0)] for k, v in p["by_part"].items()])
        lines += table(["top nodes", "op", "us/run", "share"],
                        [[n["node"], n["op"], n["us"], pct(n['share'], 0)] for n in p["top_nodes"][:8]])
    if "train_stage" in r:
        t = r["train_stage"]
        lines += [f"### train stage (cProfile of `model.fit` on {t['rows']:,} URLs: {t['wall_s']} s)", "",
                  f"Member fits on 20k rows (wall s): {t['member_fit_s_on_20k_rows']}. {t['note']}.", ""]
        lines += table(["function (by cumulative time)", "calls", "cumulative s", "own s"],
                        [[f"`{x['function']}`", x["calls"], x["cumulative_s"], x["own_s"]] for x in t["by_cumulative"]])
        lines += table(["function (by own time)", "calls", "own s", "cumulative s"],
                        [[f"`{x['function']}`", x["calls"], x["own_s"], x["cumulative_s"]] for x in t["by_own_time"]])
    return lines
