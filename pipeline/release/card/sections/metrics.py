"""Metrics per member and per source on the test split, and the Operating point (the threshold rule)."""
from __future__ import annotations

from pipeline.common import md_cell, md_table
from pipeline.formatting import MISSING, count, num
from pipeline.release.card.format import (
    RIGHT,
    metric_keys,
    metric_label,
    rates,
    with_interval,
)
from pipeline.release.card.sources import Estimate, Sources, dig


def member_fields(src: Sources) -> dict[str, str]:
    """Each member alone, and the ensemble's paired gain over each."""
    m = src["metrics"]
    ens, members, deltas = m["ensemble"], m["members"], m["ensemble_minus_member"]
    rows = [[metric_label(k), num(ens[k]["value"])] + [num(dig(members, n, k, "value")) for n in members]
            for k in metric_keys(ens)]
    rows.append(["threshold", num(m["threshold"], 6)] + [num(dig(members, n, "threshold"), 6) for n in members])
    delta_keys = metric_keys(next(iter(deltas.values()), {}))
    delta_rows = [[metric_label(k)] + [with_interval(dig(deltas, n, k)) for n in deltas] for k in delta_keys]
    return {
        "member_table": md_table(["metric", "ensemble"] + [md_cell(n) for n in members],
                               ["---"] + [RIGHT] * (len(members) + 1), rows),
        "delta_table": md_table(["metric"] + [f"ensemble - {md_cell(n)}" for n in deltas],
                              ["---"] + [RIGHT] * len(deltas), delta_rows),
    }


def _gain_verdict(gain: dict) -> str:
    if gain.get("significant_gain"):
        return "ensemble better"
    if gain.get("significant_loss"):
        return "**ensemble worse**"
    return "no significant difference"


def per_source_fields(src: Sources) -> dict[str, str]:
    """The test split per source: ensemble and members, and the ensemble against its best member."""
    per_source = src["metrics"].get("per_source", {})
    rows, gains = [], []
    for source, entry in per_source.items():
        models = {"ensemble": entry.get("ensemble"), **(entry.get("members") or {})}
        rows += [[md_cell(source), md_cell(model), count(dig(e, "rows")), *rates(e)] for model, e in models.items()]
        g = entry.get("ensemble_vs_best_member") or {}
        gains.append([md_cell(source), md_cell(metric_label(g.get("metric", MISSING))),
                      md_cell(g.get("best_member", MISSING)), num(g.get("best_member_value")),
                      with_interval(g.get("delta")), _gain_verdict(g)])
    return {
        "per_source_table": md_table(["source", "model", "URLs", "ROC AUC", "recall", "FPR"],
                                   ["---", "---"] + [RIGHT] * 4, rows),
        "per_source_gain_table": md_table(
            ["source", "compared on", "best member", "best member's value", "ensemble - best member [95%]",
             "verdict"], ["---", "---", "---", RIGHT, RIGHT, "---"], gains),
    }


def _validation_rates(entry: dict) -> list[str]:
    """FPR only with legitimate rows, recall only with phishing rows (n/a otherwise, whatever the report holds)."""
    legit, rows = entry.get("legitimate"), entry.get("rows")
    fpr = entry.get("fpr") if legit else None
    recall = entry.get("recall") if legit is not None and rows is not None and rows > legit else None
    return [num(fpr), num(recall)]


def _bound(entry: dict, minimum: int, binding: str, source: str) -> str:
    if source == binding:
        return "yes (sets the threshold)"
    if minimum <= 0:
        return "no (per-source rule off)"
    legit = entry.get("legitimate") or 0
    return "yes" if legit and legit >= minimum else "no (too few legitimate URLs)"


def operating_point_fields(src: Sources) -> dict[str, str]:
    """The threshold rule, the binding source and the validation rates per source."""
    op, final = src["final_fit"]["operating_point"], src["final_fit"]
    point = op["ensemble"]
    binding, minimum = point.get("binding_source") or MISSING, op.get("min_legitimate_per_source") or 0
    rows = [[md_cell(s), count(e.get("rows")), count(e.get("legitimate")), *_validation_rates(e),
             _bound(e, minimum, binding, s)] for s, e in point.get("per_source", {}).items()]
    return {
        "validation_fpr": num(point["validation_fpr"]),
        "validation_recall": num(point["validation_recall"]),
        "binding_sentence": _binding_sentence(binding, minimum, point.get("per_source", {})),
        "validation_source_table": md_table(
            ["source", "validation URLs", "legitimate", "FPR", "recall", "FPR held to the target"],
            ["---", RIGHT, RIGHT, RIGHT, RIGHT, "---"], rows),
        "operating_verdict": _operating_verdict(op["target_fpr"], final["test"]["fpr"]),
    }


def _binding_sentence(binding: str, minimum: int, per_source: dict) -> str:
    if not minimum:
        return ("The per-source rule is off (`operating_point.min_legitimate_per_source` is 0): the sources are "
                "reported, not held to the target.")
    if binding in per_source:
        return f"{md_cell(binding)} needed the highest threshold, so it sets it."
    return "The pooled validation split needed the highest threshold, so it sets it."


def _operating_verdict(target: float, fpr: Estimate) -> str:
    side = "at or below" if fpr["value"] <= target else "above"
    if fpr["ci95_high"] <= target:
        spread = "its whole 95% interval lies below the target"
    elif fpr["ci95_low"] > target:
        spread = "its whole 95% interval lies above the target"
    else:
        spread = "its 95% interval contains the target"
    return (f"The pooled test false-positive rate is {side} the target ({spread}); the threshold was never "
            f"tuned on the test split. Per source, see \"Per source\" under \"Metrics\".")
