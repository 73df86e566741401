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
