"""The model card: rendered from the pipeline's own outputs (stage `model-card`).

Every number in the card is read from metrics.json, reports/*.json,
dist/manifest.json or params.yaml at render time, or computed from them here
(e.g. the backtest's recall lost per month of model age); none is typed into
the template (model_card/template.md, a ``string.Template``: ``$name`` fields,
``$$`` for a literal dollar). Static facts about the data sources (origin,
licence, collection years) are copied from the data datasheet into the template.

:func:`build_context` assembles the fields from one small function per card
section (:data:`CONTEXT_PARTS`); each returns only its own fields. Tables are
rendered by :func:`pipeline.common.md_table`, and every string from the data that
lands in a table cell goes through :func:`pipeline.common.md_cell`. A value the
outputs do not hold (a small sample lacks some sources, months, slices or classes)
renders as :data:`pipeline.common.MISSING`.

The card rendered by DVC carries no version: the version is assigned when a
release is cut, from what changed since the previous release. The release
builder (``python -m pipeline release``) stamps it into the copy it ships by
rewriting the single ``- **Version:** ...`` line (:func:`stamp_version`);
:func:`unstamp_version` undoes that, so two cards compare equal exactly when
their content other than the version is equal (the PATCH decision).

The stage is cheap: it reads JSON and writes one text file, nothing is scored.
``python -m pipeline model-card --check`` exits 1 if the committed card is not
what the committed outputs render to (CI's stale-card check).
"""
from __future__ import annotations

import re
import string
from pathlib import Path

from pipeline import paths
from pipeline.common import MISSING, load_params, md_cell, md_table, read_json
from pipeline.training.final import released_model

TEMPLATE = paths.CARD_TEMPLATE
CARD = paths.CARD
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

VERSION_PREFIX = "- **Version:** "
UNRELEASED = "assigned at release"
_VERSION_LINE = re.compile(r"^- \*\*Version:\*\* .*$", re.MULTILINE)

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "precision": "precision",
    "recall": "recall (true-positive rate)",
    "f1": "F1",
    "fpr": "false-positive rate",
}
SLICE_TITLES = {
    "scheme": "Scheme",
    "www": "Leading `www.`",
    "tld": "Top-level domain group",
    "length": "URL length (characters)",
}
SPLIT_ORDER = ("train", "validation", "test", "future")
CLASS_ORDER = ("legitimate", "phishing")
RIGHT = "---:"


class CardTemplate(string.Template):
    """``$name`` / ``${name}`` fields; a missing or unused field is an error (see :func:`render`)."""


# -- formatting (the card's only source of number formats; tests parse them back) --------------
NA = MISSING


def num(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}"


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def pp(x: float) -> str:
    """A difference of two rates, in percentage points."""
    return f"{100 * x:.1f} pp"


def count(n: int) -> str:
    return f"{int(n):,}"


def small(x: float) -> str:
    """A tiny non-negative difference (score changes, parity): 0 exactly, else scientific."""
    return "0" if x == 0 else f"{x:.1e}"


def interval(m: dict, fmt=num) -> str:
    return f"[{fmt(m['ci95_low'])}, {fmt(m['ci95_high'])}]"


def with_interval(m: dict, fmt=num) -> str:
    return f"{fmt(m['value'])} {interval(m, fmt)}"


def fmt(value, formatter=num) -> str:
    return NA if value is None else formatter(value)


def _and_list(items: list[str]) -> str:
    items = list(items)
    if not items:
        return NA
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


def metric_label(key: str) -> str:
    if key.startswith("tpr_at_fpr_"):
        return f"recall at FPR {key.removeprefix('tpr_at_fpr_')}"
    return METRIC_LABELS.get(key, key)


def metric_keys(block: dict) -> list[str]:
    """Metrics with intervals in ``block``, in the card's order: known ones first, then TPR@FPR."""
    keys = [k for k, v in block.items() if isinstance(v, dict) and "value" in v]
    known = [k for k in METRIC_LABELS if k in keys]
    tpr = sorted((k for k in keys if k.startswith("tpr_at_fpr_")),
                 key=lambda k: float(k.removeprefix("tpr_at_fpr_")))
    return known + tpr + sorted(set(keys) - set(known) - set(tpr))


def _length_order(name: str) -> float:
    digits = re.findall(r"\d+", name)
    return float(digits[0]) if digits else float("inf")


def _year_order(name: str) -> tuple[int, int]:
    year = int(re.findall(r"\d{4}", name)[0])
    return (year, 0 if "pooled" in name else 1)


def latest_year(recall_by_year: dict) -> str | None:
    """The most recent un-pooled year, or None (a tiny stream may be all pooled)."""
    years = [k for k in recall_by_year if k.isdigit()]
    return max(years, key=int) if years else None


