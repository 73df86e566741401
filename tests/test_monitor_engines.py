"""The streaming monitor: the shared SQL on DuckDB (small logs), and Spark local giving the very same
outputs (slow: one JVM for the module).

The Spark test needs Java 17 (`make java`); without it the run fails, it is not skipped.
"""
from __future__ import annotations

import gzip
import json

import monitor_synthetic as ms
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from monitor_synthetic import run_cli, strict_json

from pipeline.monitoring import analysis, logs, stats, windows


@pytest.fixture(autouse=True)
def empty_fetch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHISHING_MODEL_CACHE", str(tmp_path / "fetch-cache"))


@pytest.fixture(scope="module", autouse=True)
def stop_spark_after_the_module():
    """The engine leaves its session to the process (runs share one JVM); stop it here, before the
    interpreter's exit tears py4j down under a closed log stream."""
    yield
    import sys

    if "pyspark" in sys.modules:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("monitor:\n  releases: []\n  window: 7D\n")
    return path


@pytest.mark.parametrize("window", ["6h", "1D", "7D", "2W", "1M", "3M"])
def test_sql_windows_match_the_calendar(window):
    """Window starts from integer microseconds in SQL equal pandas' calendar arithmetic."""
    rng = np.random.default_rng(1)
    seconds = rng.uniform(-3e8, 2.5e9, 3000)  # 1960 to 2049, both sides of the epoch
    ts = pd.Series(pd.to_datetime(seconds, unit="s", utc=True).floor("us"))
    rows = pd.DataFrame({"timestamp": ts, "model_version": "1.0.0", "score": 0.5, "verdict": 0, "label": np.nan})
    spec = windows.parse_window(window)
    agg = logs.aggregate_rows(rows, spec)
    got = agg.groupby("window_us")["n"].sum()
    want = spec.floor(ts).value_counts()
    want.index = [int(t.value // 1000) for t in want.index]
    assert got.sort_index().to_dict() == want.sort_index().to_dict()


def test_cells_count_scores_in_four_decimal_bins():
    rows = ms.synthetic_log(4, windows=2, rows_per_window=500)
    rows.loc[:3, "score"] = [0.12345, 0.99995, 0.0, 1.0]  # half-way cases round up, as ROUND does
    cells = analysis.split_cells(rows, windows.parse_window("7D"))
    bins = np.floor(rows["score"].to_numpy() * 10_000 + 0.5).astype(int)
    assert np.array_equal(sum(c.hist for c in cells), np.bincount(bins, minlength=stats.GRID.size))
    assert [c.flagged for c in cells] == [int(rows["verdict"][:500].sum()), int(rows["verdict"][500:].sum())]
    assert cells[0].hist[1235] >= 1 and cells[0].hist[10_000] >= 1


def test_typed_parquet_and_text_logs_give_the_same_counts(tmp_path):
    rows = ms.synthetic_log(5, windows=3, rows_per_window=300)
    ms.to_csv_log(rows, tmp_path / "log.csv")
    typed = rows.assign(timestamp=rows["timestamp"].dt.floor("s"))  # the CSV holds whole seconds
    pq.write_table(pa.Table.from_pandas(typed, preserve_index=False), tmp_path / "log.parquet",
                   coerce_timestamps="us", allow_truncated_timestamps=True)
    spec = windows.parse_window("1D")
    text = logs.load(tmp_path / "log.csv", window=spec, with_rows=False)
    parquet = logs.load(tmp_path / "log.parquet", window=spec, with_rows=False)
    key = ["window_us", "version", "bin", "verdict"]
    assert text.aggregates.sort_values(key)["n"].tolist() == parquet.aggregates.sort_values(key)["n"].tolist()
    assert (text.first_us, text.last_us) == (parquet.first_us, parquet.last_us)
    assert text.rows_valid == parquet.rows_valid == len(rows)


def test_rejects_are_all_counted_and_the_file_is_capped(tmp_path, params):
    rows = ms.synthetic_log(6, windows=4, rows_per_window=600)
    log = ms.to_csv_log(rows, tmp_path / "log.csv")
    with open(log, "a") as fh:
        fh.writelines(f"2024-01-03T00:00:{i:02d}Z,1.0.0,{1.5 + i},0,\n" for i in range(30))  # score outside [0,1]
        fh.writelines(f"2024-01-03T00:00:{i:02d}Z,1.0.0,0.5,0,,extra\n" for i in range(20))  # wrong number of fields
    out = tmp_path / "out"
    assert run_cli("monitor", "--log", log, "--out", out, "--params", params, "--max-rejects", "25") == 0
    result = strict_json(out / "monitor.json")["input"]
    assert result["rows_rejected"] == 50 and result["rows_valid"] == len(rows)
    assert result["rejects_by_reason"] == {"score outside [0,1]": 30, "wrong number of CSV fields": 20}
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    assert len(rejects) == 25 == result["rejects_written"]
    assert rejects["row"].astype(int).tolist() == list(range(len(rows) + 1, len(rows) + 26))  # file order
    report = (out / "report.md").read_text()
    assert "holds the first 25 of the 50 rejected rows (capped)" in report


def test_hostile_text_in_a_version_cannot_reach_the_sql(tmp_path):
    """Versions are data, never SQL text: thresholds are a registered table, not literals."""
    version = "1.0'); DROP TABLE thresholds; --"
    (tmp_path / "a.csv").write_text("timestamp,model_version,score\n"
                                    f"2024-01-01T00:00:00Z,\"{version}\",0.7\n2024-01-01T00:00:00Z,\"{version}\",0.2\n")
    log = logs.load(tmp_path / "a.csv", {version: 0.5})
    assert log.rows["model_version"].tolist() == [version, version]
    assert log.rows["verdict"].tolist() == [1, 0]


# -- Spark ------------------------------------------------------------------------------------------
def mixed_log(directory):
    """CSV (gzipped), JSON Lines and typed Parquet, with bad rows of every kind, two versions."""
    directory.mkdir()
    a = ms.synthetic_log(11, windows=8, rows_per_window=700, version="1.0.0")
    b = ms.synthetic_log(12, windows=4, rows_per_window=700, version="1.1.0", ratio=0.16,
                         start=ms.START + pd.Timedelta(days=28))
    text = ms.to_csv_log(a.iloc[:2000], directory / "a.csv").read_bytes()
    text += (b"not-a-time,1.0.0,0.5,0,\n2024-01-03T00:00:00Z,,0.5,0,\n2024-01-03T00:00:00Z,1.0.0,-0.2,0,\n"
             b"2024-01-03T00:00:00Z,1.0.0,0.5,0,,one-too-many\n2024-01-03T00:00:00+05:30,1.0.0,0.5,1,1\n"
             b"2024-01-03T10:00:00.123Z,1.0.0,abc,1,maybe\n2024-01-04,9.9.9,0.3,,\n")
    (directory / "a.csv.gz").write_bytes(gzip.compress(text))
    (directory / "a.csv").unlink()
    lines = [json.dumps({"timestamp": t.isoformat(), "model_version": "1.0.0", "score": float(s), "verdict": int(v)})
             for t, s, v in zip(a["timestamp"].iloc[2000:], a["score"].iloc[2000:], a["verdict"].iloc[2000:])]
    lines[10:10] = ["{broken json", json.dumps({"timestamp": "2024-02-01T00:00:00Z", "model_version": "1.0.0",
                                                 "score": 0.4, "verdict": "yes", "label": 1})]
    (directory / "b.jsonl").write_text("\n".join(lines) + "\n")
    typed = b.assign(timestamp=b["timestamp"].dt.floor("us"), verdict=b["verdict"].astype("int64"))
    typed.loc[5, "verdict"] = 7
    typed.loc[6, "score"] = np.nan
    pq.write_table(pa.Table.from_pandas(typed.drop(columns="label"), preserve_index=False), directory / "c.parquet",
                   coerce_timestamps="us", allow_truncated_timestamps=True)
    return directory


@pytest.mark.slow
def test_spark_local_and_duckdb_write_identical_outputs(tmp_path, params):
    logdir = mixed_log(tmp_path / "logs")
    for window in ("7D", "1D", "1M"):
        outs = {}
        for engine in ("duckdb", "spark"):
            outs[engine] = tmp_path / f"out-{engine}-{window}"
            rc = run_cli("monitor", "--log", logdir, "--out", outs[engine], "--params", params, "--window", window,
                         "--threshold", "0.5", "--engine", engine, "--master", "local[2]")
            assert rc in (0, 3), f"{engine} failed (exit {rc}): Spark needs Java 17 (`make java`)"
        for name in ("monitor.json", "rejects.csv"):
            assert (outs["duckdb"] / name).read_bytes() == (outs["spark"] / name).read_bytes(), (window, name)
    result = strict_json(outs["spark"] / "monitor.json")
    assert result["input"]["rows_rejected"] == 8 and len(result["input"]["files"]) == 3
    assert result["model_versions"] == ["1.0.0", "1.1.0", "9.9.9"]
    assert result["input"]["rejects_by_reason"] == {  # the "abc" row has two reasons
        "score missing or not a number": 2, "label not 0/1": 1, "missing model_version": 1,
        "score outside [0,1]": 1, "unparseable JSON line": 1, "unparseable timestamp": 1, "verdict not 0/1": 1,
        "wrong number of CSV fields": 1}
    assert result["input"]["thresholds"]["9.9.9"]["source"] == "--threshold"


@pytest.mark.slow
def test_spark_reads_each_log_file_once_by_its_literal_name(tmp_path):
    """Issue 19, finding 3: Hadoop expanded `a[1].parquet` to `a1.parquet` and `*.parquet` to the folder."""
    from test_monitor_logs import glob_named_logs

    engine = logs.open_engine("spark")
    log = logs.load(glob_named_logs(tmp_path / "logs[x]"), engine=engine)
    assert log.rows_valid == 10 and log.rows_rejected == 0
    assert sorted(log.rows["url"].value_counts().items()) == [
        ("http://*.example/", 5), ("http://a1.example/", 2), ("http://a[1].example/", 3)]
    with pytest.raises(ValueError, match=r"contains the glob character\(s\) \* \[ \]"):
        logs.load(f"file://{tmp_path}/logs[x]/*.parquet", engine=engine)
