"""The model card: rendered from the committed outputs, never stale, no number without a source."""
from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import REPO

from phishing_url_detector import contract
from pipeline.common import md_cell
from pipeline.formatting import MISSING, small
from pipeline.release.card import render as mc
from pipeline.release.card.format import SLICE_TITLES, metric_keys, metric_label
from pipeline.release.card.sections import metrics as metric_sections
from pipeline.release.card.sections.model import threshold_rule
from pipeline.release.card.sources import PARAM_SECTIONS, SOURCES, load_sources
from pipeline.stages import model_card as stage

MARK = ("\x02", "\x03")  # wraps every substituted value when rendering for the tests
# A number as the card writes it: 1,234 / 0.9869 / -0.0013 / 82.8% / 3.9e-07 (not part of a word,
# a version like 1.20.0, or a hex digest).
NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?![\w.])|(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]\d+)?%?(?![\w.])")
LOOSE_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")
NA = MISSING


def committed_card() -> str:
    return (REPO / mc.CARD).read_text(encoding="utf-8")


def committed(name: str) -> dict:
    return json.loads((REPO / SOURCES[name]).read_text())


def template() -> str:
    return (REPO / mc.TEMPLATE).read_text(encoding="utf-8")


# -- parsing the card back ------------------------------------------------------------------------
def _cells(line: str) -> list[str]:
    """Cells of a markdown table row; an escaped ``\\|`` stays inside its cell, and a text cell's code
    span (pipeline.common.md_cell) is unwrapped, so cells compare with the plain values."""
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
    return [c[1:-1] if len(c) > 1 and c[0] == c[-1] == "`" else c for c in cells]