def dig(doc, *keys):
    """``doc[k1][k2]...`` or None when any level is missing (small samples lack some slices)."""
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def rates(entry: dict | None, keys=("roc_auc", "recall", "fpr")) -> list[str]:
    """Table cells for the rates of a rates entry (absent when a class is missing: NA)."""
    return [fmt(dig(entry, k)) for k in keys]


# -- sources ------------------------------------------------------------------------------------
def load_sources(root: Path = Path(".")) -> dict:
    """The pipeline outputs the card is rendered from, plus the params sections it quotes."""
    src = {name: read_json(root / path) for name, path in SOURCES.items()}
    src["final_fit"] = released_model(src["final_fit"], src["operating_point"], src["metrics"])
    params = load_params(root / paths.PARAMS)
    src["params"] = {k: params[k] for k in PARAM_SECTIONS}
    return src


def newest_key(src: dict) -> str:
    """The key of the future split's newest-months headline (params ``evaluate.newest_months``)."""
    return f"newest_{src['params']['evaluate'].get('newest_months', 3)}_months"


# -- card sections: one function each, returning its own ``$fields`` --------------------------------
def summary_fields(src: dict) -> dict[str, str]:
    """Model name, threshold rule, sources and their time span."""
    rep, op = src["data_report"], src["final_fit"]["operating_point"]
    sources = list(rep.get("sources", {}))
    return {
        "name": src["manifest"]["name"],
        "threshold": num(op["ensemble"]["threshold"], 6),
        "held_out_threshold": num(src["metrics"]["threshold"], 6),
        "target_fpr": f"{op['target_fpr']:g}",
        "threshold_rule": threshold_rule(op["target_fpr"], op.get("min_legitimate_per_source") or 0),
        "n_sources": str(len(sources)),
        "source_names": _and_list([md_cell(s) for s in sources]),
        "train_first_seen_min": md_cell(dig(rep, "splits", "train", "first_seen_min") or NA),
        "train_first_seen_max": md_cell(dig(rep, "splits", "train", "first_seen_max") or NA),
        "future_from": md_cell(rep.get("future_from") or NA),
    }


def headline_fields(src: dict) -> dict[str, str]:
    """The ensemble on the test split: headline numbers, the metric table, the confusion matrix."""
    ens, splits = src["metrics"]["ensemble"], src["data_report"]["splits"]
    rec, fpr = ens["recall"], ens["fpr"]
    return {
        "recall": num(rec["value"]), "fpr": num(fpr["value"]),
        "precision": num(ens["precision"]["value"]),
        "test_rows": count(ens["rows"]),
        "test_legitimate": count(splits["test"]["legitimate"]),
        "test_phishing_share_pct": fmt(splits["test"]["phishing_share"], lambda x: pct(x, 0)),
        "headline_table": md_table(["metric", "value", "95% interval"], ["---", RIGHT, RIGHT],
                                 [[metric_label(k), num(ens[k]["value"]), interval(ens[k])]
                                  for k in metric_keys(ens)]),
        **{key: count(ens["confusion"][key]) for key in ("tn", "fp", "fn", "tp")},
    }


def released_fields(src: dict) -> dict[str, str]:
    """The released model (final fit) beside the held-out model: what each trained on and measured."""
    final, held = src["final_fit"], src["metrics"]
    test, trained = final["test"], final["trained_on"]
    splits = src["data_report"].get("splits")
    newest = dig(held, "future", newest_key(src), "recall")
    rows = [
        ["trained on", f"train + future splits ({count(trained['rows'])} URLs)",
         f"train split ({fmt(dig(splits, 'train', 'rows'), count)} URLs)"],
        ["newest phishing month in its data", md_cell(trained.get("newest_phishing_month") or NA),
         md_cell((dig(splits, "train", "first_seen_max") or NA)[:7])],
        ["threshold (chosen on the validation split)", num(final["operating_point"]["ensemble"]["threshold"], 6),
         num(held["threshold"], 6)],
        *[[f"test split: {metric_label(k)}", with_interval(test[k]), with_interval(held["ensemble"][k])]
          for k in ("roc_auc", "recall", "fpr", "tpr_at_fpr_0.01") if k in test and k in held["ensemble"]],
        [f"future split, newest {src['params']['evaluate'].get('newest_months', 3)} months: recall",
         "not measurable (trained on them)", fmt(newest)],
        ["backtest, leave-one-source-out, slices, PhishTank", "(estimated by the held-out model)", "measured"],
        ["shipped in the release", "**yes**", "no"],
    ]
    return {
        "data_newest_month": md_cell(trained.get("newest_phishing_month") or NA),
        "final_rows": count(trained["rows"]),
        "final_recall": num(test["recall"]["value"]), "final_recall_ci": interval(test["recall"]),
        "final_recall_pct": pct(test["recall"]["value"]), "final_recall_ci_pct": interval(test["recall"], pct),
        "final_fpr": num(test["fpr"]["value"]), "final_fpr_ci": interval(test["fpr"]),
        "final_fpr_pct": pct(test["fpr"]["value"], 2),
        "final_fpr_ci_pct": interval(test["fpr"], lambda x: pct(x, 2)),
        "final_fp": count(test["confusion"]["fp"]),
        "released_vs_held_out_table": md_table(["", "released model (final fit)", "held-out model"],
                                               ["---", RIGHT, RIGHT], rows),
    }


