"""The model card: rendered from the pipeline's own outputs (stage `model-card`).

Every number in the card is read from metrics.json, reports/*.json,
dist/manifest.json or params.yaml at render time; none is typed into the
template (model_card/template.md, a ``string.Template``: ``$name`` fields,
``$$`` for a literal dollar). Static facts about the data sources (origin,
licence, collection year) are copied from the data datasheet into the template.

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

from pipeline.params import load_params, read_json

TEMPLATE = Path("model_card/template.md")
CARD = Path("model_card/MODEL_CARD.md")
SOURCES = {
    "metrics": Path("metrics.json"),
    "data_report": Path("reports/data_report.json"),
    "operating_point": Path("reports/operating_point.json"),
    "parity": Path("reports/parity.json"),
    "manifest": Path("dist/manifest.json"),
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
ARTEFACT_LABELS = {"https": "`https://` scheme", "www": "leading `www.`", "html_entity_amp": "HTML entity `&amp;`"}


class CardTemplate(string.Template):
    """``$name`` / ``${name}`` fields; a missing or unused field is an error (see :func:`render`)."""


# -- formatting (the card's only source of number formats; tests parse them back) --------------
def num(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}"


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def count(n: int) -> str:
    return f"{int(n):,}"


def interval(m: dict, fmt=num) -> str:
    return f"[{fmt(m['ci95_low'])}, {fmt(m['ci95_high'])}]"


def with_interval(m: dict, fmt=num) -> str:
    return f"{fmt(m['value'])} {interval(m, fmt)}"


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


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


NA = "n/a"


def dig(doc, *keys):
    """``doc[k1][k2]...`` or None when any level is missing (small samples lack some slices)."""
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def fmt(value, formatter=num) -> str:
    return NA if value is None else formatter(value)


# -- sources ------------------------------------------------------------------------------------
def load_sources(root: Path = Path(".")) -> dict:
    """The pipeline outputs the card is rendered from, plus the params sections it quotes."""
    src = {name: read_json(root / path) for name, path in SOURCES.items()}
    params = load_params(root / "params.yaml")
    src["params"] = {k: params[k] for k in PARAM_SECTIONS}
    return src


def build_context(src: dict) -> dict[str, str]:
    """Every ``$field`` of the template, as text."""
    m, rep, op, par, man, params = (src["metrics"], src["data_report"], src["operating_point"],
                                    src["parity"], src["manifest"], src["params"])
    ens = m["ensemble"]
    ctx: dict[str, str] = {}

    # summary + details
    ctx["name"] = man["name"]
    ctx["threshold"] = num(m["threshold"], 6)
    ctx["target_fpr"] = f"{m['target_fpr']:g}"
    ctx["recall"], ctx["recall_ci"] = num(ens["recall"]["value"]), interval(ens["recall"])
    ctx["fpr"], ctx["fpr_ci"] = num(ens["fpr"]["value"]), interval(ens["fpr"])
    ctx["precision"] = num(ens["precision"]["value"])
    ctx["recall_pct"], ctx["recall_ci_pct"] = pct(ens["recall"]["value"]), interval(ens["recall"], pct)
    ctx["fpr_pct"], ctx["fpr_ci_pct"] = pct(ens["fpr"]["value"], 2), interval(ens["fpr"], lambda x: pct(x, 2))
    ctx["test_rows"] = count(ens["rows"])
    oos = m["out_of_source"]
    ctx["oos_recall"], ctx["oos_recall_pct"] = num(oos["recall"]), pct(oos["recall"])
    ctx["oos_scored"] = count(oos["rows"])
    year = latest_year(oos["recall_by_year"])
    ctx["oos_latest_year"] = year or NA
    ctx["oos_latest_year_recall"] = fmt(dig(oos, "recall_by_year", year, "recall"))
    ctx["oos_latest_year_recall_pct"] = fmt(dig(oos, "recall_by_year", year, "recall"), pct)

    model = man["model"]
    ctx["model_sha256"] = model["sha256"]
    ctx["model_size_bytes"] = count(model["size_bytes"])
    ctx["member_weights"] = ":".join(f"{w:g}" for w in params["train"]["weights"])
    lo, hi = man["features"]["char_ngram_range"]
    ctx["ngram_range"] = f"{lo}-{hi}" if lo != hi else f"{lo}"
    ctx["char_vocabulary"] = count(man["features"]["char_vocabulary_max"])
    ctx["n_lexical"] = str(len(man["features"]["lexical"]))
    ctx["contract_major"] = str(man["contract_major"])
    ctx["contract_digest_short"] = man["contract_digest"][:12]
    rows = []
    for direction, key in (("input", "inputs"), ("output", "outputs")):
        for spec in man["contract"][key]:
            shape = "[" + ", ".join(str(s) for s in spec["shape"]) + "]"
            rows.append([direction, f"`{spec['name']}`", spec["type"], shape, spec["meaning"]])
    ctx["contract_table"] = _table(["", "name", "type", "shape", "meaning"],
                                   ["---", "---", "---", "---", "---"], rows)
    ctx["preprocessing"] = man["contract"]["preprocessing"]
    ctx["opsets"] = ", ".join(f"{domain} {version}" for domain, version in sorted(man["opset"].items()))
    ctx["min_onnxruntime"] = man["min_onnxruntime"]
    libs = man["libraries"]
    ctx["libraries"] = ", ".join(f"{name} {libs[name]}" for name in
                                 ("scikit-learn", "skl2onnx", "onnx", "onnxruntime") if name in libs)
    ctx["parity_rows"] = count(par["rows"])
    sizes = sorted(int(b) for b in par["batch_sizes"])
    ctx["parity_batch_sizes"] = ", ".join(str(b) for b in sizes[:-1]) + f" and {sizes[-1]}" \
        if len(sizes) > 1 else str(sizes[0])
    ctx["parity_label_agreement_pct"] = pct(par["label_agreement"], 2)
    ctx["parity_max_diff"] = f"{par['max_abs_proba_diff']:.1e} (tolerance {par['tolerance']:g})"
    prov = man["provenance"]
    ctx["params_digest_short"] = prov["params_digest"][:12]
    ctx["data_digest_short"] = prov["data_digest"][:12]
    ctx["model_code_digest_short"] = prov["model_code_digest"][:12]

    # out of scope, training data
    ctx["fp_count"] = count(ens["confusion"]["fp"])
    splits = rep["splits"]
    ctx["test_legitimate"] = count(splits["test"]["legitimate"])
    ctx["test_phishing_share_pct"] = pct(splits["test"]["phishing_share"], 0)
    ctx["raw_rows_ebbu2017"] = fmt(dig(rep, "raw_rows", "ebbu2017"), count)
    ctx["raw_rows_phishstorm"] = fmt(dig(rep, "raw_rows", "phishstorm"), count)
    ctx["quarantined"] = count(rep["quarantined"])
    reasons = sorted(rep["quarantine_reasons"].items(), key=lambda kv: (-kv[1], kv[0]))
    ctx["quarantine_reasons"] = "; ".join(f"{reason}: {count(n)}" for reason, n in reasons)
    ctx["clean_rows"] = count(rep["clean_rows"])
    ctx["split_table"] = _table(
        ["split", "URLs", "legitimate", "phishing", "phishing share", "registered domains"],
        ["---", "---:", "---:", "---:", "---:", "---:"],
        [[name, count(s["rows"]), count(s["legitimate"]), count(s["phishing"]), pct(s["phishing_share"]),
          count(s["registered_domains"])] for name, s in ((n, splits[n]) for n in ("train", "validation", "test"))])
    art = rep["raw_artefacts"]
    ctx["artefact_rows"] = "\n".join(
        f"| {label} | {fmt(dig(art, '0', key), pct)} | {fmt(dig(art, '1', key), pct)} |"
        for key, label in ARTEFACT_LABELS.items())

    # evaluation data
    ctx["group_by"] = rep["group_by"]
    ctx["test_fraction"] = f"{params['split']['test_fraction']:g}"
    ctx["validation_fraction"] = f"{params['split']['validation_fraction']:g}"
    ctx["split_seed"] = str(params["split"]["seed"])
    ctx["validation_rows"] = count(op["validation_rows"])
    ctx["test_registered_domains"] = count(splits["test"]["registered_domains"])
    oos_rep = rep["out_of_source"]
    ctx["oos_rows"] = count(oos_rep["rows"])
    ctx["oos_seen_in_training"] = count(oos_rep["seen_in_training"])
    years = sorted(int(y) for y in oos_rep["years"]) or [None]
    ctx["oos_first_year"], ctx["oos_last_year"] = str(years[0] or NA), str(years[-1] or NA)
    ctx["bootstrap_resamples"] = count(params["evaluate"]["bootstrap_resamples"])
    ctx["evaluate_seed"] = str(params["evaluate"]["seed"])

    # metrics
    ctx["headline_rows"] = "\n".join(f"| {metric_label(k)} | {num(ens[k]['value'])} | {interval(ens[k])} |"
                                     for k in metric_keys(ens))
    for key in ("tn", "fp", "fn", "tp"):
        ctx[key] = count(ens["confusion"][key])
    members = list(m["members"])
    ctx["member_names_header"] = " | ".join(members)
    ctx["member_align"] = "|".join("---:" for _ in members)
    ctx["member_rows"] = "\n".join(
        "| " + " | ".join([metric_label(k), num(ens[k]["value"])]
                          + [num(m["members"][name][k]["value"]) for name in members]) + " |"
        for k in metric_keys(ens)) + "\n| threshold | " + " | ".join(
        [num(m["threshold"], 6)] + [num(m["members"][name]["threshold"], 6) for name in members]) + " |"
    deltas = list(m["ensemble_minus_member"])
    ctx["delta_names_header"] = " | ".join(f"ensemble - {name}" for name in deltas)
    ctx["delta_align"] = "|".join("---:" for _ in deltas)
    ctx["delta_rows"] = "\n".join(
        "| " + " | ".join([metric_label(k)] + [with_interval(m["ensemble_minus_member"][name][k])
                                               for name in deltas]) + " |"
        for k in metric_keys(m["ensemble_minus_member"][deltas[0]]))

    # operating point
    ctx["validation_fpr"] = num(op["ensemble"]["validation_fpr"])
    ctx["validation_recall"] = num(op["ensemble"]["validation_recall"])
    target, fpr = m["target_fpr"], ens["fpr"]
    side = "at or below" if fpr["value"] <= target else "above"
    if fpr["ci95_high"] <= target:
        spread = "its whole 95% interval lies below the target"
    elif fpr["ci95_low"] > target:
        spread = "its whole 95% interval lies above the target"
    else:
        spread = "its 95% interval contains the target"
    ctx["operating_verdict"] = (f"The test false-positive rate is {side} the target ({spread}); the threshold "
                                f"was never tuned on the test split.")

    # slices
    tables = []
    for family in sorted(m["slices"], key=lambda f: list(SLICE_TITLES).index(f) if f in SLICE_TITLES else 99):
        slices = m["slices"][family]
        names = sorted(slices, key=_length_order) if family == "length" else sorted(slices)
        rows = [[name, count(s["rows"]), pct(s["phishing_share"]), num(s["recall"]), num(s["fpr"]),
                 num(s["precision"]), num(s["roc_auc"]) if "roc_auc" in s else ""]
                for name, s in ((n, slices[n]) for n in names)]
        tables.append(f"### {SLICE_TITLES.get(family, family)}\n\n" + _table(
            ["slice", "URLs", "phishing share", "recall", "FPR", "precision", "ROC AUC"],
            ["---", "---:", "---:", "---:", "---:", "---:", "---:"], rows))
    ctx["slice_tables"] = "\n\n".join(tables)

    # recall by year
    rby = oos["recall_by_year"]
    ctx["year_rows"] = "\n".join(f"| {y} | {count(rby[y]['rows'])} | {num(rby[y]['recall'])} |"
                                 for y in sorted(rby, key=_year_order))
    low = ens["recall"]["ci95_low"]
    below = [y for y in sorted(rby, key=_year_order) if rby[y]["recall"] < low]
    if year is None:
        ctx["year_verdict"] = "**Check: not possible.** The out-of-source stream has no year with enough URLs."
    elif year in below:
        ctx["year_verdict"] = (
            f"**Check: recall on recent phishing is below the test split's.** Recall on {year} phishing "
            f"({num(rby[year]['recall'])}) is below the lower end of the test recall's 95% interval "
            f"({num(low)}). Years below that bound: {', '.join(below)}. The test metrics overstate what to "
            f"expect on current phishing.")
    else:
        others = f" Years below it: {', '.join(below)}." if below else ""
        ctx["year_verdict"] = (
            f"**Check: recall on recent phishing holds up.** Recall on {year} phishing "
            f"({num(rby[year]['recall'])}) is not below the lower end of the test recall's 95% interval "
            f"({num(low)}).{others}")

    # limitations
    ctx["https_legit_pct"], ctx["https_phish_pct"] = fmt(dig(art, "0", "https"), pct), fmt(dig(art, "1", "https"), pct)
    ctx["www_legit_pct"], ctx["www_phish_pct"] = fmt(dig(art, "0", "www"), pct), fmt(dig(art, "1", "www"), pct)
    sl = m["slices"]
    ctx["https_recall"] = fmt(dig(sl, "scheme", "https", "recall"))
    ctx["http_recall"] = fmt(dig(sl, "scheme", "http", "recall"))
    ctx["no_www_fpr"], ctx["www_fpr"] = fmt(dig(sl, "www", "no www.", "fpr")), fmt(dig(sl, "www", "www.", "fpr"))
    ctx["stripped_fpr"] = num(m["format_stripped"]["fpr"])
    ctx["stripped_recall"] = num(m["format_stripped"]["recall"])
    hardest = min(sl["length"], key=lambda k: (sl["length"][k]["recall"], _length_order(k)))
    ctx["hardest_length_slice"] = hardest
    ctx["hardest_length_recall"] = num(sl["length"][hardest]["recall"])
    ctx["hardest_length_fpr"] = num(sl["length"][hardest]["fpr"])
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
