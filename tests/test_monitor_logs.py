"""Reading the prediction log: formats, time zones, verdicts, and rejects that are never silent."""
from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from pipeline.monitoring import logs

GOOD = [
    {"timestamp": "2024-03-01T10:00:00Z", "model_version": "1.4.0", "score": 0.91, "verdict": 1},
    {"timestamp": "2024-03-01T12:00:00+02:00", "model_version": "1.4.0", "score": 0.20},
    {"timestamp": "2024-03-01 09:30:00", "model_version": "1.4.0", "score": 0.55, "label": 0},
]
BAD = [
    ({"timestamp": "yesterday", "model_version": "1.4.0", "score": 0.5}, "unparseable timestamp"),
    ({"timestamp": "2024-03-01T10:00:00Z", "model_version": "", "score": 0.5}, "missing model_version"),
    ({"timestamp": "2024-03-01T10:00:00Z", "model_version": "1.4.0", "score": 1.7}, "score outside [0,1]"),
    ({"timestamp": "2024-03-01T10:00:00Z", "model_version": "1.4.0", "score": "high"},
     "score missing or not a number"),
    ({"timestamp": "2024-03-01T10:00:00Z", "model_version": "1.4.0", "score": 0.5, "verdict": 7},
     "verdict not 0/1"),
    ({"timestamp": "2024-03-01T10:00:00Z", "model_version": "9.9.9", "score": 0.5},
     "no verdict and no threshold"),
]


def test_timestamps_with_and_without_zone_are_utc():
    """Parsed by the shared SQL (integer arithmetic, no engine date parser)."""
    texts = ["2024-03-01T12:00:00+02:00", "2024-03-01T10:00:00", "2024-03-01", "2024-02-29 23:30:00.25-0100",
             "1999-12-31T23:59:59.999999Z", "2024-03-01T10:00:00+0000",
             "03/01/2024", "3", "2023-02-29", "2024-03-01T24:00:00", "2024-13-01", None]
    raw = pd.DataFrame({"timestamp": texts, "model_version": "1.0.0", "score": 0.5, "verdict": 1})
    clean, rejects = logs.validate(raw)
    assert clean["timestamp"].tolist() == [pd.Timestamp(t, tz="UTC") for t in [
        "2024-03-01T10:00:00", "2024-03-01T10:00:00", "2024-03-01", "2024-03-01T00:30:00.25",
        "1999-12-31T23:59:59.999999", "2024-03-01T10:00:00"]]
    # not ISO 8601, or no such date or hour: rejected rather than guessed
    assert rejects["timestamp"].tolist() == texts[6:]
    assert set(rejects["reason"]) == {"unparseable timestamp"}


def test_verdict_is_logged_or_derived_from_the_version_threshold():
    raw = pd.DataFrame(GOOD)
    clean, rejects = logs.validate(raw, {"1.4.0": 0.5})
    assert rejects.empty
    assert clean["verdict"].tolist() == [1, 0, 1]  # logged 1; 0.20 < 0.5; 0.55 >= 0.5
    clean, _ = logs.validate(raw, {}, default_threshold=0.6)
    assert clean["verdict"].tolist() == [1, 0, 0]  # the fallback threshold applies
    assert clean["label"].isna().tolist() == [True, True, False]


def test_every_bad_row_is_rejected_with_its_reason():
    raw = pd.DataFrame([r for r, _ in BAD] + GOOD)
    clean, rejects = logs.validate(raw, {"1.4.0": 0.5})
    assert len(clean) == len(GOOD)
    assert len(rejects) == len(BAD)
    for (_, reason), got in zip(BAD, rejects["reason"]):
        assert reason in got
    assert rejects["score"].tolist()[2:4] == ["1.7", "high"]  # original values kept (as text) for tracing


def test_a_file_without_a_required_column_is_rejected_whole():
    raw = pd.DataFrame({"timestamp": ["2024-03-01"], "score": [0.3]})
    clean, rejects = logs.validate(raw, {"1.4.0": 0.5})
    assert clean.empty and rejects["reason"].tolist() == ["missing column 'model_version'"]


