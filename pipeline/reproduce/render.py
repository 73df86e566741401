"""The reproduce report in words: terminal lines (through :func:`terminal`) and markdown (through
:func:`md_cell` / :func:`md_table`) (pure)."""
from __future__ import annotations

from pipeline.common import MISSING, md_cell, md_table, terminal
from pipeline.formatting import general, is_missing, num
from pipeline.reproduce.compare import DIFFERS, IDENTICAL, WITHIN

TERMINAL_METRICS = 15  # metric deltas shown in the terminal; summary.md and reproduce.json list all


def _change(value: float | None, fmt: str) -> str:
    """A committed-to-re-trained difference, its sign shown (``+.2e`` in the terminal, ``+.3g`` in markdown)."""
    return MISSING if value is None or is_missing(value) else format(value, fmt)


def _short(digest: str | None) -> str:
    return MISSING if digest is None else terminal(digest[:12]) + "…"


def conclusion(report: dict) -> str:
    """One sentence: what the re-training showed."""
    status, reasons = report["verdict"]["status"], "; ".join(report["verdict"]["reasons"])
    if status == IDENTICAL:
        return "byte-identical: the re-trained model and ONNX file are exactly the committed bytes."
    if status == WITHIN:
        return (f"reproduced within tolerance: bytes differ, but every test label agrees and max |ΔP| "
                f"{report['parity']['max_abs_proba_diff']:.2e} <= {report['tolerance']:g} (export.max_abs_proba_diff).")
    if status == DIFFERS:
        return f"NOT reproduced: {terminal(reasons)}."
    return f"could not verify: {terminal(reasons)}."


def headline(report: dict) -> str:
    repro = report["repro"]
    return (f"reproduce: {terminal(report['rev'])} ({report['commit'][:12]}) re-trained on "
            f"{terminal(report['machine'])} in {repro['seconds']:.0f}s; all {len(repro['stages'])} stages re-ran")


def _bytes_line(path: str, entry: dict) -> str:
    digest = ("sha256", entry["committed_sha256"], entry["reproduced_sha256"]) if "committed_sha256" in entry \
        else ("md5", entry["committed_md5"], entry["reproduced_md5"])
    word = (f"identical ({digest[0]} {_short(digest[1])})" if entry["identical"]
            else f"DIFFERS ({digest[0]} committed {_short(digest[1])}, re-trained {_short(digest[2])})")
    return f"  {terminal(path):<34} {word}"


def _other_outputs_line(report: dict) -> str:
    other = [r for r in report["outputs"] if r["path"] not in report["released"]]
    differ = [terminal(r["path"]) for r in other if not r["identical"]]
    line = f"  other outputs: {len(other) - len(differ)} of {len(other)} identical"
    return line + (f"; differ: {', '.join(differ)}" if differ else "")


def _parity_lines(parity: dict | None) -> list[str]:
    if parity is None:
        return []
    lines = [(f"  test split: {parity['rows']:,} URLs scored by both ONNX files (onnxruntime; committed file from "
             f"{terminal(parity['committed_onnx_from'])})"),
             (f"    label agreement {parity['label_agreement']:.4%} ({parity['label_disagreements']:,} differ), "
             f"max |ΔP| {parity['max_abs_proba_diff']:.2e} (tolerance {parity['tolerance']:g})")]
    return lines + [f"    e.g. {terminal(url)}" for url in parity["example_disagreements"][:3]]


def _threshold_line(threshold: dict) -> str:
    return (f"  threshold: committed {num(threshold['committed'], 6)}, re-trained "
            f"{num(threshold['reproduced'], 6)} (Δ {_change(threshold['delta'], '+.2e')})")