def model_fields(src: dict) -> dict[str, str]:
    """The model file and its architecture (from the manifest)."""
    man, features = src["manifest"], src["manifest"]["features"]
    lexical = features["lexical"]
    lo, hi = features["char_ngram_range"]
    vocabulary = features["char_vocabulary_max"]
    return {
        "model_sha256": man["model"]["sha256"],
        "model_size_bytes": count(man["model"]["size_bytes"]),
        "member_weights": ":".join(f"{w:g}" for w in src["params"]["train"]["weights"]),
        "ngram_range": f"{lo}-{hi}" if lo != hi else f"{lo}",
        "char_vocabulary_host": fmt(dig(vocabulary, "host"), count),
        "char_vocabulary_path": fmt(dig(vocabulary, "path"), count),
        "n_lexical": str(len(lexical)),
        "n_lexical_host": str(sum(f.startswith("host_") for f in lexical)),
        "n_lexical_path": str(sum(f.startswith("path_") for f in lexical)),
        "ignored_prefixes": _and_list([md_cell(p) for p in features.get("ignored_prefixes", [])]),
    }


def contract_fields(src: dict) -> dict[str, str]:
    """The I/O contract, runtime, export parity and provenance."""
    man, par = src["manifest"], src["parity"]
    rows = [[direction, md_cell(spec["name"]), md_cell(spec["type"]),
             md_cell("[" + ", ".join(str(s) for s in spec["shape"]) + "]"), md_cell(spec["meaning"])]
            for direction, key in (("input", "inputs"), ("output", "outputs")) for spec in man["contract"][key]]
    libs, prov = man["libraries"], man["provenance"]
    sizes = [str(b) for b in sorted(int(b) for b in par["batch_sizes"])]
    return {
        "contract_major": str(man["contract_major"]),
        "contract_digest_short": man["contract_digest"][:12],
        "contract_table": md_table(["", "name", "type", "shape", "meaning"], ["---"] * 5, rows),
        "preprocessing": man["contract"]["preprocessing"],
        "opsets": ", ".join(f"{domain} {version}" for domain, version in sorted(man["opset"].items())),
        "min_onnxruntime": man["min_onnxruntime"],
        "libraries": ", ".join(f"{name} {libs[name]}" for name in
                               ("scikit-learn", "skl2onnx", "onnx", "onnxruntime") if name in libs),
        "parity_rows": count(par["rows"]),
        "parity_batch_sizes": _and_list(sizes),
        "parity_label_agreement_pct": pct(par["label_agreement"], 2),
        "parity_max_diff": f"{small(par['max_abs_proba_diff'])} (tolerance {par['tolerance']:g})",
        "params_digest_short": prov["params_digest"][:12],
        "data_digest_short": prov["data_digest"][:12],
        "model_code_digest_short": prov["model_code_digest"][:12],
    }


def _reasons(counts: dict | None) -> str:
    """'duplicate: 107; control character: 1' (most frequent first), or 'none'."""
    items = sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return "; ".join(f"{md_cell(reason)}: {count(n)}" for reason, n in items) or "none"


def _span(entry: dict | None) -> str:
    low, high = dig(entry, "first_seen_min"), dig(entry, "first_seen_max")
    return NA if not low else md_cell(f"{low} to {high}")


def _source_rows(name: str, entry: dict) -> list[list[str]]:
    """Rows of the per-source table: one per class present, plus quarantined rows without a label."""
    rows = []
    for cls in CLASS_ORDER:
        c = dig(entry, "classes", cls)
        if c is None:
            continue
        rows.append([md_cell(name), cls, fmt(c.get("raw_rows"), count), fmt(c.get("clean_rows"), count),
                     fmt(c.get("dated_rows"), count), _span(c), fmt(c.get("https"), pct), fmt(c.get("www"), pct),
                     fmt(c.get("html_entity_amp"), pct), _reasons(c.get("quarantined"))])
    if entry.get("unlabelled_quarantined"):
        rows.append([md_cell(name), "no valid label"] + [NA] * 7 + [_reasons(entry["unlabelled_quarantined"])])
    return rows


