"""The card's first sections: Summary, the released model beside the held-out model, Model details."""
from __future__ import annotations

from pipeline.common import md_cell, md_table
from pipeline.formatting import MISSING, count, num, pct, small
from pipeline.release.card.format import (
    RIGHT,
    and_list,
    interval,
    metric_keys,
    metric_label,
    with_interval,
)
from pipeline.release.card.sources import Sources, dig, newest_key, newest_months


def summary_fields(src: Sources) -> dict[str, str]:
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
        "source_names": and_list([md_cell(s) for s in sources]),
        "train_first_seen_min": md_cell(dig(rep, "splits", "train", "first_seen_min") or MISSING),
        "train_first_seen_max": md_cell(dig(rep, "splits", "train", "first_seen_max") or MISSING),
        "future_from": md_cell(rep.get("future_from") or MISSING),
    }


def threshold_rule(target: float, minimum: int) -> str:
    """How the threshold was chosen, as the card's sentences say it."""
    rule = f"that keeps the false-positive rate on the pooled validation split at or below {target:g}"
    if minimum:
        rule += f" and on every source with at least {count(minimum)} legitimate validation URLs"
    return rule


def headline_fields(src: Sources) -> dict[str, str]:
    """The ensemble on the test split: headline numbers, the metric table, the confusion matrix."""
    ens, splits = src["metrics"]["ensemble"], src["data_report"]["splits"]
    rec, fpr = ens["recall"], ens["fpr"]
    return {
        "recall": num(rec["value"]), "fpr": num(fpr["value"]),
        "precision": num(ens["precision"]["value"]),
        "test_rows": count(ens["rows"]),
        "test_legitimate": count(splits["test"]["legitimate"]),
        "test_phishing_share_pct": pct(splits["test"]["phishing_share"], 0),
        "headline_table": md_table(["metric", "value", "95% interval"], ["---", RIGHT, RIGHT],
                                 [[metric_label(k), num(ens[k]["value"]), interval(ens[k])]
                                  for k in metric_keys(ens)]),
        **{key: count(ens["confusion"][key]) for key in ("tn", "fp", "fn", "tp")},
    }


def released_fields(src: Sources) -> dict[str, str]:
    """The released model (final fit) beside the held-out model: what each trained on and measured."""
    final, held = src["final_fit"], src["metrics"]
    test, trained = final["test"], final["trained_on"]
    splits = src["data_report"].get("splits")
    newest = dig(held, "future", newest_key(src), "recall")
    rows = [
        ["trained on", f"train + future splits ({count(trained['rows'])} URLs)",
         f"train split ({count(dig(splits, 'train', 'rows'))} URLs)"],
        ["newest phishing month in its data", md_cell(trained.get("newest_phishing_month") or MISSING),
         md_cell((dig(splits, "train", "first_seen_max") or MISSING)[:7])],
        ["threshold (chosen on the validation split)", num(final["operating_point"]["ensemble"]["threshold"], 6),
         num(held["threshold"], 6)],
        *[[f"test split: {metric_label(k)}", with_interval(test[k]), with_interval(held["ensemble"][k])]
          for k in ("roc_auc", "recall", "fpr", "tpr_at_fpr_0.01") if k in test and k in held["ensemble"]],
        [f"future split, newest {newest_months(src)} months: recall",
         "not measurable (trained on them)", num(newest)],
        ["backtest, leave-one-source-out, slices, PhishTank", "(estimated by the held-out model)", "measured"],
        ["shipped in the release", "**yes**", "no"],
    ]
    return {
        "data_newest_month": md_cell(trained.get("newest_phishing_month") or MISSING),
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


def model_fields(src: Sources) -> dict[str, str]:
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
        "char_vocabulary_host": count(dig(vocabulary, "host")),
        "char_vocabulary_path": count(dig(vocabulary, "path")),
        "n_lexical": str(len(lexical)),
        "n_lexical_host": str(sum(f.startswith("host_") for f in lexical)),
        "n_lexical_path": str(sum(f.startswith("path_") for f in lexical)),
        "ignored_prefixes": and_list([md_cell(p) for p in features.get("ignored_prefixes", [])]),
    }


def contract_fields(src: Sources) -> dict[str, str]:
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
        "parity_batch_sizes": and_list(sizes),
        "parity_label_agreement_pct": pct(par["label_agreement"], 2),
        "parity_max_diff": f"{small(par['max_abs_proba_diff'])} (tolerance {par['tolerance']:g})",
        "params_digest_short": prov["params_digest"][:12],
        "data_digest_short": prov["data_digest"][:12],
        "model_code_digest_short": prov["model_code_digest"][:12],
    }
