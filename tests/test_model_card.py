"""The model card: rendered from the committed outputs, never stale, no number without a source."""
from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from conftest import REPO
from pipeline import model_card as mc
from pipeline.stages import model_card as stage

MARK = ("\x02", "\x03")  # wraps every substituted value when rendering for the tests
# A number as the card writes it: 1,234 / 0.9869 / -0.0013 / 82.8% / 3.9e-07 (not part of a word,
# a version like 1.20.0, or a hex digest).
NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?![\w.])|(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]\d+)?%?(?![\w.])")
LOOSE_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def committed_card() -> str:
    return (REPO / mc.CARD).read_text(encoding="utf-8")


def test_committed_card_is_what_the_committed_outputs_render_to():
    """CI's stale-card check: change an output or the template, and this fails until
    `dvc repro model-card` re-renders the card and it is committed."""
    assert mc.render_card(REPO) == committed_card(), (
        "model_card/MODEL_CARD.md is stale: run `dvc repro model-card` and commit it")


def test_check_mode_agrees(capsys):
    assert stage.run(REPO, check=True) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_mode_reports_a_stale_card_with_a_diff(tmp_path, capsys):
    for rel in [*mc.SOURCES.values(), mc.TEMPLATE, mc.CARD, "params.yaml"]:
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
    """Every number in the card's inputs: values, and numbers inside keys and strings."""
    found: list[float] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                found.extend(float(x) for x in LOOSE_NUMBER.findall(str(key)))
                walk(value)
        elif isinstance(node, list):
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
    the reports, the manifest or params.yaml at the precision the card shows."""
    marked = mc.render_card(REPO, wrap=MARK)
    assert marked.replace(MARK[0], "").replace(MARK[1], "") == committed_card()
    sources = _source_numbers(mc.load_sources(REPO))
    checked = 0
    for segment in _marked_segments(marked):
        segment = re.sub(r"`[^`]*`", "", segment)  # digests and file names in code spans
        for token in NUMBER.findall(segment):
            assert _matches(token, sources), f"{token!r} in {segment[:120]!r} has no source"
            checked += 1
    assert checked > 250


def _table_after(card: str, heading: str) -> list[list[str]]:
    """Rows (cells) of the first markdown table after ``heading``."""
    rest = card[card.index(heading):]
    lines = [line for line in rest.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return [r for r in rows[2:]]  # drop header and alignment rows


def _value_and_interval(cell: str) -> tuple[float, float, float]:
    value, low, high = re.fullmatch(r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", cell).groups()
    return float(value), float(low), float(high)


def test_metric_tables_parse_back_to_metrics_json():
    card, metrics = committed_card(), json.loads((REPO / "metrics.json").read_text())
    ens = metrics["ensemble"]
    labels = {mc.metric_label(k): k for k in mc.metric_keys(ens)}

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
    for row in members:
        if row[0] == "threshold":
            continue
        key = labels[row[0]]
        expected = [ens[key]["value"]] + [metrics["members"][n][key]["value"] for n in metrics["members"]]
        assert [float(x) for x in row[1:]] == pytest.approx(expected, abs=5e-5)

    deltas = _table_after(card, "Ensemble minus member")
    for row in deltas:
        key = labels[row[0]]
        for cell, name in zip(row[1:], metrics["ensemble_minus_member"]):
            d = metrics["ensemble_minus_member"][name][key]
            assert _value_and_interval(cell) == pytest.approx((d["value"], d["ci95_low"], d["ci95_high"]), abs=5e-5)


def test_slice_and_year_tables_parse_back_to_metrics_json():
    card, metrics = committed_card(), json.loads((REPO / "metrics.json").read_text())
    for family, title in mc.SLICE_TITLES.items():
        rows = _table_after(card, f"### {title}\n")
        assert {r[0] for r in rows} == set(metrics["slices"][family])
        for name, n, share, recall, fpr, precision, auc in rows:
            s = metrics["slices"][family][name]
            assert int(n.replace(",", "")) == s["rows"]
            assert float(share.rstrip("%")) == pytest.approx(100 * s["phishing_share"], abs=0.05)
            assert [float(recall), float(fpr), float(precision)] == pytest.approx(
                [s["recall"], s["fpr"], s["precision"]], abs=5e-5)
            assert (auc == "") == ("roc_auc" not in s)
            if auc:
                assert float(auc) == pytest.approx(s["roc_auc"], abs=5e-5)

    years = _table_after(card, "## Recall by year")
    oos = metrics["out_of_source"]
    *per_year, total = years
    assert {r[0] for r in per_year} == set(oos["recall_by_year"])
    for year, n, recall in per_year:
        assert int(n.replace(",", "")) == oos["recall_by_year"][year]["rows"]
        assert float(recall) == pytest.approx(oos["recall_by_year"][year]["recall"], abs=5e-5)
    assert total[0] == "all" and int(total[1].replace(",", "")) == oos["rows"]
    assert float(total[2]) == pytest.approx(oos["recall"], abs=5e-5)


def test_operating_point_and_limitations_quote_metrics_json():
    card, metrics = committed_card(), json.loads((REPO / "metrics.json").read_text())
    assert f"operating threshold {metrics['threshold']:.6f}" in card
    assert f"FPR {metrics['format_stripped']['fpr']:.4f}"[4:] in mc.section(card, "Limitations")
    assert f"{metrics['format_stripped']['recall']:.4f}" in mc.section(card, "Limitations")
    https = metrics["slices"]["scheme"]["https"]["recall"]
    assert f"https URLs have recall {https:.4f}" in card


def test_card_covers_the_required_sections():
    card = committed_card()
    for title in ("Summary", "Model details", "Intended use", "Out-of-scope uses", "Training data",
                  "Evaluation data and split method", "Metrics", "Operating point", "Per-slice performance",
                  "Recall by year (out-of-source check)", "Limitations", "How to load"):
        assert mc.section(card, title)
    assert "- **Version:** assigned at release" in card
    for fact in ("Ebbu2017", "PhishStorm", "PhishTank", "registered_domain", "page content", "`www.`", "https"):
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
    context = mc.build_context(mc.load_sources(REPO))
    template = (REPO / mc.TEMPLATE).read_text()
    with pytest.raises(ValueError, match="without a value"):
        mc.render(template + "\n$not_a_field\n", context)
    with pytest.raises(ValueError, match="without a field"):
        mc.render(template, {**context, "extra": "1"})
    with pytest.raises(ValueError, match="neither a field"):
        mc.render(template + "\ncosts $ 5\n", context)


def test_renders_on_a_tiny_sample_with_missing_slices_and_years():
    """A small sample (the e2e pipeline run) lacks some slices and may pool every year."""
    src = mc.load_sources(REPO)
    small = copy.deepcopy(src)
    del small["metrics"]["slices"]["scheme"]["https"]
    del small["metrics"]["slices"]["www"]["www."]
    small["metrics"]["out_of_source"]["recall_by_year"] = {"<=2021 (pooled)": {"recall": 0.5, "rows": 12}}
    small["data_report"]["out_of_source"]["years"] = {}
    card = mc.render((REPO / mc.TEMPLATE).read_text(), mc.build_context(small))
    assert "https URLs have recall n/a" in card
    assert "Check: not possible" in card


def test_params_quoted_by_the_card_are_declared_in_dvc_yaml():
    stage_spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["model-card"]
    declared = {p.split(".")[0] for p in stage_spec["params"]}
    assert set(mc.PARAM_SECTIONS) == declared
    deps = set(stage_spec["deps"])
    assert {p.as_posix() for p in mc.SOURCES.values()} <= deps
    assert {mc.TEMPLATE.as_posix(), "pipeline/model_card.py", "pipeline/stages/model_card.py"} <= deps
    assert stage_spec["outs"] == [{mc.CARD.as_posix(): {"cache": False}}]