def metric_table_lines(rows: list[dict], limit: int = TERMINAL_METRICS) -> list[str]:
    """The metric deltas as fixed-width terminal lines, at most ``limit`` rows."""
    if not rows:
        return ["  metrics.json: every number is the same"]
    width = max(len("metric"), *(len(terminal(r["metric"])) for r in rows[:limit]))
    differ = "number differs" if len(rows) == 1 else "numbers differ"
    lines = [f"  metrics.json: {len(rows)} {differ} (largest |Δ| first)",
             f"    {'metric':<{width}}  {'committed':>12}  {'re-trained':>12}  {'Δ':>10}"]
    lines += [f"    {terminal(r['metric']):<{width}}  {general(r['committed']):>12}  {general(r['reproduced']):>12}  "
              f"{_change(r['delta'], '+.2e'):>10}" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"    … and {len(rows) - limit} more (summary.md, reproduce.json)")
    return lines


def terminal_summary(report: dict) -> list[str]:
    """What the command prints: bytes, and when they differ the parity, threshold and metric deltas."""
    lines = [headline(report)]
    lines += [_bytes_line(path, entry) for path, entry in report["released"].items()]
    lines.append(_other_outputs_line(report))
    if not report["identical"]:
        lines += _parity_lines(report["parity"])
        lines.append(_threshold_line(report["threshold"]))
        lines += metric_table_lines(report["metric_deltas"])
    return lines + [conclusion(report)]


def _md_released(report: dict) -> str:
    rows = []
    for path, entry in report["released"].items():
        kind = "sha256" if "committed_sha256" in entry else "md5"
        rows.append([md_cell(path), kind, md_cell(entry[f"committed_{kind}"]), md_cell(entry[f"reproduced_{kind}"]),
                     "yes" if entry["identical"] else "**no**"])
    return md_table(["file", "digest", "committed", "re-trained", "identical"], ["---", "---", "---", "---", ":-:"],
                    rows)


def _md_parity(report: dict) -> list[str]:
    parity, threshold = report["parity"], report["threshold"]
    rows = [["released threshold (operating_point.json)", general(threshold["committed"]), general(threshold["reproduced"]),
             _change(threshold["delta"], "+.3g")]]
    if parity:
        rows += [["label agreement (test split)", "", f"{parity['label_agreement']:.4%}",
                  f"{parity['label_disagreements']:,} of {parity['rows']:,} differ"],
                 ["max \\|ΔP\\| (test split)", "", f"{parity['max_abs_proba_diff']:.3g}",
                  f"tolerance {parity['tolerance']:g}"]]
    return ["### Predictions", "", md_table(["measure", "committed", "re-trained", "note"],
                                             ["---", "--:", "--:", "---"], rows), ""]


def _md_metrics(rows: list[dict]) -> list[str]:
    if not rows:
        return ["### Metrics", "", "Every number in metrics.json is the same.", ""]
    table = [[md_cell(r["metric"]), general(r["committed"]), general(r["reproduced"]), _change(r["delta"], "+.3g")]
             for r in rows]
    return ["### Metric deltas", "", md_table(["metric", "committed", "re-trained", "Δ"],
                                              ["---", "--:", "--:", "--:"], table), ""]


def _md_outputs(report: dict) -> list[str]:
    rows = [[md_cell(r["path"]), md_cell(r["stage"]), "yes" if r["identical"] else "**no**"]
            for r in report["outputs"]]
    return ["### Every output (dvc.lock md5)", "", md_table(["output", "stage", "identical"], ["---", "---", ":-:"],
                                                            rows), ""]


def markdown_summary(report: dict) -> str:
    """summary.md: the verdict, the released files' digests, predictions, metric deltas, every output."""
    repro = report["repro"]
    lines = [f"## Reproducing {md_cell(report['rev'])} ({md_cell(report['commit'][:12])})", "",
             f"**{conclusion(report)}**", "",  # our words and numbers only
             (f"Re-trained on {md_cell(report['machine'])} in {repro['seconds']:.0f} s with "
             f"`dvc repro --force --no-run-cache` (every stage re-ran: "
             f"{', '.join(md_cell(s) for s in repro['stages'])})."), "", _md_released(report), ""]
    if not report["identical"]:
        lines += _md_parity(report) + _md_metrics(report["metric_deltas"])
    return "\n".join(lines + _md_outputs(report))