def test_directory_of_mixed_formats_and_broken_lines(tmp_path):
    logdir = tmp_path / "predictions"
    (logdir / "2024" / "03").mkdir(parents=True)
    pd.DataFrame(GOOD).to_csv(logdir / "2024" / "03" / "a.csv.gz", index=False)
    pd.DataFrame(GOOD).assign(timestamp=pd.to_datetime(
        ["2024-03-02T10:00:00Z"] * 3)).to_parquet(logdir / "2024" / "03" / "b.parquet")
    with gzip.open(logdir / "c.jsonl.gz", "wt") as fh:
        fh.write(json.dumps(GOOD[0]) + "\n")
        fh.write("{not json\n")
        fh.write(json.dumps(BAD[0][0]) + "\n")
    (logdir / "notes.txt").write_text("not a log")
    (logdir / ".hidden.csv").write_text("ignored")
    with open(logdir / "d.csv", "w") as fh:
        fh.write("timestamp,model_version,score\n2024-03-03T00:00:00Z,1.4.0,0.7\n"
                 "2024-03-03T00:00:01Z,1.4.0,0.7,surplus\n")

    log = logs.load(logdir, {"1.4.0": 0.5})
    assert len(log.files) == 4
    assert len(log.rows) == 3 + 3 + 1 + 1
    assert log.rows["timestamp"].is_monotonic_increasing
    assert str(log.rows["timestamp"].dt.tz) == "UTC"
    reasons = log.reject_reasons()
    assert reasons == {"unparseable JSON line": 1, "unparseable timestamp": 1,
                       "wrong number of CSV fields": 1}
    assert log.rows_read == len(log.rows) + 3
    broken = log.rejects[log.rejects["reason"] == "unparseable JSON line"].iloc[0]
    assert broken["row"] == 2 and broken["raw"] == "{not json"