def _split_row(name: str, s: dict) -> list[str]:
    by_source = "; ".join(f"{md_cell(k)}: {count(n)}" for k, n in (s.get("by_source") or {}).items()) or NA
    return [name, fmt(s.get("rows"), count), fmt(s.get("legitimate"), count), fmt(s.get("phishing"), count),
            fmt(s.get("phishing_share"), pct), fmt(s.get("registered_domains"), count), _span(s), by_source]


def training_data_fields(src: dict) -> dict[str, str]:
    """Per source and class, quarantine, and the splits (from the data report)."""
    rep = src["data_report"]
    source_rows = [row for name, entry in rep.get("sources", {}).items() for row in _source_rows(name, entry)]
    splits = rep.get("splits", {})
    return {
        "source_table": md_table(
            ["source", "class", "raw rows", "clean rows", "dated rows", "first seen", "https", "`www.`",
             "`&amp;`", "quarantined (by reason)"],
            ["---", "---", RIGHT, RIGHT, RIGHT, "---", RIGHT, RIGHT, RIGHT, "---"], source_rows),
        "quarantined": count(rep["quarantined"]),
        "quarantine_reasons": _reasons(rep.get("quarantine_reasons")),
        "clean_rows": count(rep["clean_rows"]),
        "split_table": md_table(
            ["split", "URLs", "legitimate", "phishing", "phishing share", "registered domains", "first seen",
             "URLs per source"], ["---"] + [RIGHT] * 5 + ["---", "---"],
            [_split_row(name, splits[name]) for name in SPLIT_ORDER if name in splits]),
        "test_rows_of_groups_in_future": fmt(rep.get("test_rows_of_groups_in_future"), count),
    }


def evaluation_data_fields(src: dict) -> dict[str, str]:
    """How the splits were made; the out-of-source stream; the bootstrap."""
    rep, params = src["data_report"], src["params"]
    oos = rep.get("out_of_source", {})
    years = sorted(int(y) for y in oos.get("years", {}))
    return {
        "group_by": rep["group_by"],
        "test_fraction": f"{params['split']['test_fraction']:g}",
        "validation_fraction": f"{params['split']['validation_fraction']:g}",
        "split_seed": str(params["split"]["seed"]),
        "validation_rows": count(src["operating_point"]["validation_rows"]),
        "test_registered_domains": fmt(dig(rep, "splits", "test", "registered_domains"), count),
        "oos_rows": fmt(oos.get("rows"), count),
        "oos_seen_in_training": fmt(oos.get("seen_in_training"), count),
        "oos_first_year": str(years[0]) if years else NA,
        "oos_last_year": str(years[-1]) if years else NA,
        "bootstrap_resamples": count(params["evaluate"]["bootstrap_resamples"]),
        "evaluate_seed": str(params["evaluate"]["seed"]),
    }


def member_fields(src: dict) -> dict[str, str]:
    """Each member alone, and the ensemble's paired gain over each."""
    m = src["metrics"]
    ens, members, deltas = m["ensemble"], m["members"], m["ensemble_minus_member"]
    rows = [[metric_label(k), num(ens[k]["value"])] + [fmt(dig(members, n, k, "value")) for n in members]
            for k in metric_keys(ens)]
    rows.append(["threshold", num(m["threshold"], 6)] + [fmt(dig(members, n, "threshold"), lambda x: num(x, 6))
                                                         for n in members])
    delta_keys = metric_keys(next(iter(deltas.values()), {}))
    delta_rows = [[metric_label(k)] + [fmt(dig(deltas, n, k), with_interval) for n in deltas] for k in delta_keys]
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


def per_source_fields(src: dict) -> dict[str, str]:
    """The test split per source: ensemble and members, and the ensemble against its best member."""
    per_source = src["metrics"].get("per_source", {})
    rows, gains = [], []
    for source, entry in per_source.items():
        models = {"ensemble": entry.get("ensemble"), **(entry.get("members") or {})}
        rows += [[md_cell(source), md_cell(model), fmt(dig(e, "rows"), count), *rates(e)] for model, e in models.items()]
        g = entry.get("ensemble_vs_best_member") or {}
        gains.append([md_cell(source), md_cell(metric_label(g.get("metric", NA))), md_cell(g.get("best_member", NA)),
                      fmt(g.get("best_member_value")), fmt(g.get("delta"), with_interval), _gain_verdict(g)])
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
    return [fmt(fpr), fmt(recall)]


def _bound(entry: dict, minimum: int, binding: str, source: str) -> str:
    if source == binding:
        return "yes (sets the threshold)"
    if minimum <= 0:
        return "no (per-source rule off)"
    legit = entry.get("legitimate") or 0
    return "yes" if legit and legit >= minimum else "no (too few legitimate URLs)"


def threshold_rule(target: float, minimum: int) -> str:
    """How the threshold was chosen, as the card's sentences say it."""
    rule = f"that keeps the false-positive rate on the pooled validation split at or below {target:g}"
    if minimum:
        rule += f" and on every source with at least {count(minimum)} legitimate validation URLs"
    return rule


