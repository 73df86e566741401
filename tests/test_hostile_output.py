"""Hostile text everywhere a person reads output: one function per medium, and one real rendering
per medium (the client's ``score`` output, the monitor report / issue body, the PR comment, a CSV
read back, a plot)."""
from __future__ import annotations

import logging
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import monitor_synthetic as ms
import numpy as np
import pandas as pd
import pytest
from monitor_synthetic import run_cli

from phishing_url_detector.text import terminal
from pipeline import common
from pipeline.common import (
    csv_cell,
    csv_uncell,
    md_cell,
    plot_text,
    read_csv,
    write_csv,
)

ROOT = Path(__file__).resolve().parents[1]

HOSTILE = {
    "cr": "http://evil/\rlegitimate 0.0012 http://paypal.com/",
    "erase": "http://evil/\x1b[2K\x1b[1Glegitimate",
    "csi8": "http://evil/\x9b2Klegitimate",
    "rlo": "http://evil/\u202egpj.exe",
    "isolate": "http://evil/\u2066x\u2069",
    "zero_width": "http://pay\u200bpal.com/\ufeff",
    "nul": "http://evil/\x00x",
    "newline": "v1\n# heading\n\n<img src=x onerror=alert(1)>",
    "pipe": "a|b|c",
    "script": "<script>alert(1)</script>",
    "mention": "@team please merge #123",
    "link": "x](javascript:alert(1)) ![i](http://t/p.png)",
    "backtick": "``` code ` span",
    "line_sep": "a\u2028b\u2029c",
}
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def hidden(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in INVISIBLE]


# -- terminal ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_terminal_leaves_nothing_that_acts_or_hides(name):
    out = terminal(HOSTILE[name])
    assert hidden(out) == []
    assert "\n" not in out and "\r" not in out and "\x1b" not in out


def test_terminal_names_each_character():
    assert terminal("a\rb") == "a\\x0db"
    assert terminal("\x1b[2K") == "\\x1b[2K"
    assert terminal("\x9b") == "\\x9b"
    assert terminal("x\u202ey\u2066z\u200b") == "x\\u202ey\\u2066z\\u200b"
    assert terminal("\x00") == "\\x00" and terminal("\t") == "\\x09"
    assert terminal("http://b/\udcff") == "http://b/\\xff"       # an undecodable input byte, as the byte
    assert terminal("\ud800") == "\\ud800"                          # any other lone surrogate
    assert terminal("http://例え.jp/ü?q=1") == "http://例え.jp/ü?q=1"  # visible text stays as it is
    assert terminal("a\nb") == "a\\x0ab" and terminal("a\nb\r", newlines=True) == "a\nb\\x0d"
    terminal(HOSTILE["cr"]).encode("utf-8")  # always writable to a UTF-8 stream