def _table_after(card: str, heading: str) -> list[list[str]]:
    """Rows (cells) of the first markdown table after ``heading``, without header and alignment rows."""
    lines = card[card.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return rows[2:]


def _flat(text: str) -> str:
    """Prose with its line breaks and runs of spaces collapsed (the template wraps lines)."""
    return " ".join(text.split())


def _value(cell: str) -> float | None:
    """A number cell back to a float (None for n/a); commas and % handled."""
    if cell == NA:
        return None
    text = cell.replace(",", "")
    return float(text.rstrip("%")) / 100 if text.endswith("%") else float(text)


def _same(cells: list[str], expected: list, abs_tol: float = 5e-5) -> None:
    """Cells equal the expected values at the card's precision; None expects n/a."""
    assert len(cells) == len(expected), (cells, expected)
    for cell, want in zip(cells, expected):
        if want is None:
            assert cell == NA, (cells, expected)
        else:
            assert _value(cell) == pytest.approx(want, abs=abs_tol), (cells, expected)


def _value_and_interval(cell: str) -> tuple[float, float, float]:
    value, low, high = re.fullmatch(r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", cell).groups()
    return float(value), float(low), float(high)


# -- the committed card -----------------------------------------------------------------------------
def test_committed_card_is_what_the_committed_outputs_render_to():
    """CI's stale-card check: change an output or the template, and this fails until
    `dvc repro model-card` re-renders the card and it is committed."""
    assert mc.render_card(REPO) == committed_card(), (
        "model_card/MODEL_CARD.md is stale: run `dvc repro model-card` and commit it")


def test_check_mode_agrees(capsys):
    assert stage.run(REPO, check=True) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_mode_reports_a_stale_card_with_a_diff(tmp_path, capsys):
    for rel in [*SOURCES.values(), mc.TEMPLATE, mc.CARD, "params.yaml"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((REPO / rel).read_bytes())
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    metrics["ensemble"]["roc_auc"]["value"] = 0.5
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert stage.run(tmp_path, check=True) == 1
    out = capsys.readouterr()
    assert "-| ROC AUC | 0.9" in out.out and "+| ROC AUC | 0.5000 |" in out.out
    assert "stale" in out.err
    assert stage.run(tmp_path) == 0 and stage.run(tmp_path, check=True) == 0


def _source_numbers(src: dict) -> list[float]:
    """Every number in the card's inputs: values, numbers inside keys and strings, and the
    sizes of lists and mappings (the card counts sources, features, folds)."""
    found: list[float] = []

    def walk(node):
        if isinstance(node, dict):
            found.append(float(len(node)))
            for key, value in node.items():
                found.extend(float(x) for x in LOOSE_NUMBER.findall(str(key)))
                walk(value)
        elif isinstance(node, list):
            found.append(float(len(node)))
            for value in node:
                walk(value)
        elif isinstance(node, bool):
            return
        elif isinstance(node, (int, float)):
            found.append(float(node))
        elif isinstance(node, str):
            found.extend(float(x) for x in LOOSE_NUMBER.findall(node))

    walk(src)
    return found


def _derived_numbers(src: dict) -> list[float]:
    """The numbers the card computes from its inputs, computed here independently."""
    lexical = src["manifest"]["features"]["lexical"]
    out = [float(sum(f.startswith("host_") for f in lexical)), float(sum(f.startswith("path_") for f in lexical))]
    decay = src["backtest"]["decay"]
    ages = sorted((int(a), d["recall"]) for a, d in decay.items() if d["recall"] is not None)
    (young, r_young), (old, r_old) = ages[0], ages[-1]
    out += [100 * (r_young - r_old) / (old - young), 100 * (r_young - r_old)]  # pp per month, pp over the horizon
    out += [100 * (d["max_recall"] - d["min_recall"]) for d in decay.values() if d["max_recall"] is not None]
    sources = src["data_report"]["sources"]
    for cls in ("phishing", "legitimate"):
        total = sum(e["classes"][cls]["clean_rows"] for e in sources.values() if cls in e["classes"])
        out += [e["classes"][cls]["clean_rows"] / total for e in sources.values() if cls in e["classes"]]
    folds = src["metrics"]["leave_one_source_out"]["folds"].values()
    out.append(float(sum(f.get("fpr", 0) > src["metrics"]["target_fpr"] for f in folds)))
    out.append(float(sum("fpr" in f for f in folds)))
    return out


def _matches(token: str, sources: list[float]) -> bool:
    text = token.replace(",", "")
    percent = text.endswith("%")
    text = text.rstrip("%")
    value = float(text)
    if "e" in text:
        mantissa = text.split("e")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        tolerance = 0.5 * 10 ** -decimals * 10 ** int(text.split("e")[1]) * 1.0001
    else:
        decimals = len(text.split(".")[1]) if "." in text else 0
        tolerance = 0.5 * 10 ** -decimals * 1.0001
    scale = 100.0 if percent else 1.0
    return any(abs(s * scale - value) <= tolerance for s in sources)


def _marked_segments(text: str) -> list[str]:
    return re.findall(f"{MARK[0]}(.*?){MARK[1]}", text, re.DOTALL)


def test_every_number_in_the_card_comes_from_the_pipeline_outputs():
    """Parse every number the renderer put into the card back, and find it in metrics.json,
    the reports, the manifest or params.yaml (or computed from them) at the precision shown."""
    marked = mc.render_card(REPO, wrap=MARK)
    assert marked.replace(MARK[0], "").replace(MARK[1], "") == committed_card()
    src = load_sources(REPO)
    sources = _source_numbers(src) + _derived_numbers(src)
    checked = 0
    for segment in _marked_segments(marked):
        segment = re.sub(r"`[^`]*`", "", segment)  # digests and file names in code spans
        for token in NUMBER.findall(segment):
            assert _matches(token, sources), f"{token!r} in {segment[:120]!r} has no source"
            checked += 1
    assert checked > 600


def test_no_field_is_left_unrendered():
    card = committed_card()
    assert not re.search(r"\$\{?[A-Za-z_]", card), re.search(r".*\$\{?[A-Za-z_].*", card).group(0)
    assert "\x02" not in card and "\x03" not in card


def _tables(card: str) -> list[list[str]]:
    tables, current = [], []
    for line in card.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


@pytest.mark.parametrize("which", ["committed", "tiny"])
def test_every_table_row_has_as_many_cells_as_its_header(which):
    card = committed_card() if which == "committed" else mc.render(template(), mc.build_context(tiny_sources()))
    tables = _tables(card)
    assert len(tables) > 15
    for table in tables:
        widths = {len(_cells(line)) for line in table}
        assert len(widths) == 1, table


def test_metric_tables_parse_back_to_metrics_json():
    card, metrics = committed_card(), committed("metrics")
    ens = metrics["ensemble"]
    labels = {metric_label(k): k for k in metric_keys(ens)}

    headline = _table_after(card, "## Metrics")
    assert [r[0] for r in headline] == list(labels)
    for name, value, ci in headline:
        m = ens[labels[name]]
        low, high = re.fullmatch(r"\[([\d.]+), ([\d.]+)\]", ci).groups()
        assert (float(value), float(low), float(high)) == pytest.approx(
            (m["value"], m["ci95_low"], m["ci95_high"]), abs=5e-5)

    confusion = _table_after(card, "Confusion matrix")
    (_, tn, fp), (_, fn, tp) = confusion
    assert [int(x.replace(",", "")) for x in (tn, fp, fn, tp)] == [ens["confusion"][k] for k in ("tn", "fp", "fn", "tp")]

    members = _table_after(card, "### Per member")
    assert [r[0] for r in members] == list(labels) + ["threshold"]
    for row in members[:-1]:
        key = labels[row[0]]
        _same(row[1:], [ens[key]["value"]] + [metrics["members"][n][key]["value"] for n in metrics["members"]])

    deltas = _table_after(card, "Ensemble minus member")
    for row in deltas:
        key = labels[row[0]]
        for cell, name in zip(row[1:], metrics["ensemble_minus_member"]):
            d = metrics["ensemble_minus_member"][name][key]
            assert _value_and_interval(cell) == pytest.approx((d["value"], d["ci95_low"], d["ci95_high"]), abs=5e-5)


def test_per_source_tables_parse_back_to_metrics_json():
    card, per_source = committed_card(), committed("metrics")["per_source"]
    rows = _table_after(card, "### Per source")
    expected = [(source, model) for source, e in per_source.items() for model in ["ensemble", *e["members"]]]
    assert [(r[0], r[1]) for r in rows] == [(s, m) for s, m in expected]
    for (source, model), row in zip(expected, rows):
        e = per_source[source]["ensemble"] if model == "ensemble" else per_source[source]["members"][model]
        assert int(row[2].replace(",", "")) == e["rows"]
        _same(row[3:], [e.get("roc_auc"), e.get("recall"), e.get("fpr")])

    gains = _table_after(card, "The ensemble against its best member")
    assert [r[0] for r in gains] == list(per_source)
    for row in gains:
        g = per_source[row[0]]["ensemble_vs_best_member"]
        assert row[1] == metric_label(g["metric"]) and row[2] == g["best_member"]
        _same([row[3]], [g["best_member_value"]])
        d = g["delta"]
        assert _value_and_interval(row[4]) == pytest.approx((d["value"], d["ci95_low"], d["ci95_high"]), abs=5e-5)
        assert row[5] == ("ensemble better" if g["significant_gain"] else
                          "**ensemble worse**" if g["significant_loss"] else "no significant difference")


def test_operating_point_tables_parse_back_to_the_report():
    card, op = committed_card(), committed("operating_point")["released"]  # the released model's threshold
    point = op["ensemble"]
    section = mc.section(card, "Operating point")
    if not op["min_legitimate_per_source"]:
        assert "The per-source rule is off" in section
    elif point["binding_source"] in point["per_source"]:
        assert f"`{point['binding_source']}` needed the highest threshold" in section
    else:
        assert "The pooled validation split needed the highest threshold" in section
    rows = _table_after(card, "Per source, on the validation split:")
    assert [r[0] for r in rows] == list(point["per_source"])
    for row in rows:
        e = point["per_source"][row[0]]
        _same(row[1:5], [e["rows"], e["legitimate"], e.get("fpr") if e["legitimate"] else None,
                         e.get("recall") if e["rows"] > e["legitimate"] else None])
        bound = op["min_legitimate_per_source"] and (row[0] == point["binding_source"]
                                                     or e["legitimate"] >= op["min_legitimate_per_source"])
        assert row[5].startswith("yes") == bool(bound)
    assert f"{point['threshold']:.6f}" in card


@pytest.mark.parametrize("minimum,binding,expected", [
    (0, "all sources pooled", "The per-source rule is off"),
    (200, "phishstorm", "`phishstorm` needed the highest threshold"),
    (200, "all sources pooled", "The pooled validation split needed the highest threshold"),
])
def test_the_threshold_rule_is_said_as_it_was_applied(minimum, binding, expected):
    rule = threshold_rule(0.01, minimum)
    assert rule.startswith("that keeps the false-positive rate on the pooled validation split at or below 0.01")
    assert ("every source with at least 200 legitimate" in rule) == bool(minimum)
    assert metric_sections._binding_sentence(binding, minimum, {"phishstorm": {}}).startswith(expected)


def test_future_tables_parse_back_to_metrics_json():
    card, metrics, params = committed_card(), committed("metrics"), yaml.safe_load((REPO / "params.yaml").read_text())
    future = metrics["future"]
    n = params["evaluate"]["newest_months"]
    newest = future[f"newest_{n}_months"]
    section = _flat(mc.section(card, "Future split (by month)"))
    assert f"**Recall on the newest {n} months with phishing" in section
    assert f"{newest['recall']:.4f}**" in section
    assert f"catches {100 * newest['recall']:.1f}% of the phishing first seen in the newest {n} months" in \
        _flat(mc.section(card, "Summary"))

    models = _table_after(card, "Each member at its own threshold:")
    assert [r[0] for r in models] == ["ensemble", *future["members"]]
    for row in models:
        e = future if row[0] == "ensemble" else future["members"][row[0]]
        _same(row[1:], [e["rows"], e.get("roc_auc"), e.get("recall"), e.get("fpr")])

    months = _table_after(card, "By the month the URL was first seen")
    assert [r[0] for r in months] == list(future["by_month"])
    for row in months:
        e = future["by_month"][row[0]]
        _same(row[1:], [e["rows"], e["phishing"], e["legitimate"], e.get("recall"), e.get("fpr")])


def test_backtest_tables_and_cadence_parse_back_to_the_report():
    card, bt = committed_card(), committed("backtest")
    section = mc.section(card, "Backtest (recall by model age)")
    decay = _table_after(section, "| model age")
    assert [int(r[0]) for r in decay] == sorted(int(a) for a in bt["decay"])
    for age, recall, phishing, cutoffs, spread in decay:
        d = bt["decay"][age]
        _same([recall, phishing, cutoffs], [d["recall"], d["phishing"], d["cutoffs"]])
        low, high = spread.split(" to ")
        _same([low, high], [d["min_recall"], d["max_recall"]])

    ages = sorted((int(a), d["recall"]) for a, d in bt["decay"].items() if d["recall"] is not None)
    drop = (ages[0][1] - ages[-1][1]) / (ages[-1][0] - ages[0][0])
    assert drop > 0  # the committed run shows decay, so the card must advise on cadence
    assert f"loses about {100 * drop:.1f} pp of recall per month in service" in _flat(section)
    assert f"about {100 * drop:.1f} pp of recall per month of age" in _flat(mc.section(card, "Limitations"))

    folds = _table_after(section, "Per cut-off and month tested")
    assert len(folds) == len(bt["rows"])
    for row, r in zip(folds, bt["rows"]):
        assert (row[0], row[1]) == (r["cutoff"], r["month"])
        _same(row[2:], [r["age_months"], r["rows"], r["phishing"], r.get("recall"), r.get("fpr")])


def test_leave_one_source_out_table_parses_back_to_metrics_json():
    card, loso = committed_card(), committed("metrics")["leave_one_source_out"]
    section = mc.section(card, "Leave-one-source-out")
    assert "best proxy in this repository for data unlike anything" in _flat(section)
    rows = _table_after(section, "| held-out source")
    assert [r[0] for r in rows] == list(loso["folds"])
    for row in rows:
        f = loso["folds"][row[0]]
        _same(row[1:7], [f["train_rows"], f["rows"], f["excluded_seen_domain_rows"], f.get("roc_auc"),
                         f.get("recall"), f.get("fpr")])
        _same([row[7]], [f["threshold"]], abs_tol=5e-7)
    worst = min((f for f in loso["folds"].values() if "recall" in f), key=lambda f: f["recall"])
    assert f"the lowest recall is on `{worst['source']}` ({worst['recall']:.4f})" in _flat(section)


def test_training_data_tables_parse_back_to_the_data_report():
    card, rep = committed_card(), committed("data_report")
    rows = _table_after(card, "Per source and class")
    expected = [(s, c) for s, e in rep["sources"].items() for c in ("legitimate", "phishing") if c in e["classes"]]
    assert [(r[0], r[1]) for r in rows] == expected
    for row in rows:
        c = rep["sources"][row[0]]["classes"][row[1]]
        _same(row[2:5], [c["raw_rows"], c["clean_rows"], c["dated_rows"]])
        assert row[5] == (NA if not c["dated_rows"] else f"{c['first_seen_min']} to {c['first_seen_max']}")
        _same(row[6:9], [c["https"], c["www"], c["html_entity_amp"]], abs_tol=5.1e-4)
        for reason, n in c["quarantined"].items():
            assert f"{md_cell(reason)}: {n:,}" in row[9]

    splits = _table_after(card, "Counts per split and class")
    assert [r[0] for r in splits] == ["train", "validation", "test", "future"]
    for row in splits:
        s = rep["splits"][row[0]]
        _same(row[1:6], [s["rows"], s["legitimate"], s["phishing"], s["phishing_share"], s["registered_domains"]],
              abs_tol=5.1e-4)
    assert f"{rep['test_rows_of_groups_in_future']:,} dated test rows belong to a registered domain" in _flat(card)
    assert f"first seen on or after {md_cell(rep['future_from'])}" in _flat(card)


def test_licence_says_citizen_lab_data_are_non_commercial():
    card = committed_card()
    licence = next(line for line in mc.section(card, "Model details").split("\n- ") if line.startswith("**Licence:**"))
    for text in (licence, mc.section(card, "Training data")):
        flat = _flat(text)
        assert "CC BY-NC-SA 4.0" in flat and "non-commercial" in flat
        assert "commercial user must swap `citizenlab` out" in flat and "retrain" in flat
    assert "non-commercial use only" in _flat(mc.section(card, "Summary"))
    datasheet_row = next(r for r in _table_after(card, "Facts as published") if r[0] == "citizenlab")
    assert "CC BY-NC-SA 4.0" in datasheet_row[3]


def test_slice_and_year_tables_parse_back_to_metrics_json():
    card, metrics = committed_card(), committed("metrics")
    for family, title in SLICE_TITLES.items():
        rows = _table_after(card, f"### {title}\n")
        slices = metrics["slices"][family]
        assert {r[0] for r in rows} == set(slices)
        by_cell = dict(slices)
        for name, n, share, *rates in rows:
            s = by_cell[name]
            _same([n, share], [s["rows"], s["phishing_share"]], abs_tol=5.1e-4)
            _same(rates, [s.get(k) for k in ("recall", "fpr", "precision", "roc_auc")])

    years = _table_after(card, "## Recall by year")
    oos = metrics["out_of_source"]
    *per_year, total = years
    assert {r[0] for r in per_year} == set(oos["recall_by_year"])
    by_cell = dict(oos["recall_by_year"])
    for year, n, recall in per_year:
        _same([n, recall], [by_cell[year]["rows"], by_cell[year]["recall"]])
    assert total[0] == "all"
    _same(total[1:], [oos["rows"], oos["recall"]])


def test_format_stripped_check_and_limitations_quote_the_outputs():
    card, metrics, rep = committed_card(), committed("metrics"), committed("data_report")
    limitations = _flat(mc.section(card, "Limitations"))
    change = metrics["format_stripped"]["max_abs_score_change"]
    assert f"the largest score change is {small(change)}" in limitations
    if change == 0:
        assert "**Check passed: the scores are identical**" in limitations
    for name, entry in rep["sources"].items():
        classes = entry["classes"]
        if len(classes) == 2:
            assert (f"`{name}` {100 * classes['legitimate']['https']:.1f}% vs "
                    f"{100 * classes['phishing']['https']:.1f}%") in limitations
    https = metrics["slices"]["scheme"]["https"]["recall"]
    assert f"https URLs have recall {https:.4f}" in limitations
    summary = _flat(mc.section(card, "Summary"))
    assert f"At its threshold {committed('operating_point')['released']['ensemble']['threshold']:.6f}" in summary
    assert f"{metrics['threshold']:.6f}" in _flat(mc.section(card, "Released model and held-out model"))


def test_card_covers_the_required_sections():
    card = committed_card()
    for title in ("Summary", "Model details", "Intended use", "Out-of-scope uses", "Training data",
                  "Evaluation data and split method", "Metrics", "Operating point", "Future split (by month)",
                  "Backtest (recall by model age)", "Leave-one-source-out", "Per-slice performance",
                  "Recall by year (out-of-source check)", "Limitations", "How to load"):
        assert mc.section(card, title)
    assert "- **Version:** assigned at release" in card
    for fact in ("Ebbu2017", "PhishStorm", "ESDAUNG", "JPCERT/CC", "Citizen Lab", "PhishTank", "registered_domain",
                 "HistGradientBoosting", "page content", "`www.`", "https"):
        assert fact in card
    code = re.search(r"```python\n(.*?)```", mc.section(card, "How to load"), re.DOTALL).group(1)
    assert len(code.strip().splitlines()) == 5


def test_version_stamp_round_trips_and_touches_one_line():
    card = committed_card()
    stamped = mc.stamp_version(card, "1.2.3", "model-v1.2.3", "0123abc")
    assert "- **Version:** 1.2.3 (release tag `model-v1.2.3`, git commit `0123abc`)" in stamped
    diff = [(a, b) for a, b in zip(card.splitlines(), stamped.splitlines()) if a != b]
    assert len(diff) == 1 and len(card.splitlines()) == len(stamped.splitlines())
    assert mc.unstamp_version(stamped) == card
    assert mc.unstamp_version(card) == card
    with pytest.raises(ValueError):
        mc.stamp_version("no version line", "1.0.0", "model-v1.0.0", "x")


def test_template_fields_must_match_the_context_exactly():
    context = mc.build_context(load_sources(REPO))
    with pytest.raises(ValueError, match="without a value"):
        mc.render(template() + "\n$not_a_field\n", context)
    with pytest.raises(ValueError, match="without a field"):
        mc.render(template(), {**context, "extra": "1"})
    with pytest.raises(ValueError, match="neither a field"):
        mc.render(template() + "\ncosts $ 5\n", context)


def test_no_two_sections_set_the_same_field():
    src = load_sources(REPO)
    seen: dict[str, str] = {}
    for part in mc.CONTEXT_PARTS:
        for key in part(src):
            assert key not in seen, f"{key} set by {seen.get(key)} and {part.__name__}"
            seen[key] = part.__name__


def test_params_quoted_by_the_card_are_declared_in_dvc_yaml():
    stage_spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["model-card"]
    declared = {p.split(".")[0] for p in stage_spec["params"]}
    assert set(PARAM_SECTIONS) == declared
    deps = set(stage_spec["deps"])
    missing = {p.as_posix() for p in SOURCES.values()} - deps
    assert not missing, f"dvc.yaml stage model-card must list the card's sources as deps: {sorted(missing)}"
    assert {mc.TEMPLATE.as_posix(), "pipeline/release/card/render.py", "pipeline/stages/model_card.py"} <= deps
    assert stage_spec["outs"] == [{mc.CARD.as_posix(): {"cache": False}}]


# -- small and hostile inputs: synthetic source documents -------------------------------------------
def _interval(v: float) -> dict:
    return {"value": v, "ci95_low": v - 0.01, "ci95_high": v + 0.01}


def _headline(rows: int) -> dict:
    keys = ("roc_auc", "pr_auc", "precision", "recall", "f1", "fpr", "tpr_at_fpr_0.01")
    return {**{k: _interval(0.5) for k in keys}, "rows": rows, "threshold": 0.5,
            "confusion": {"tn": 10, "fp": 1, "fn": 4, "tp": 25}}


def _rates(phishing: int, legitimate: int) -> dict:
    """A rates entry as pipeline.training.evaluation.rates_entry writes it: keys only for the classes present."""
    rows = phishing + legitimate
    e = {"rows": rows, "phishing": phishing, "legitimate": legitimate,
         "phishing_share": phishing / rows if rows else 0.0}
    e.update({"recall": 0.75} if phishing else {})
    e.update({"fpr": 0.25} if legitimate else {})
    e.update({"precision": 0.9, "roc_auc": 0.8} if phishing and legitimate else {})
    return e


def _class(raw: int, dated: bool) -> dict:
    return {"raw_rows": raw, "clean_rows": raw - 1, "dated_rows": raw - 1 if dated else 0,
            "first_seen_min": "2022-01-03" if dated else None, "first_seen_max": "2022-11-20" if dated else None,
            "https": 0.5, "www": None, "html_entity_amp": 0.0, "quarantined": {"duplicate": 1},
            "clean_rows_by_month": {}}


def tiny_sources() -> dict:
    """What a ~3,000-URL sample leaves behind: two sources, one class each, sparse months,
    an empty fold, an unmeasurable backtest, no `www.` slices, every year pooled."""
    members = ("char_tfidf_lr", "lexical_trees")
    gain = {"metric": "specificity", "best_member": "char_tfidf_lr", "best_member_value": 0.9,
            "delta": _interval(0.0), "significant_gain": False, "significant_loss": False}
    metrics = {
        "target_fpr": 0.01, "threshold": 0.5, "ensemble": _headline(40),
        "members": {m: _headline(40) for m in members},
        "ensemble_minus_member": {m: {k: _interval(0.0) for k in ("roc_auc", "recall")} for m in members},
        "per_source": {"citizenlab": {"ensemble": _rates(0, 5), "members": {m: _rates(0, 5) for m in members},
                                      "ensemble_vs_best_member": gain}},
        "slices": {"scheme": {"http": _rates(3, 4)}, "length": {"0-39": _rates(2, 0), ">=250": _rates(0, 1)}},
        "format_stripped": {"recall": 0.75, "fpr": 0.25, "max_abs_score_change": 0.0},
        "future": {**_rates(3, 0), "first_seen_min": "2022-10-05", "first_seen_max": "2022-11-01",
                   "members": {m: _rates(3, 0) for m in members},
                   "by_month": {"2022-10": _rates(2, 0), "2022-11": _rates(0, 1)},
                   "newest_3_months": {"months": ["2022-10"], "phishing": 2, "recall": 0.75}},
        "out_of_source": {"rows": 12, "recall": 0.5, "recall_by_year": {"<=2021 (pooled)": {"rows": 12, "recall": 0.5}}},
        "leave_one_source_out": {"max_train_rows": 40000, "max_test_rows": 10000, "seed": 5, "folds": {
            "citizenlab": {"source": "citizenlab", "train_rows": 30, "source_rows": 5, "excluded_seen_domain_rows": 5,
                           "threshold": 0.4, "rows": 0}}},
    }
    split = {"rows": 4, "legitimate": 2, "phishing": 2, "phishing_share": 0.5, "registered_domains": 4,
             "first_seen_min": None, "first_seen_max": None, "by_source": {"ebbu2017": 4}}
    data_report = {
        "clean_rows": 40, "quarantined": 3, "quarantine_reasons": {"duplicate": 2, "bad label": 1},
        "group_by": "registered_domain", "future_from": "2022-10-01", "test_rows_of_groups_in_future": 0,
        "out_of_source": {"rows": 12, "seen_in_training": 0, "years": {}},
        "sources": {"jpcert": {"raw_rows": 20, "clean_rows": 19, "classes": {"phishing": _class(20, True)},
                               "unlabelled_quarantined": {"bad label": 1}},
                    "ebbu2017": {"raw_rows": 10, "clean_rows": 9, "classes": {"legitimate": _class(10, False)}}},
        "splits": {"train": split, "validation": split, "test": split,
                   "future": {**split, "rows": 0, "legitimate": 0, "phishing": 0, "phishing_share": None,
                              "by_source": {}}},
    }
    operating_point = {"target_fpr": 0.01, "min_legitimate_per_source": 200, "validation_rows": 8, "ensemble": {
        "threshold": 0.5, "binding_source": "all sources pooled", "validation_fpr": 0.0, "validation_recall": 0.5,
        "per_source": {"jpcert": {"rows": 4, "legitimate": 0, "recall": 0.5}, "ebbu2017": {"rows": 4, "legitimate": 4,
                                                                                           "fpr": 0.0}}}}
    backtest = {"horizon_months": 3, "max_train_rows": 40000, "seed": 5,
                "rows": [{"cutoff": "2021-09", "age_months": 1, "month": "2021-10", "train_rows": 9, "threshold": 0.5,
                          "rows": 0}],
                "decay": {"1": {"cutoffs": 0, "phishing": 0, "recall": None, "min_recall": None, "max_recall": None}}}
    manifest = {"name": contract.MODEL_NAME, "model": {"sha256": "0" * 64, "size_bytes": 1000},
                "contract": contract.CONTRACT, "contract_digest": contract.contract_digest(),
                "contract_major": contract.CONTRACT_MAJOR, "opset": {"ai.onnx": 20}, "min_onnxruntime": "1.17",
                "libraries": {"onnx": "1"}, "provenance": {k: "f" * 64 for k in
                                                           ("params_digest", "data_digest", "model_code_digest")},
                "features": {"lexical": ["host_length", "path_length"], "char_ngram_range": [1, 4],
                             "char_vocabulary_max": {"host": 100, "path": 50}, "ignored_prefixes": ["scheme://", "www."]}}
    parity = {"rows": 4, "batch_sizes": {"1": {}, "256": {}}, "label_agreement": 1.0, "max_abs_proba_diff": 1e-7,
              "tolerance": 1e-4}
    params = {"split": {"seed": 1, "test_fraction": 0.2, "validation_fraction": 0.1},
              "evaluate": {"seed": 7, "bootstrap_resamples": 50, "newest_months": 3}, "train": {"weights": [3.0, 1.0]}}
    final_fit = {"trained_on": {"splits": ["train", "future"], "rows": 7, "phishing": 5, "legitimate": 2,
                                "newest_first_seen_month": "2022-11", "newest_phishing_month": "2022-10",
                                "newest_month_by_source": {"jpcert/phishing": "2022-10"}},
                 "operating_point": {**operating_point, "ensemble": {**operating_point["ensemble"], "threshold": 0.6}},
                 "test": _headline(40), "test_per_source": {}}
    return {"metrics": metrics, "data_report": data_report, "operating_point": operating_point, "parity": parity,
            "backtest": backtest, "manifest": manifest, "params": params, "final_fit": final_fit}


def test_tiny_sample_renders_missing_values_as_na():
    card = mc.render(template(), mc.build_context(tiny_sources()))
    flat = _flat(card)
    assert not re.search(r"\$\{?[A-Za-z_]", card)
    per_source = _table_after(card, "### Per source")
    assert per_source[0] == ["citizenlab", "ensemble", "5", NA, NA, "0.2500"]
    assert _table_after(card, "By the month the URL was first seen") == [
        ["2022-10", "2", "2", "0", "0.7500", NA], ["2022-11", "1", "0", "1", NA, "0.2500"]]
    assert _table_after(card, "| held-out source")[0] == ["citizenlab", "30", "0", "5", NA, NA, NA, "0.400000"]
    assert _table_after(card, "| model age")[0] == ["1", NA, "0", "0", NA]
    assert "**Retraining cadence: not measurable here.**" in flat
    assert "No fold had enough rows" in flat
    assert "Check: not possible" in flat
    assert f"https URLs have recall {NA}" in flat and f"URLs without `www.` have FPR {NA}" in flat
    sources = _table_after(card, "Per source and class")
    assert {len(row) for row in sources} == {10}
    assert sources[0][:6] == ["jpcert", "phishing", "20", "19", "19", "2022-01-03 to 2022-11-20"]
    assert sources[0][7] == NA  # no `www.` share measured
    assert sources[1][:2] == ["jpcert", "no valid label"] and sources[1][-1] == "`bad label`: 1"
    assert sources[2][5] == NA  # undated source
    assert _table_after(card, "Counts per split and class")[-1][4] == NA  # empty future split: no share
    assert "The pooled validation split needed the highest threshold" in flat
    lengths = _table_after(card, "### URL length")
    assert lengths == [["0-39", "2", "100.0%", "0.7500", NA, NA, NA], [">=250", "1", "0.0%", NA, "0.2500", NA, NA]]


def test_missing_sections_render_as_na_not_errors():
    src = tiny_sources()
    for key in ("future", "per_source", "leave_one_source_out", "slices", "format_stripped", "out_of_source"):
        del src["metrics"][key]
    src["data_report"]["sources"] = {}
    src["data_report"]["splits"] = {"test": src["data_report"]["splits"]["test"]}
    src["backtest"] = {}
    card = mc.render(template(), mc.build_context(src))
    flat = _flat(card)
    assert f"That model catches {NA} of the phishing first seen in the newest 3 months ({NA})" in flat
    assert f"a feed neither trained on, the held-out model catches {NA}" in flat  # PhishTank recall unknown
    assert _table_after(card, "By the month the URL was first seen") == []
    assert _table_after(card, "| held-out source") == []
    assert "**Check: not run**" in flat


def test_newest_months_key_follows_params():
    src = tiny_sources()
    src["params"]["evaluate"]["newest_months"] = 2
    src["metrics"]["future"]["newest_2_months"] = src["metrics"]["future"].pop("newest_3_months")
    src["metrics"]["future"]["newest_2_months"]["recall"] = 0.125
    card = mc.render(template(), mc.build_context(src))
    assert "**Recall on the newest 2 months with phishing (`2022-10`; 2 phishing URLs): 0.1250**" in _flat(card)


def test_table_cells_from_the_data_are_escaped():
    """Data-derived cells go through pipeline.common.md_cell: an inert code span (its own tests are in
    tests/test_review_render.py)."""
    assert md_cell("a|b") == "`a\\|b`"
    assert md_cell("<script>&x") == "`<script>&x`"
    assert md_cell("one\ntwo") == "`one\\x0atwo`"

    src = tiny_sources()
    evil = "ev|l <b>\n`src`"
    src["metrics"]["per_source"] = {evil: src["metrics"]["per_source"]["citizenlab"]}
    src["metrics"]["future"]["by_month"] = {"2022|10": src["metrics"]["future"]["by_month"]["2022-10"]}
    src["data_report"]["quarantine_reasons"] = {"bad | reason": 3}
    card = mc.render(template(), mc.build_context(src))
    rows = _table_after(card, "### Per source")
    assert rows[0][0] == "ev\\|l <b>\\x0a\\x60src\\x60" and len(rows[0]) == 6
    assert _table_after(card, "By the month the URL was first seen")[0][0] == "2022\\|10"
    for line in card.splitlines():
        if line.startswith("|"):
            assert "\n" not in line