def operating_point_fields(src: dict) -> dict[str, str]:
    """The threshold rule, the binding source and the validation rates per source."""
    op, final = src["final_fit"]["operating_point"], src["final_fit"]
    point = op["ensemble"]
    binding, minimum = point.get("binding_source") or NA, op.get("min_legitimate_per_source") or 0
    rows = [[md_cell(s), fmt(e.get("rows"), count), fmt(e.get("legitimate"), count), *_validation_rates(e),
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


def _operating_verdict(target: float, fpr: dict) -> str:
    side = "at or below" if fpr["value"] <= target else "above"
    if fpr["ci95_high"] <= target:
        spread = "its whole 95% interval lies below the target"
    elif fpr["ci95_low"] > target:
        spread = "its whole 95% interval lies above the target"
    else:
        spread = "its 95% interval contains the target"
    return (f"The pooled test false-positive rate is {side} the target ({spread}); the threshold was never "
            f"tuned on the test split. Per source, see \"Per source\" under \"Metrics\".")


def future_fields(src: dict) -> dict[str, str]:
    """The future split's headline: size, sources, recall and FPR, and the newest months' recall."""
    future = src["metrics"].get("future") or {}
    newest = future.get(newest_key(src)) or {}
    by_source = dig(src["data_report"], "splits", "future", "by_source") or {}
    per_source = src["metrics"].get("per_source") or {}
    same = [f"{md_cell(s)} {num(r)}" for s in by_source
            if (r := dig(per_source, s, "ensemble", "recall")) is not None]
    return {
        "future_rows": fmt(future.get("rows"), count),
        "future_phishing": fmt(future.get("phishing"), count),
        "future_legitimate": fmt(future.get("legitimate"), count),
        "future_first_seen_min": md_cell(future.get("first_seen_min") or NA),
        "future_first_seen_max": md_cell(future.get("first_seen_max") or NA),
        "future_sources": "; ".join(f"{md_cell(s)}: {count(n)}" for s, n in by_source.items()) or NA,
        "future_recall": fmt(future.get("recall")),
        "future_fpr": fmt(future.get("fpr")),
        "test_recall_future_sources": "; ".join(same) or NA,
        "newest_months": str(src["params"]["evaluate"].get("newest_months", 3)),
        "newest_months_list": _and_list([md_cell(x) for x in newest.get("months", [])]),
        "newest_phishing": fmt(newest.get("phishing"), count),
        "newest_recall": fmt(newest.get("recall")),
        "newest_recall_pct": fmt(newest.get("recall"), pct),
    }


def future_table_fields(src: dict) -> dict[str, str]:
    """The future split per model and per month first seen."""
    future = src["metrics"].get("future") or {}
    models = {"ensemble": future, **(future.get("members") or {})}
    months = [[md_cell(month), fmt(e.get("rows"), count), fmt(e.get("phishing"), count),
               fmt(e.get("legitimate"), count), *rates(e, ("recall", "fpr"))]
              for month, e in (future.get("by_month") or {}).items()]
    return {
        "future_model_table": md_table(["model", "URLs", "ROC AUC", "recall", "FPR"], ["---"] + [RIGHT] * 4,
                                     [[md_cell(n), fmt(dig(e, "rows"), count), *rates(e)] for n, e in models.items()]),
        "future_month_table": md_table(["month first seen", "URLs", "phishing", "legitimate", "recall", "FPR"],
                                     ["---"] + [RIGHT] * 5, months),
    }


def _decay_points(decay: dict) -> list[tuple[int, float]]:
    return sorted((int(age), d["recall"]) for age, d in decay.items() if d.get("recall") is not None)


def recall_drop_per_month(decay: dict) -> float | None:
    """Recall lost per month of model age: from the youngest to the oldest age with a recall."""
    points = _decay_points(decay)
    if len(points) < 2:
        return None
    (young, r_young), (old, r_old) = points[0], points[-1]
    return (r_young - r_old) / (old - young)


def widest_spread(decay: dict) -> tuple[str, float] | None:
    """(model age, highest minus lowest recall over the cut-offs at that age), the widest one."""
    spreads = [(age, d["max_recall"] - d["min_recall"]) for age, d in decay.items()
               if d.get("max_recall") is not None and d.get("min_recall") is not None]
    return max(spreads, key=lambda s: (s[1], s[0])) if spreads else None


def months(n: int) -> str:
    return f"{n} month" if n == 1 else f"{n} months"


def _cadence(decay: dict) -> str:
    """The retraining advice, derived from the decay table."""
    drop, points = recall_drop_per_month(decay), _decay_points(decay)
    if drop is None:
        return ("**Retraining cadence: not measurable here.** The backtest has a recall for fewer than two "
                "model ages.")
    (young, r_young), (old, r_old) = points[0], points[-1]
    text = (f"**Retraining cadence.** Pooled over the cut-offs, recall is {num(r_young)} at a model age of "
            f"{months(young)} and {num(r_old)} at {months(old)}")
    if drop <= 0:
        text += (": no decay over this horizon, so retraining can follow the arrival of new data rather than "
                 "a deadline.")
    else:
        text += (f": the model loses about {pp(drop)} of recall per month in service, so a model kept for "
                 f"{months(old)} ends about {pp(drop * (old - young))} below where it started. Retrain monthly, "
                 f"as each new month of dated data arrives.")
    spread = widest_spread(decay)
    if spread and spread[1] > abs(drop) * (old - young):
        text += (f" The spread between cut-offs at the same age (up to {pp(spread[1])}, at {months(int(spread[0]))}) "
                 f"is larger than this drift: a single month's recall says as much about that month's phishing "
                 f"as about the model's age.")
    return text


def backtest_fields(src: dict) -> dict[str, str]:
    """Refits on everything up to each cut-off, tested on the months after (reports/backtest.json)."""
    bt = src["backtest"]
    decay, rows = bt.get("decay") or {}, bt.get("rows") or []
    decay_rows = [[md_cell(age), fmt(d.get("recall")), fmt(d.get("phishing"), count), fmt(d.get("cutoffs"), count),
                   NA if d.get("min_recall") is None else f"{num(d['min_recall'])} to {num(d['max_recall'])}"]
                  for age, d in sorted(decay.items(), key=lambda kv: int(kv[0]))]
    fold_rows = [[md_cell(r.get("cutoff", NA)), md_cell(r.get("month", NA)), fmt(r.get("age_months"), count),
                  fmt(r.get("rows"), count), fmt(r.get("phishing"), count), *rates(r, ("recall", "fpr"))]
                 for r in rows]
    drop = recall_drop_per_month(decay)
    return {
        "backtest_cutoffs": _and_list(sorted({md_cell(r["cutoff"]) for r in rows if "cutoff" in r})),
        "backtest_horizon": fmt(bt.get("horizon_months"), count),
        "backtest_max_train_rows": fmt(bt.get("max_train_rows"), count),
        "decay_table": md_table(["model age (months)", "recall", "phishing URLs", "cut-offs", "lowest to highest"],
                              [RIGHT] * 4 + [RIGHT], decay_rows),
        "backtest_table": md_table(["cut-off", "month tested", "model age", "URLs", "phishing", "recall", "FPR"],
                                 ["---", "---"] + [RIGHT] * 5, fold_rows),
        "backtest_verdict": _cadence(decay),
        "decay_phrase": ("the backtest could not measure it" if drop is None else
                         "the backtest shows no decay over its horizon" if drop <= 0 else
                         f"in the backtest the model loses about {pp(drop)} of recall per month of age"),
    }


def loso_fields(src: dict) -> dict[str, str]:
    """Leave-one-source-out refits (metrics.json ``leave_one_source_out``)."""
    loso = src["metrics"].get("leave_one_source_out") or {}
    folds = loso.get("folds") or {}
    rows = [[md_cell(name), fmt(f.get("train_rows"), count), fmt(f.get("rows"), count),
             fmt(f.get("excluded_seen_domain_rows"), count), *rates(f), fmt(f.get("threshold"), lambda x: num(x, 6))]
            for name, f in folds.items()]
    return {
        "loso_max_train_rows": fmt(loso.get("max_train_rows"), count),
        "loso_max_test_rows": fmt(loso.get("max_test_rows"), count),
        "loso_table": md_table(["held-out source", "train rows", "test rows", "excluded (domain seen in training)",
                              "ROC AUC", "recall", "FPR", "threshold"], ["---"] + [RIGHT] * 7, rows),
        "loso_verdict": _loso_verdict(folds, src["metrics"]["target_fpr"]),
    }


def _loso_verdict(folds: dict, target: float) -> str:
    recall = {n: f["recall"] for n, f in folds.items() if f.get("recall") is not None}
    fpr = {n: f["fpr"] for n, f in folds.items() if f.get("fpr") is not None}
    parts = []
    if recall:
        worst = min(recall, key=lambda n: (recall[n], n))
        parts.append(f"the lowest recall is on {md_cell(worst)} ({num(recall[worst])})")
    if fpr:
        worst = max(fpr, key=lambda n: (fpr[n], n))
        above = sum(v > target for v in fpr.values())
        parts.append(f"the highest false-positive rate on {md_cell(worst)} ({num(fpr[worst])}); "
                     f"{above} of {len(fpr)} held-out sources with legitimate URLs exceed the target {target:g}")
    if not parts:
        return "No fold had enough rows to measure recall or a false-positive rate."
    return "With a source held out entirely, " + "; ".join(parts) + "."


def slice_fields(src: dict) -> dict[str, str]:
    """Per-slice tables of the test split, and the slice numbers the limitations quote."""
    sl = src["metrics"].get("slices") or {}
    tables = []
    for family in sorted(sl, key=lambda f: list(SLICE_TITLES).index(f) if f in SLICE_TITLES else 99):
        slices = sl[family]
        names = sorted(slices, key=_length_order) if family == "length" else sorted(slices)
        rows = [[md_cell(n), fmt(dig(slices, n, "rows"), count), fmt(dig(slices, n, "phishing_share"), pct),
                 *rates(slices[n], ("recall", "fpr", "precision", "roc_auc"))] for n in names]
        tables.append(f"### {SLICE_TITLES.get(family, md_cell(family))}\n\n" + md_table(
            ["slice", "URLs", "phishing share", "recall", "FPR", "precision", "ROC AUC"],
            ["---"] + [RIGHT] * 6, rows))
    lengths = {k: v["recall"] for k, v in (sl.get("length") or {}).items() if "recall" in v}
    hardest = min(lengths, key=lambda k: (lengths[k], _length_order(k))) if lengths else None
    return {
        "slice_tables": "\n\n".join(tables),
        "https_recall": fmt(dig(sl, "scheme", "https", "recall")),
        "http_recall": fmt(dig(sl, "scheme", "http", "recall")),
        "no_www_fpr": fmt(dig(sl, "www", "no www.", "fpr")),
        "www_fpr": fmt(dig(sl, "www", "www.", "fpr")),
        "hardest_length_slice": md_cell(hardest or NA),
        "hardest_length_recall": fmt(dig(sl, "length", hardest, "recall")),
        "hardest_length_fpr": fmt(dig(sl, "length", hardest, "fpr")),
    }


def year_fields(src: dict) -> dict[str, str]:
    """Recall on the out-of-source PhishTank stream, by submission year."""
    m = src["metrics"]
    oos = m.get("out_of_source") or {}
    rby = oos.get("recall_by_year") or {}
    year = latest_year(rby)
    rows = [[md_cell(y), fmt(dig(rby, y, "rows"), count), fmt(dig(rby, y, "recall"))]
            for y in sorted(rby, key=_year_order)]
    rows.append(["all", fmt(oos.get("rows"), count), fmt(oos.get("recall"))])
    return {
        "oos_recall": fmt(oos.get("recall")),
        "oos_recall_pct": fmt(oos.get("recall"), pct),
        "oos_scored": fmt(oos.get("rows"), count),
        "oos_latest_year": year or NA,
        "oos_latest_year_recall": fmt(dig(rby, year, "recall")),
        "oos_latest_year_recall_pct": fmt(dig(rby, year, "recall"), pct),
        "year_table": md_table(["year", "URLs", "recall"], ["---", RIGHT, RIGHT], rows),
        "year_verdict": _year_verdict(rby, year, m["ensemble"]["recall"]["ci95_low"]),
    }


def _year_verdict(rby: dict, year: str | None, low: float) -> str:
    below = [y for y in sorted(rby, key=_year_order) if dig(rby, y, "recall") is not None and rby[y]["recall"] < low]
    if year is None or dig(rby, year, "recall") is None:
        return "**Check: not possible.** The out-of-source stream has no year with enough URLs."
    recall = num(rby[year]["recall"])
    if year in below:
        return (f"**Check: recall on this stream is below the test split's.** Recall on {year} phishing "
                f"({recall}) is below the lower end of the test recall's 95% interval ({num(low)}). Years below "
                f"that bound: {', '.join(below)}. The test metrics overstate what to expect on "
                f"phishing from a feed the model never saw.")
    others = f" Years below it: {', '.join(below)}." if below else ""
    return (f"**Check: recall on recent phishing holds up.** Recall on {year} phishing ({recall}) is not below "
            f"the lower end of the test recall's 95% interval ({num(low)}).{others}")


def _shares(sources: dict, key: str) -> str:
    """'ebbu2017 36.2% vs 2.0%; jpcert 77.3% (phishing only)': legitimate vs phishing, per source."""
    parts = []
    for name, entry in sources.items():
        have = {c: dig(entry, "classes", c, key) for c in CLASS_ORDER if dig(entry, "classes", c) is not None}
        if len(have) == 2:
            parts.append(f"{md_cell(name)} {fmt(have['legitimate'], pct)} vs {fmt(have['phishing'], pct)}")
        elif have:
            (cls, share), = have.items()
            parts.append(f"{md_cell(name)} {fmt(share, pct)} ({cls} only)")
    return "; ".join(parts) or NA


def _class_share(sources: dict, source: str, cls: str) -> float | None:
    """``source``'s share of the clean rows of class ``cls`` over all sources."""
    total = sum(dig(e, "classes", cls, "clean_rows") or 0 for e in sources.values())
    mine = dig(sources, source, "classes", cls, "clean_rows")
    return mine / total if mine is not None and total else None


def limitation_fields(src: dict) -> dict[str, str]:
    """Format artefacts per source, the format-stripped check, source composition."""
    m, sources = src["metrics"], src["data_report"].get("sources", {})
    stripped = m.get("format_stripped") or {}
    change = stripped.get("max_abs_score_change")
    return {
        "https_shares": _shares(sources, "https"),
        "www_shares": _shares(sources, "www"),
        "stripped_max_change": fmt(change, small),
        "stripped_verdict": _stripped_verdict(change, src["parity"]["tolerance"]),
        "stripped_recall": fmt(stripped.get("recall")),
        "stripped_fpr": fmt(stripped.get("fpr")),
        "jpcert_phishing_share": fmt(_class_share(sources, "jpcert", "phishing"), lambda x: pct(x, 0)),
        "citizenlab_legitimate_share": fmt(_class_share(sources, "citizenlab", "legitimate"), lambda x: pct(x, 0)),
    }


def _stripped_verdict(change: float | None, tolerance: float) -> str:
    if change is None:
        return "**Check: not run** (metrics.json has no format-stripped scores)."
    if change == 0:
        return ("**Check passed: the scores are identical**: the model cannot use the scheme or `www.` as evidence, "
                "so the differences between those slices come from what else differs between such URLs.")
    if change <= tolerance:
        return (f"**Check passed: the scores change by float round-off only** (at most {small(change)}, within the "
                f"export parity tolerance {tolerance:g}).")
    return (f"**Check failed: the scores change by up to {small(change)}**, so something in the model still sees the "
            f"scheme or `www.`.")


CONTEXT_PARTS = (summary_fields, headline_fields, released_fields, model_fields, contract_fields, training_data_fields,
                 evaluation_data_fields, member_fields, per_source_fields, operating_point_fields, future_fields,
                 future_table_fields, backtest_fields, loso_fields, slice_fields, year_fields, limitation_fields)


def build_context(src: dict) -> dict[str, str]:
    """Every ``$field`` of the template, as text: the union of the section functions' fields."""
    ctx: dict[str, str] = {}
    for part in CONTEXT_PARTS:
        fields = part(src)
        clash = ctx.keys() & fields.keys()
        if clash:
            raise ValueError(f"model card: {part.__name__} sets fields another section already set: {sorted(clash)}")
        ctx.update(fields)
    return ctx


# -- rendering ------------------------------------------------------------------------------------
def render(template_text: str, context: dict[str, str], wrap: tuple[str, str] | None = None) -> str:
    """Fill the template. ``wrap`` marks every substituted value (tests use it to find them)."""
    template = CardTemplate(template_text)
    if not template.is_valid():
        raise ValueError("model card template: a '$' is neither a field nor '$$'")
    fields = set(template.get_identifiers())
    missing, unused = fields - set(context), set(context) - fields
    if missing or unused:
        raise ValueError(f"model card template: fields without a value {sorted(missing)}, "
                         f"values without a field {sorted(unused)}")
    values = {k: f"{wrap[0]}{v}{wrap[1]}" if wrap else v for k, v in context.items()}
    text = template.substitute(values)
    if len(_VERSION_LINE.findall(text)) != 1:
        raise ValueError(f"model card template must have exactly one '{VERSION_PREFIX}' line")
    return text.rstrip("\n") + "\n"


def render_card(root: Path = Path("."), template: Path | None = None,
                wrap: tuple[str, str] | None = None) -> str:
    root = Path(root)
    template_text = (template or root / TEMPLATE).read_text(encoding="utf-8")
    return render(template_text, build_context(load_sources(root)), wrap)


def stamp_version(card: str, version: str, tag: str, commit: str) -> str:
    """The shipped card: the one version line names the release, the tag and the commit."""
    line = f"{VERSION_PREFIX}{version} (release tag `{tag}`, git commit `{commit}`)"
    text, n = _VERSION_LINE.subn(lambda _: line, card, count=1)
    if n != 1:
        raise ValueError(f"model card has no '{VERSION_PREFIX}' line to stamp")
    return text


def unstamp_version(card: str) -> str:
    """Undo :func:`stamp_version` (identity on an unstamped card)."""
    return _VERSION_LINE.sub(lambda _: f"{VERSION_PREFIX}{UNRELEASED}", card, count=1)


def section(card: str, title: str) -> str:
    """The body of ``## title`` (up to the next ``## ``), stripped."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card, re.MULTILINE | re.DOTALL)
    if not match:
        raise ValueError(f"model card has no '## {title}' section")
    return match.group(1).strip()