def test_client_score_prints_one_inert_line_per_url(small_onnx, tmp_path):
    """The real CLI in a subprocess, with a model exported by the pipeline's code: a URL carrying
    ``\\r`` or ESC sequences cannot print as ``legitimate 0.0012 http://paypal.com/``."""
    model = tmp_path / "model.onnx"
    model.write_bytes(small_onnx)
    urls = [HOSTILE["cr"], HOSTILE["erase"], HOSTILE["csi8"], HOSTILE["rlo"], "http://example.com/"]
    result = subprocess.run([sys.executable, "-m", "phishing_url_detector", "score", "--allow-unverified",
                             "--model", str(model), *urls], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode("utf-8")
    lines = out.split("\n")[:-1]
    assert len(lines) == len(urls) and "\r" not in out and "\x1b" not in out and "\x9b" not in out
    assert hidden(out.replace("\n", "")) == []
    for line, url in zip(lines, urls):
        verdict, p, shown = line.split(None, 2)
        assert verdict in ("phishing", "legitimate") and re.fullmatch(r"\d\.\d{4}", p)
        assert shown == terminal(url)
    assert lines[0].endswith("http://evil/\\x0dlegitimate 0.0012 http://paypal.com/")


def test_client_error_lines_are_escaped(capsys, tmp_path):
    from phishing_url_detector import cli

    code = cli.main(["score", "--model", str(tmp_path / "no\x1b[2Kmodel\r.onnx"), "http://a/"])
    err = capsys.readouterr().err
    assert code != 0 and "\x1b" not in err and "\r" not in err and "\\x1b[2K" in err


def test_pipeline_log_arguments_are_escaped(capsys):
    from pipeline import cli

    cli.configure_logging(False, False)
    try:
        logging.getLogger("pipeline.test").info("model %s: %d rows", "1.0\r\x1b[2Kok \u202e", 5)
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    assert err == "model 1.0\\x0d\\x1b[2Kok \\u202e: 5 rows\n"


def test_ingest_listing_of_conflicts_is_escaped(capsys, tmp_path):
    from pipeline.commands import ingest as ingest_command

    frame = pd.DataFrame({"line": [3], "url": [HOSTILE["cr"] + "\x1b[2K"], "reason": ["conflict\r"]})
    ingest_command._listing(frame, "label conflicts", lambda r: f"line {r.line}: {r.reason}: {r.url}",
                            tmp_path / "conflicts.csv")
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out and "http://evil/\\x0dlegitimate" in out


# -- markdown -------------------------------------------------------------------------------------
def markdown_html(text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table").render(text)


@pytest.mark.parametrize("code", [True, False])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_md_cell_is_inert_in_a_table_cell(name, code):
    out = md_cell(HOSTILE[name], code=code)
    assert "\n" not in out and "\r" not in out
    assert hidden(out.replace("\u200b", "")) == []           # only our own zero-width spaces
    assert not re.search(r"(?<!\\)(?:\\\\)*\|", out)          # every pipe escaped for the table
    html = markdown_html(f"| a | b |\n|---|---|\n| {out} | next |\n")
    cells = re.findall(r"<td>(.*?)</td>", html, re.DOTALL)
    assert len(cells) == 2 and cells[1] == "next"
    assert not re.search(r"<(?!/?code>)", cells[0])            # no tag but our own <code>
    if not code:
        assert "@team" not in out and "#123" not in out        # no mention, no issue reference


def test_md_cell_prose_mode_escapes():
    assert md_cell("<b>&amp;", code=False) == "&lt;b&gt;&amp;amp;"
    assert md_cell("@team", code=False) == "@\u200bteam"
    assert md_cell("[x](y)", code=False) == "\\[x\\]\\(y\\)"
    assert md_cell("a\nb\u202e", code=False) == "a\\\\x0ab\\\\u202e"
    assert md_cell("the base's params.yaml", code=False) == "the base's params.yaml"


def hostile_monitor_log(tmp_path: Path, version: str) -> Path:
    rows = pd.concat([ms.synthetic_log(1, windows=6, rows_per_window=300),
                      ms.synthetic_log(2, windows=6, rows_per_window=300, version=version)], ignore_index=True)
    # JSON Lines: a version with a line break reaches the report (a CSV line holding one is a reject now)
    path = tmp_path / "log.jsonl"
    rows.assign(timestamp=rows["timestamp"].map(lambda t: t.isoformat())).to_json(path, orient="records", lines=True)
    return path


@pytest.mark.parametrize("version", [
    "9.9.9\n\n# Owned\n<img src=x onerror=alert(1)> @team | x",
    "$\\x$",
    "1.0`</code><script>alert(1)</script>",
])
def test_monitor_report_and_issue_body_with_a_hostile_model_version(tmp_path, version):
    params = tmp_path / "params.yaml"
    params.write_text("monitor:\n  releases: []\n  window: 7D\n")
    out = tmp_path / "out"
    code = run_cli("monitor", "--log", hostile_monitor_log(tmp_path, version), "--out", out, "--params", params,
                   "--threshold", "0.5")
    assert code in (0, 3)
    assert (out / "ratio.png").stat().st_size > 1000 and (out / "scores.png").stat().st_size > 1000  # no crash
    report = (out / "report.md").read_text()
    body = report + "\n---\nLast updated by https://example/run (plots and monitor.json in the run artifacts).\n"
    html = markdown_html(body)
    assert "<script" not in html and "<img" not in html and "<h1>Owned" not in html
    assert [line for line in report.splitlines() if line.startswith("#")] == [
        line for line in report.splitlines() if line.startswith(("# Prediction monitoring", "## "))]
    assert re.findall(r"<h\d>", html) == ["<h1>"] + ["<h2>"] * (len(re.findall(r"<h\d>", html)) - 1)
    for table in re.findall(r"<table>(.*?)</table>", html, re.DOTALL):  # every row has the header's cells
        header = len(re.findall(r"<th[ >]", table))
        assert {len(re.findall(r"<td[ >]", row)) for row in re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)[1:]} == {header}
    assert "9.9.9" not in version or "9.9.9\\x0a\\x0a# Owned" in report


# -- CSV --------------------------------------------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://x","y")', "@SUM(1)", "-2+3+cmd|' /C calc'!A0", "+x", "\tx", "\rx",
            "'=already", "'", "plain", "", "+1", "-2", "-0.5e3"]