def test_missing_log_and_unknown_format_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        logs.discover_files(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        logs.discover_files(tmp_path)  # a directory without log files
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(ValueError):
        logs.discover_files(tmp_path / "x.xlsx")


def test_versions_without_verdict_counts_the_rows_that_need_a_threshold(tmp_path):
    (tmp_path / "a.csv").write_text(
        "timestamp,model_version,score,verdict\n"
        "2024-01-01T00:00:00Z,1.0.0,0.2,\n"
        "2024-01-01T00:00:00Z, 1.0.0 ,0.9,\n"      # stripped like every version
        "2024-01-01T00:00:00Z,1.0.0,0.9,1\n"       # logged its verdict
        "2024-01-01T00:00:00Z,,0.9,\n"             # no version: rejected, needs nothing
        "2024-01-01T00:00:00Z,9.9.9,abc,\n"        # no valid score: rejected for it, needs no threshold
        "2024-01-01T00:00:00Z,2.0.0,0.9,0\n")
    (tmp_path / "b.jsonl").write_text(
        '{"timestamp": "2024-01-02T00:00:00Z", "model_version": "2.0.0", "score": 0.1}\n')
    needed = []

    def resolve(versions):
        needed.append(versions)
        return {"1.0.0": 0.5, "2.0.0": 0.05}

    log = logs.load(tmp_path, resolve=resolve)
    assert needed == [{"1.0.0": 2, "2.0.0": 1}]
    assert len(log.rows) == 5 and len(log.rejects) == 2
    assert "score missing or not a number" in " ".join(log.rejects["reason"])
    assert log.rows.sort_values(["model_version", "score"])["verdict"].tolist() == [0, 1, 1, 1, 0]


# -- issue 19: literal paths, strict CSV, caps on fields ------------------------------------------
def glob_named_logs(directory):
    """The issue's folder: ``a1.parquet`` (2 rows), ``a[1].parquet`` (3 rows), ``*.parquet`` (5 rows),
    each row's url naming its file; read as patterns, a1 is read twice, a[1] never, * re-reads all."""
    directory.mkdir()
    for name, n in (("a1", 2), ("a[1]", 3), ("*", 5)):
        pd.DataFrame({"timestamp": ["2024-03-01T10:00:00Z"] * n, "model_version": "1.4.0", "score": 0.5,
                      "verdict": 1, "url": [f"http://{name}.example/"] * n}).to_parquet(directory / f"{name}.parquet")
    return directory


def test_duckdb_reads_each_log_file_once_by_its_literal_name(tmp_path):
    log = logs.load(glob_named_logs(tmp_path / "logs"))
    assert log.rows_valid == 10 and log.rows_rejected == 0
    assert sorted(log.rows["url"].value_counts().items()) == [
        ("http://*.example/", 5), ("http://a1.example/", 2), ("http://a[1].example/", 3)]
    assert [name.rsplit("/", 1)[1] for name in log.files] == ["*.parquet", "a1.parquet", "a[1].parquet"]


def test_a_log_uri_with_glob_characters_is_refused():
    with pytest.raises(ValueError, match=r"s3a://bucket/logs/\*\.parquet: contains the glob character\(s\) \*, which "):
        logs.load("s3a://bucket/logs/*.parquet")


def test_a_stray_quote_costs_its_own_line_not_the_rest_of_the_log(tmp_path):
    """Issue 19, finding 4: one unbalanced quote on row 2 of 1,002 folded 1,000 rows into one field."""
    path = tmp_path / "log.csv"
    lines = [f"2024-03-01T10:00:00Z,1.4.0,0.{i % 10},1,http://u{i}.example/\n" for i in range(1002)]
    lines[1] = '2024-03-01T10:00:00Z,1.4.0,0.5,1,"http://stray.example/\n'
    path.write_text("timestamp,model_version,score,verdict,url\n" + "".join(lines))
    log = logs.load(path)
    assert (log.rows_valid, log.rows_rejected) == (1001, 1)
    reject = log.rejects.iloc[0]
    assert reject["row"] == 2  # data row 2: line 3 (the header is line 1)
    assert reject["reason"].startswith("unbalanced quote (field 5: a quote not closed on its line")
    assert log.reject_reasons() == {"unbalanced quote": 1}


def test_a_quoted_field_with_an_embedded_newline_is_two_rejected_lines(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text('timestamp,model_version,score,url\n2024-03-01T10:00:00Z,1.4.0,0.5,"http://a.example/\n'
                    'b",\n2024-03-01T10:00:00Z,1.4.0,0.5,"http://ok.example/?a=1,b=2"\n')
    log = logs.load(path, {"1.4.0": 0.5})
    assert log.rows["url"].tolist() == ["http://ok.example/?a=1,b=2"]  # a quoted comma is still fine
    assert log.rejects["row"].tolist() == [1, 2]
    assert log.reject_reasons() == {"stray quote": 1, "unbalanced quote": 1}


def test_an_oversized_field_and_a_bad_row_are_rejects_not_a_traceback(tmp_path):
    """Issue 19, finding 5: a 140 KB field plus one bad row raised `_csv.Error: field larger than field limit`."""
    path = tmp_path / "log.csv"
    path.write_text("timestamp,model_version,score,url\n"
                    f"2024-03-01T10:00:00Z,1.4.0,0.5,http://big.example/{'a' * 140_000}\n"
                    "2024-03-01T10:00:00Z,1.4.0,0.5\n"  # a field short: the old row loop then met the big field
                    "2024-03-01T10:00:00Z,1.4.0,0.5,http://ok.example/\n")
    log = logs.load(path, {"1.4.0": 0.5})
    assert log.rows["url"].tolist() == ["http://ok.example/"]
    assert log.rejects["row"].tolist() == [1, 2]
    assert log.rejects["reason"][1] == "wrong number of CSV fields"
    assert log.rejects["reason"][0] == ("field over the length cap (field 4: 140,019 characters, cap 65,536, "
                                        "params monitor.logs.max_field_chars)")
    assert len(log.rejects["raw"][0]) <= 2000  # the reject keeps a bounded prefix


def test_json_lines_over_the_field_cap_or_nested_too_deep_are_rejects(tmp_path):
    path = tmp_path / "log.jsonl"
    good = {"timestamp": "2024-03-01T10:00:00Z", "model_version": "1.4.0", "score": 0.5, "verdict": 1}
    path.write_text("\ufeff" + json.dumps(good) + "\n"                          # a byte-order mark opens the file
                    + json.dumps({**good, "url": "http://x/" + "a" * 70_000}) + "\n"
                    + "[" * 100_000 + "\n"                                   # deeper than Python recurses
                    + " \t\n"                                                # blank: not a record
                    + "\u3000\n"                                             # not JSON whitespace: a reject
                    + json.dumps(good) + "\n")
    log = logs.load(path)
    assert (log.rows_valid, log.rows_rejected) == (2, 3)
    assert log.rejects["row"].tolist() == [2, 3, 5]
    assert log.reject_reasons() == {"unparseable JSON line": 2, "field over the length cap": 1}
    assert "field 'url': 70,009 characters, cap 65,536" in log.rejects["reason"][0]


def test_the_field_cap_comes_from_params_and_applies_to_every_format(tmp_path):
    from pipeline.monitoring import config

    caps = config.from_mapping({"logs": {"max_field_chars": 20}}).log_caps()
    assert caps.max_field_chars == 20 and caps.field_param == "monitor.logs.max_field_chars"
    rows = pd.DataFrame({"timestamp": ["2024-03-01T10:00:00Z"] * 2, "model_version": "1.4.0", "score": 0.5,
                         "verdict": 1, "url": ["http://short/", "http://twenty-one-chars/"]})
    rows.to_csv(tmp_path / "a.csv", index=False)
    rows.to_parquet(tmp_path / "b.parquet")
    (tmp_path / "c.jsonl").write_text(rows.to_json(orient="records", lines=True))
    log = logs.load(tmp_path, caps=caps)
    assert log.rows_valid == 3 and log.rejects["row"].tolist() == [2, 2, 2]  # each file's second row
    assert log.reject_reasons() == {"field over the length cap": 3}
