"""report.md from a review document: order, highlighting, warnings (pure, fast)."""
from __future__ import annotations

import copy
import re

import pytest

from pipeline import common
from pipeline.review import render, stats

KEYS = ("roc_auc", "pr_auc", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01", "precision", "recall", "f1", "fpr")
SECTIONS = ["### Params and data", "### Metrics on the PR's test split (1,000 URLs)", "### Confusion matrices",
            "### Slices that moved most", "### Pipeline", "### ONNX model"]


def metric(value, half=0.01):
    return {"value": value, "ci95_low": value - half, "ci95_high": value + half}


@pytest.fixture
def review():
    base = {k: 0.9 for k in KEYS} | {"fpr": 0.01}
    pr = {k: metric(0.88) for k in KEYS} | {"fpr": metric(0.01, 0.002), "roc_auc": metric(0.95, 0.01)}
    deltas = {k: {"value": pr[k]["value"] - base[k], "ci95_low": -0.03, "ci95_high": -0.01} for k in KEYS}
    mc = {"p_value": 2.1e-05, "effect": -0.02, "both_right": 850, "base_only": 30, "pr_only": 10, "both_wrong": 110,
          "rows": 1000, "discordant": 40}
    verdict = stats.decide(mc, deltas, [0.001, 0.01], {"alpha": 0.05, "min_effect": {
        "accuracy": 0.002, "roc_auc": 0.002, "tpr_at_fpr": 0.01}})
    onnx = {"size_bytes": 123456, "sha256": "ab" * 32, "contract_digest": "c" * 64, "contract_major": 1,
            "parity_rows": 1000, "batch_sizes": [1, 256], "label_agreement": 1.0, "max_abs_proba_diff": 3e-7,
            "tolerance": 1e-4}
    return {
        "base": {"ref": "main", "sha": "a" * 40, "threshold": 0.7, "metrics": base,
                 "confusion": {"tn": 490, "fp": 10, "fn": 60, "tp": 440}},
        "pr": {"ref": "my-branch", "sha": "b" * 40, "threshold": 0.75, "metrics": pr,
               "confusion": {"tn": 495, "fp": 5, "fn": 80, "tp": 420}},
        "test_rows": 1000, "fpr_points": [0.001, 0.01], "interval_level": 0.95, "bootstrap_resamples": 400,
        "deltas": deltas, "mcnemar": mc, "verdict": verdict.to_dict(),
        "review_params": {"accept_label": "accept-regression"}, "review_params_source": "the base's params.yaml",
        "params_diff": [{"key": "train.lexical_forest.n_estimators", "change": "changed", "old": 120, "new": 5}],
        "pointers_diff": [], "pointer_count": 3, "rows_diff": [], "data_changed": False,
        "verdict_scope": {"rows": 1000, "seen_by_base": 0, "restricted": False},
        "slice_movers": [{"family": "tld", "slice": "com", "rows": 300, "metric": "recall", "base": 0.8, "pr": 0.7,
                          "delta": -0.1}],
        "pipeline": {"stages": ["prepare", "train", "evaluate"],
                     "pr": {"seconds": 75.0, "stages": {"prepare": "up to date", "train": "re-ran",
                                                        "evaluate": "re-ran"}},
                     "base": {"seconds": 3.0, "stages": {"prepare": "up to date", "train": "restored from run-cache",
                                                         "evaluate": "up to date"}},
                     "lock_checked": True, "lock_mismatch": [], "files_to_commit": [], "metrics_consistent": True,
                     "review_seconds": 130.0},
        "onnx": {"base": onnx, "pr": dict(onnx, size_bytes=100000), "contract_changed": False},
        "plots": ["confusion_base.png", "confusion_pr.png", "curves.png"],
    }


def test_sections_in_order_and_verdict_first(review):
    text = render.render(review)
    first = text.splitlines()[0]
    assert first.startswith("**❌ Worse**: challenger `my-branch` (bbbbbbb) vs champion `main` (aaaaaaa)")
    assert "McNemar exact test p = 2.10e-05" in first and "30 URLs newly wrong, 10 newly right" in first
    assert "paired bootstrap ΔROC AUC +0.0500 [-0.0300, -0.0100]" not in first  # only decisive tests
    positions = [text.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert "**This fails the check.**" in text and "`accept-regression`" in text


def test_metrics_table_highlights_deltas_beyond_the_pr_interval(review):
    text = render.render(review)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "**-0.0200**" in rows["PR AUC"]           # base 0.9 outside [0.87, 0.89]
    assert "**+0.0500**" in rows["ROC AUC"]
    assert "| +0.0000 |" in rows["FPR"]              # base 0.01 inside the PR interval: not bold
    assert rows["threshold"].split("|")[2:5] == [" 0.7000 ", " 0.7500 ", " +0.0500 "]


def test_confusion_tables_have_counts_and_rates(review):
    text = render.render(review)
    assert "| legitimate (500) | 490 (98.00%) | 10 (2.00%) | 495 (99.00%) | 5 (1.00%) |" in text
    assert "| phishing (500) | 60 (12.00%) | 440 (88.00%) | 80 (16.00%) | 420 (84.00%) |" in text


def test_images_only_in_the_comment_not_in_the_summary(review):
    assert "![curves](curves.png)" in render.render(review, images=True)
    summary = render.render(review, images=False)
    assert "![" not in summary and "`curves.png`" in summary


def test_pipeline_facts_and_lock_warning(review):
    text = render.render(review)
    assert "| `train` | 🔄 re-ran | ♻️ restored from run-cache |" in text
    assert "re-ran `train`, `evaluate`; reused from the DVC cache `prepare`" in text
    assert "✅ The committed `dvc.lock` matches" in text and "does not match" not in text
    stale = copy.deepcopy(review)
    stale["pipeline"]["lock_mismatch"] = [{"stage": "evaluate", "what": ["param `evaluate.seed`"]}]
    stale["pipeline"]["files_to_commit"] = ["dvc.lock", "metrics.json"]
    text = render.render(stale)
    assert "**⚠️ The committed `dvc.lock` does not match what was reproduced here.**" in text
    assert "- `evaluate`: param `evaluate.seed`" in text
    assert 'dvc repro && git add dvc.lock metrics.json && git commit -m "dvc repro"' in text
    assert text.index("⚠️ The committed `dvc.lock` is stale") < text.index("### Params and data")
    stale["pipeline"]["pr"] = None
    assert "**⚠️ The committed `dvc.lock` does not match the working tree's.**" in render.render(stale)
    many = [f"param `evaluate.p{i}`" for i in range(7)]
    stale["pipeline"]["lock_mismatch"] = [{"stage": "evaluate", "what": many}]
    assert "- `evaluate`: " + ", ".join(many[:6]) + " …\n" in render.render(stale)  # the cut is shown


def test_without_a_repro_log_dvc_status_speaks(review):
    review["pipeline"]["pr"] = None
    review["pipeline"]["stale_stages"] = ["train"]
    text = render.render(review)
    assert "| `train` | ⚠️ out of date (`dvc status`) | ♻️ restored from run-cache |" in text
    assert "| `prepare` | ✔️ up to date (`dvc status`) |" in text
    assert "⚠️ The working tree's pipeline outputs are out of date" in text.split("### Params")[0]
    assert "✅ The committed `dvc.lock` matches the working tree's." in text


def test_contract_change_is_called_out_in_bold(review):
    assert "I/O contract unchanged." in render.render(review)
    changed = copy.deepcopy(review)
    changed["onnx"]["pr"]["contract_digest"] = "d" * 64
    changed["onnx"]["pr"]["contract_major"] = 2
    changed["onnx"]["contract_changed"] = True
    text = render.render(changed)
    assert re.search(r"\*\*⚠️ The I/O contract changed .*contract major 1 → 2\).*MAJOR version\.\*\*", text)
    assert "**⚠️ Breaking change: the ONNX I/O contract changed**" in text.split("### Params")[0]


def test_accepted_regression_and_other_outcomes(review):
    accepted = copy.deepcopy(review)
    accepted["verdict"]["accepted_by"] = "label `accept-regression`"
    text = render.render(accepted)
    assert "accepted by label `accept-regression`, so the check passes" in text and "fails the check" not in text
    same = copy.deepcopy(review)
    same["verdict"] = {**review["verdict"], "outcome": stats.NO_CHANGE}
    first = render.render(same).splitlines()[0]
    assert first.startswith("**➖ No significant change**") and "ΔTPR@FPR 0.01" in first


def test_params_and_data_sections(review):
    text = render.render(review)
    assert "| `train.lexical_forest.n_estimators` | `120` | `5` |" in text
    assert "no `.dvc` pointer changed (3 pointers)" in text
    data = copy.deepcopy(review)
    data["pointers_diff"] = [{"path": "data/raw/a.csv.gz.dvc", "change": "changed", "old_md5": "1" * 32,
                              "new_md5": "2" * 32, "old_size": 1000, "new_size": 900}]
    data["rows_diff"] = [{"scope": "test", "class": "phishing", "old": 100, "new": 90}]
    data["data_changed"] = True
    data["verdict_scope"] = {"rows": 988, "seen_by_base": 12, "restricted": True}
    text = render.render(data)
    assert "| `data/raw/a.csv.gz.dvc` | changed | `1111111111` | `2222222222` | 1,000 | 900 |" in text
    assert "| test | phishing | 100 | 90 | -10 |" in text
    assert "12 of its 1,000 URLs were in the base model's training or validation split" in text
    assert "the verdict's tests use only the 988 URLs the base never saw" in text
    assert "on the 988 of the PR's 1,000 test URLs the base model never saw —" in text.splitlines()[0]
    assert "McNemar's test (paired decisions at each model's threshold, on the 988 test URLs" in text
    data["verdict_scope"]["restricted"] = False
    assert "too few unseen URLs remain" in render.render(data)


# -- the one escaping function for untrusted text --------------------------------------------------

HOSTILE = {
    "pipes": "http://a/|b||c",
    "newlines": "http://a/\nb\r\nc",
    "script": "http://a/<script>alert(1)</script>&amp;<img src=x onerror=alert(1)>",
    "backticks": "http://a/`code` and ``more``",
    "mention": "http://a/@octocat @github/security #1",
    "markup": "http://a/*b* _c_ [d](http://e/) ![f](g) **h** ~~i~~ :smile:",
    "escape sequences": "http://a/\x1b[31mred\x1b[0m\x07\x00",
    "rtl override": "http://a/\u202egnp.exe\u200b\ufeff\u2028",
    "backslashes": "http://a/\\|\\`\\x60\\",
}


def md_table(*cells: str) -> str:
    from markdown_it import MarkdownIt

    body = "| " + " | ".join(cells) + " |"
    header = "| " + " | ".join("h" for _ in cells) + " |\n|" + "---|" * len(cells)
    return MarkdownIt("commonmark").enable("table").render(f"{header}\n{body}\n")


@pytest.mark.parametrize("name", list(HOSTILE))
def test_md_cell_makes_hostile_text_one_inert_visible_code_span(name):
    import html

    pytest.importorskip("markdown_it")
    text = HOSTILE[name]
    out = render.md_cell(text)
    assert out.startswith("`") and out.endswith("`") and "`" not in out[1:-1]
    assert not re.search(r"[\x00-\x1f\x7f\u200b\u2028\u202e\ufeff]", out)  # nothing invisible, no new row
    assert not re.search(r"(?<!\\)(?:\\\\)*\|", out)                       # every pipe escaped for the table
    rendered = md_table(out, "next")
    cells = re.findall(r"<td>(.*?)</td>", rendered, re.DOTALL)
    assert len(cells) == 2 and cells[1] == "next"                          # one row, cell boundaries kept
    assert re.fullmatch(r"<code>[^<]*</code>", cells[0])                   # only text inside one code element
    shown = html.unescape(cells[0][len("<code>"):-len("</code>")])
    expected = "".join(common._md_piece(ch, code=True).replace("\\|", "|") for ch in text)
    assert shown == expected


def test_md_cell_shows_escapes_visibly_and_unambiguously():
    assert render.md_cell("a|b`c\\d\ne") == "`a\\|b\\x60c\\\\d\\x0ae`"
    assert render.md_cell("x\u202ey") == "`x\\u202ey`" and render.md_cell("\x1b[1m") == "`\\x1b[1m`"
    assert render.md_cell("\\x60") == "`\\\\x60`" != render.md_cell("`")    # a literal "\x60" is not a backtick
    assert render.md_cell("@octocat <b>*x*</b>") == "`@octocat <b>*x*</b>`"  # inert inside the code span
    assert render.md_cell("\U000e0041") == "`\\U000e0041`"                  # tag characters (invisible) too
    assert render.md_cell(None) == "—" and render.md_cell("") == "*(empty)*" and render.md_cell(42) == "`42`"


def test_md_cell_limit_bounds_the_cell_after_escaping():
    assert render.md_cell("abcdef", 4) == "`abcd`…" and render.md_cell("abcd", 4) == "`abcd`"
    flood = render.md_cell("\n" * 1000, 120)
    assert flood.endswith("`…") and len(flood) <= 120 + 3 and "\\x0a" in flood
    assert render.md_cell("\n", 2) == "…"


def test_params_values_and_keys_go_through_the_same_escaping(review):
    assert render.cell([0.001, 0.01]) == "`[0.001, 0.01]`" and render.cell(120) == "`120`"
    assert render.cell("a`b|c\n") == "`a\\x60b\\|c\\x0a`" and render.cell(None) == "—"
    review["params_diff"] = [{"key": "data.x|y", "change": "added", "old": None, "new": "@octocat\n| z |"}]
    text = render.render(review)
    assert "| `data.x\\|y` | — | `@octocat\\x0a\\| z \\|` |" in text


# -- future split, per source, data changes ---------------------------------------------------------

def entry(phishing, legitimate, **rates):
    return {"rows": phishing + legitimate, "phishing": phishing, "legitimate": legitimate, **rates}


def future_facts():
    months_pr = {"2022-10": entry(50, 5, recall=0.8, fpr=0.0, roc_auc=0.95, precision=1.0),
                 "2022-11": entry(40, 0, recall=0.75),
                 "2023-01": entry(0, 9, fpr=0.1111)}
    months_base = {"2022-10": entry(50, 5, recall=0.7, fpr=0.2, roc_auc=0.9, precision=0.97),
                   "2022-11": entry(40, 0, recall=0.8),
                   "2023-01": entry(0, 9, fpr=0.0)}
    return {"pr_has_split": True, "base_has_split": True, "from": "2022-10-01", "newest_months": 3, "rows": 104,
            "seen_by_base": 0,
            "pr": {"overall": entry(90, 14, recall=0.7778, fpr=0.0714), "by_month": months_pr,
                   "newest": {"months": ["2022-10", "2022-11"], "phishing": 90, "recall": 0.7778}},
            "base": {"overall": entry(90, 14, recall=0.7444, fpr=0.0714), "by_month": months_base,
                     "newest": {"months": ["2022-10", "2022-11"], "phishing": 90, "recall": 0.7444}}}


def test_future_section_per_month_with_missing_rates(review):
    review["future"] = future_facts()
    text = render.render(review)
    section = text.split("### Future split (URLs first seen on or after `2022-10-01`)")[1].split("###")[0]
    assert ("**Recall on the newest 3 months** (`2022-10` … `2022-11`, 90 phishing URLs): base 0.7444, PR 0.7778, "
            "Δ +0.0334.") in section
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[1] == "| **all months** | 90 | 14 | 0.7444 | 0.7778 | +0.0334 | 0.0714 | 0.0714 | +0.0000 |"
    assert rows[2] == "| `2022-10` | 50 | 5 | 0.7000 | 0.8000 | +0.1000 | 0.2000 | 0.0000 | -0.2000 |"
    assert rows[3] == "| `2022-11` | 40 | 0 | 0.8000 | 0.7500 | -0.0500 | — | — | — |"       # no legitimate rows
    assert rows[4] == "| `2023-01` | 0 | 9 | — | — | — | 0.0000 | 0.1111 | +0.1111 |"       # no phishing rows
    assert "flatters" not in section and "has no future split" not in section


def test_future_section_says_what_is_missing(review):
    facts = future_facts()
    facts.update(base_has_split=False, seen_by_base=12)
    del facts["base"]["by_month"]["2022-11"]                        # the base side lacks a month: dashes
    review["future"] = facts
    text = render.render(review)
    assert "The base has no future split (`data/prepared/future.parquet`)" in text
    assert "⚠️ 12 of these URLs were in the base model's training or validation split" in text
    assert "| `2022-11` | 40 | 0 | — | 0.7500 | — | — | — | — |" in text
    review["future"] = {"pr_has_split": False, "base_has_split": True, "from": None, "newest_months": 3, "rows": 0}
    text = render.render(review)
    assert "### Future split\n\nThe PR has no future split (`data/prepared/future.parquet`): nothing to compare." in text
    review["future"] = dict(review["future"], pr_has_split=True)
    assert "The PR's future split is empty: nothing to compare." in render.render(review)
    facts = future_facts()
    facts["pr"]["newest"] = facts["base"]["newest"] = {"months": [], "phishing": 0, "recall": None}
    review["future"] = facts
    assert "**Recall on the newest 3 months:** no month of the future split holds phishing URLs." in \
        render.render(review)
    del review["future"]
    assert "### Future split" not in render.render(review)          # a review.json from before the section


def test_per_source_section_shows_only_the_rates_each_source_has(review):
    review["per_source"] = {
        "base": {"citizenlab": entry(0, 700, fpr=0.004), "ebbu2017": entry(500, 700, recall=0.7, fpr=0.003,
                                                                            roc_auc=0.98, precision=0.99),
                 "jpcert": entry(1800, 0, recall=0.86)},
        "pr": {"citizenlab": entry(0, 700, fpr=0.003), "ebbu2017": entry(500, 700, recall=0.75, fpr=0.004,
                                                                          roc_auc=0.985, precision=0.99),
               "jpcert": entry(1800, 0, recall=0.87), "new|<b>": entry(3, 0, recall=1.0)}}
    text = render.render(review)
    section = text.split("### Per source (the PR's test split)")[1].split("###")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows == ["| `citizenlab` | 0 | 700 | FPR | 0.0040 | 0.0030 | -0.0010 |",
                    "| `ebbu2017` | 500 | 700 | ROC AUC | 0.9800 | 0.9850 | +0.0050 |",
                    "| `ebbu2017` | 500 | 700 | recall | 0.7000 | 0.7500 | +0.0500 |",
                    "| `ebbu2017` | 500 | 700 | FPR | 0.0030 | 0.0040 | +0.0010 |",
                    "| `jpcert` | 1,800 | 0 | recall | 0.8600 | 0.8700 | +0.0100 |",
                    "| `new\\|<b>` | 3 | 0 | recall | — | 1.0000 | — |"]


def url_row(i, url=None, reason="conflicting labels: the same url is phishing at jpcert:7 and legitimate at c:9"):
    return {"source": "jpcert", "file": "j.csv", "line": str(i), "url": url or f"http://p{i}.example/",
            "label": "1", "first_seen": "", "reason": reason}


def data_review(review, conflicts, others):
    review["data_changed"] = True
    review["rows_diff"] = [{"scope": "raw", "source": "jpcert", "class": "phishing", "old": 100, "new": 130},
                           {"scope": "future", "source": None, "class": "legitimate", "old": None, "new": 4}]
    review["data_changes"] = {
        "months": [{"source": "jpcert", "class": "phishing", "month": "2022-11", "old": 0, "new": 20}],
        "base_has_months": True,
        "quarantine": [{"source": "jpcert", "reason": "conflicting labels", "old": 0, "new": 2},
                       {"source": "ebbu2017", "reason": "duplicate", "old": 5, "new": 5}],
        "base_has_quarantine": True, "pr_has_quarantine": True,
        "label_conflicts": {"rows": len(conflicts), "csv": "label_conflicts.csv", "shown": conflicts[:50]},
        "new_quarantine": {"rows": len(others), "csv": "new_quarantine.csv", "shown": others[:50]}}
    return review


def test_data_changes_section_tables_and_url_lists(review):
    hostile = "http://evil.example/|x`<script>alert(1)</script>@octocat\n| a | b |\u202e"
    conflicts = [url_row(7, hostile), url_row(9, "http://c.example/")]
    text = render.render(data_review(review, conflicts, []))
    assert text.index("### Params and data") < text.index("### Data changes") < text.index("### Metrics")
    assert "| raw `jpcert` | phishing | 100 | 130 | +30 |" in text and "| future | legitimate | — | 4 | — |" in text
    assert "| `jpcert` | `phishing` | `2022-11` | 0 | 20 | +20 |" in text
    assert "| `jpcert` | `conflicting labels` | 0 | 2 | +2 |" in text
    assert "**New label conflicts: 2** (" in text and "all of them in `label_conflicts.csv`" in text
    assert ("| `jpcert:7` | `1` | `http://evil.example/\\|x\\x60<script>alert(1)</script>@octocat\\x0a\\| a \\| b "
            "\\|\\u202e` | `conflicting labels: the same url is phishing at jpcert:7 and legitimate at c:9` |") in text
    assert "**Other newly quarantined rows:** none." in text
    assert "⚠️ 2 new label conflicts (the same URL with both labels): see **Data changes**." in \
        text.split("### Params")[0]


def test_url_lists_are_capped_in_the_comment_and_name_their_csv(review):
    others = [url_row(i, reason="control character: url contains U+0013") for i in range(80)]
    text = render.render(data_review(review, [], others))
    assert "**New label conflicts:** none." in text and "new label conflicts" not in text.split("### Params")[0]
    assert ("**Other newly quarantined rows: 80** (rows the base did not quarantine with this reason; the first 50 "
            "below; all of them in `new_quarantine.csv`, in the run's `review` artifact):") in text
    assert text.count("| `jpcert:") == 50 and "<details><summary>50 rows</summary>" in text
    review["data_changes"]["new_quarantine"]["shown"] = others      # even a longer list in review.json
    assert render.render(review).count("| `jpcert:") == 50
    long_url = "http://long.example/" + "a" * 5000
    review["data_changes"]["new_quarantine"] = {"rows": 1, "csv": "new_quarantine.csv",
                                                "shown": [url_row(1, long_url)]}
    cell = next(line for line in render.render(review).splitlines() if line.startswith("| `jpcert:1`"))
    assert len(cell) < 500 and "a…" not in cell and "`… |" in cell


def test_whole_data_comment_renders_without_html_links_or_mentions(review):
    from markdown_it import MarkdownIt

    hostile = "http://evil.example/<script>x</script>[a](http://b.example/)@octocat\n| c |"
    review = data_review(review, [url_row(1, hostile)], [url_row(2, "<img src=x onerror=alert(1)>")])
    review["per_source"] = {"base": {"x<i>": entry(1, 1, recall=1.0)}, "pr": {"x<i>": entry(1, 1, recall=1.0)}}
    html = MarkdownIt("commonmark").enable("table").render(render.render(review, images=False))
    assert "<script" not in html and "<img" not in html and "<i>" not in html and "<a " not in html
    assert "&lt;script&gt;x&lt;/script&gt;[a](http://b.example/)@octocat\\x0a| c |</code>" in html


def test_no_data_changes_section_for_a_code_pr(review):
    review = data_review(review, [url_row(1)], [])
    review["data_changed"] = False
    text = render.render(review)
    assert "### Data changes" not in text and "new label conflicts" not in text


def test_every_section_in_its_fixed_place(review):
    review = data_review(review, [url_row(1)], [])
    review["future"] = future_facts()
    review["per_source"] = {"base": {"a": entry(1, 1, recall=1.0)}, "pr": {"a": entry(1, 1, recall=0.0)}}
    text = render.render(review)
    order = ["### Params and data", "### Data changes", "### Metrics on the PR's test split",
             "### Future split", "### Per source", "### Confusion matrices", "### Slices that moved most",
             "### Pipeline", "### ONNX model"]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)


def test_pr_comment_with_hostile_params_stays_in_its_cells(review):
    """params keys and values, the accept_regression reason and the base ref are the PR's text:
    newlines, HTML, mentions and links stay inside their cells (rendered by markdown-it here)."""
    markdown_it = pytest.importorskip("markdown_it")
    hostile = "x\n\n## Injected\n<img src=x onerror=alert(1)> @team [c](javascript:alert(1)) | y"
    review["params_diff"] = [{"key": "train.<b>seed</b>|\n# k", "change": "changed", "old": 1, "new": hostile},
                             {"key": "review.x", "change": "added", "old": None, "new": ["`a`", "<i>"]}]
    review["verdict"]["accepted_by"] = stats.acceptance([], "accept-regression", hostile)
    review["slice_movers"][0]["slice"] = "<b>com</b>|x"
    review["base"]["ref"] = "main`</sub><script>x</script>"
    text = render.render(review)
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    assert "<script" not in html and "<img src=\"x\"" not in html and "<b>" not in html and "<i>" not in html
    assert not re.search(r"<[a-z]+[^>]*onerror", html)                     # the img is text, not a tag
    assert "<a " not in html and "@team" not in outside_code                # no link, no mention
    assert "<h2>Injected" not in html and "Injected</h" not in html
    assert "The regression is accepted by params.yaml `review.accept_regression`: “x\\\\x0a\\\\x0a" in text
    table = text.split("**Params**")[1].split("\n\n")[1].splitlines()
    assert len(table) == 4
    cells = re.findall(r"<tr>(.*?)</tr>", html.split("<strong>Params</strong>")[1], re.DOTALL)[1:3]
    assert [len(re.findall(r"<td>", row)) for row in cells] == [3, 3]


def test_the_comment_says_whether_the_base_was_restored_or_trained_again():
    from pipeline.review.pipeline_sections import base_sentence

    run = {"seconds": 41.0, "stages": {"prepare": "re-ran", "train": "restored from the remote"}}
    restored = base_sentence({"outputs_restored": ["models/model.joblib"], "outputs_not_stored": []}, run)
    assert "**restored from the DVC remote**, not trained again" in restored and "re-ran `prepare`" in restored
    run = {"seconds": 300.0, "stages": {"prepare": "re-ran", "train": "re-ran"}}
    trained = base_sentence({"outputs_restored": [], "outputs_not_stored": ["models/model.joblib"]}, run)
    assert trained.startswith("⚠️ **The base was trained again here**") and "re-ran `prepare`, `train`" in trained


def test_the_released_model_has_its_own_section_apart_from_the_held_out_comparison(review):
    assert "### Released model" not in render.render(review)  # a base and PR without final fits
    final = {"rows": 216489, "newest_phishing_month": "2023-12", "threshold": 0.8376, "test_rows": 64965,
             "roc_auc": 0.9898, "recall": 0.8455, "fpr": 0.0051}
    review["released"] = {"base": None, "pr": final}
    text = render.render(review)
    assert text.index("### Released model (final fit)") < text.index("### Metrics on the PR's test split")
    section = text[text.index("### Released model"):text.index("### Params and data")]
    assert "measure the **held-out model**" in section and "ships the **final fit**" in section
    assert "| newest phishing month in its data | — | `2023-12` |" in section
    assert "| trained on (train + future splits) | — | 216,489 |" in section
    assert "| test recall | — | 0.8455 |" in section