def test_csv_cell_round_trip():
    for value in FORMULAS:
        cell = csv_cell(value)
        assert csv_uncell(cell) == value
        if value in ("+1", "-2", "-0.5e3"):
            assert cell == value                                  # a number stays a number
        else:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert csv_cell(-2) == -2 and csv_cell(1.5) == 1.5 and csv_cell(None) is None


def test_rejects_csv_round_trip_through_the_monitor(tmp_path):
    """rejects.csv from a real monitor run: formula cells are text for a spreadsheet, and read_csv
    gives back what the log held."""
    params = tmp_path / "params.yaml"
    params.write_text("monitor:\n  releases: []\n  window: 7D\n")
    log = ms.to_csv_log(ms.synthetic_log(1, windows=4, rows_per_window=300), tmp_path / "log.csv")
    with open(log, "a") as fh:  # timestamp,model_version,score,verdict,label: every row is rejected
        fh.write('"=HYPERLINK(""http://x"",""y"")",1.0.0,0.5,0,\n')
        fh.write("@SUM(1),-2+3+cmd|' /C calc'!A0,0.5,0,\n")
        fh.write("+1,1.0.0,0.5,0,\n")
        fh.write("2024-01-03T00:00:00Z,=1+1,-0.2,0,\n")
    out = tmp_path / "out"
    run_cli("monitor", "--log", log, "--out", out, "--params", params)
    frame = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)  # as a spreadsheet sees it
    assert len(frame) == 4
    for column in ("timestamp", "model_version"):
        for value in frame[column]:
            assert not value.startswith(("=", "@")) and not (value.startswith(("+", "-")) and "+" in value[1:])
    back = read_csv(out / "rejects.csv")
    assert back["timestamp"].tolist()[:3] == ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1"]
    assert back["model_version"].tolist()[1] == "-2+3+cmd|' /C calc'!A0" and back["score"].tolist()[3] == "-0.2"


def test_quarantine_round_trip_keeps_numbers_numbers(tmp_path):
    from pipeline.review.diffs import read_quarantine

    frame = pd.DataFrame({"source": ["-src", "ok"], "file": ["f.csv", "@f"], "line": [-2, 7],
                          "url": ['=HYPERLINK("http://x","y")', "http://a/"], "label": [1, 0],
                          "first_seen": ["", "+2020"], "reason": ["@SUM(1)", "'quoted"]})
    path = tmp_path / "quarantine.csv"
    write_csv(frame, path, encoding="utf-8", errors="backslashreplace")
    raw = path.read_text().splitlines()
    assert raw[1].startswith("'-src,f.csv,-2,") and "'@f" in raw[2]   # text escaped, the number -2 not
    assert "'=HYPERLINK" in raw[1] and "'@SUM(1)" in raw[1] and raw[2].endswith("''quoted")
    back = read_quarantine(path)
    assert back["url"].tolist() == frame["url"].tolist() and back["reason"].tolist() == frame["reason"].tolist()
    assert back["line"].tolist() == ["-2", "7"] and back["source"].tolist() == ["-src", "ok"]


# -- plots --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["$\\x$", "a_b", "two\nlines", "x" * 5000, "$", "\\$\\x$", "\x1b[2K\u202e"])
def test_plots_with_hostile_labels_do_not_crash(tmp_path, text):
    from pipeline.training.plots import confusion_png, curves_png, future_by_month_png

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = rng.random(200)
    confusion_png({"tn": 5, "fp": 1, "fn": 2, "tp": 7}, tmp_path / "c.png", text)
    curves_png(y, {text: p, "ok": p ** 2}, tmp_path / "curves.png", {text: 0.5})
    future_by_month_png({text: {"recall": 0.5, "fpr": 0.01}, "2024-01": {"recall": 0.7, "fpr": 0.0}},
                        tmp_path / "f.png", 0.01)
    for name in ("c.png", "curves.png", "f.png"):
        assert (tmp_path / name).stat().st_size > 1000
    label = plot_text(text)
    assert len(label) <= 81 * 2 and "\n" not in label and hidden(label) == []


def test_plot_text_defuses_mathtext():
    assert plot_text("$\\x$") == "\\$\\x\\$"
    assert plot_text("x" * 100).endswith("…") and len(plot_text("x" * 100)) == 80


def test_one_rule_for_hidden_characters():
    """The markdown cell shows a hidden character exactly as the terminal does."""
    for ch in "\r\x1b\x9b\u202e\u2066\u200b\x00":
        assert md_cell(ch) == f"`{terminal(ch)}`"
    assert common.terminal is terminal
