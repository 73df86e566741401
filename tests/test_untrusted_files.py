"""Hostile files in, a verdict out: invalid UTF-8 in every log format becomes a reject row, and
decompression and row caps stop logs and ingest batches (issue 10, item 4)."""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from monitor_synthetic import run_cli

from pipeline import paths
from pipeline.bounded_io import Caps, LimitExceeded, check_capped, read_capped
from pipeline.commands import ingest as ingest_command
from pipeline.common import PipelineError
from pipeline.monitoring import config, logs

REPO = Path(__file__).resolve().parents[1]
HEADER = b"timestamp,model_version,score,verdict,url\n"
BAD_URL = b"http://pay\xffpal.example/login"  # 0xff can never occur in UTF-8
BAD_ESCAPED = "http://pay\\xffpal.example/login"


def good_line(i: int) -> bytes:
    return f"2024-03-01T10:{i:02d}:00Z,1.4.0,0.{i % 10},{i % 2},http://ok{i}.example/\n".encode()


def csv_bytes(rows: int = 6, bad_row: int = 3) -> bytes:
    lines = [good_line(i) for i in range(rows)]
    lines[bad_row - 1] = b"2024-03-01T11:00:00Z,1.4.0,0.9,1," + BAD_URL + b"\n"
    return HEADER + b"".join(lines)


def write_log(path: Path, fmt: str) -> Path:
    """A real log file of ``fmt`` with 6 rows, row 3 carrying the byte 0xff in its url."""
    data = csv_bytes()
    if fmt == "csv":
        path.write_bytes(data)
    elif fmt == "csv.gz":
        path.write_bytes(gzip.compress(data))
    elif fmt == "jsonl":
        lines = []
        for i in range(6):
            url = BAD_URL if i == 2 else f"http://ok{i}.example/".encode()
            lines.append(b'{"timestamp": "2024-03-01T10:%02d:00Z", "model_version": "1.4.0", "score": 0.5, '
                         b'"verdict": 1, "url": "%s"}\n' % (i, url))
        path.write_bytes(b"".join(lines))
    elif fmt == "parquet":
        urls = [BAD_URL if i == 2 else f"http://ok{i}.example/".encode() for i in range(6)]
        offsets = [0]
        for url in urls:
            offsets.append(offsets[-1] + len(url))
        # A string column whose bytes are not UTF-8: pyarrow writes it unchecked, as a foreign writer might.
        column = pa.Array.from_buffers(pa.string(), 6, [None, pa.array(offsets, pa.int32()).buffers()[1],
                                                         pa.py_buffer(b"".join(urls))])
        pq.write_table(pa.table({"timestamp": [f"2024-03-01T10:{i:02d}:00Z" for i in range(6)],
                                 "model_version": ["1.4.0"] * 6, "score": [0.5] * 6, "verdict": [1] * 6,
                                 "url": column}), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "jsonl", "parquet"])
def test_an_invalid_byte_rejects_its_row_with_the_reason_and_the_rest_is_read(tmp_path, fmt):
    path = write_log(tmp_path / f"log.{fmt}", fmt)
    if fmt == "parquet":  # the file really is poison for a plain reader (as soon as the values are used)
        with pytest.raises((UnicodeError, pa.ArrowException)):
            pd.read_parquet(path)["url"].tolist()
    log = logs.load(path)
    assert len(log.rows) == 5
    assert len(log.rejects) == 1
    reject = log.rejects.iloc[0]
    assert reject["source"] == str(path)
    assert reject["row"] == 3
    assert reject["reason"] == "invalid UTF-8 (field 'url', byte offset 10)"
    assert reject["url"] == BAD_ESCAPED
    assert BAD_ESCAPED in reject["raw"]
    assert log.reject_reasons() == {"invalid UTF-8": 1}


def test_an_invalid_byte_in_a_header_name_costs_that_column_not_the_run(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"timestamp,model_version,sc\xffore\n2024-03-01T10:00:00Z,1.4.0,0.5\n")
    log = logs.load(path, {"1.4.0": 0.5})
    assert log.rows.empty
    assert log.rejects["reason"].tolist() == ["missing column 'score'"]
    assert log.rejects.columns.tolist() == logs.REJECT_COLUMNS  # the known columns only (the damaged name is not one)


def test_monitor_runs_on_with_the_bad_row_in_rejects_csv(tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    write_log(logdir / "a.csv", "csv")
    write_log(logdir / "b.jsonl", "jsonl")
    params = tmp_path / "params.yaml"
    params.write_text("monitor:\n  releases: []\n  window: 7D\n")
    out = tmp_path / "out"
    assert run_cli("monitor", "--log", logdir, "--out", out, "--params", params) == 0
    rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
    assert sorted(rejects["row"]) == ["3", "3"]
    assert set(rejects["url"]) == {BAD_ESCAPED}
    assert set(rejects["reason"]) == {"invalid UTF-8 (field 'url', byte offset 10)"}
    result = json.loads((out / "monitor.json").read_text())
    assert result["input"]["rows_valid"] == 10 and result["input"]["rows_rejected"] == 2


# -- caps ---------------------------------------------------------------------------------------
def gzip_bomb(path: Path, megabytes: int = 100) -> Path:
    """A .csv.gz of a few hundred KB that expands to ``megabytes`` MB."""
    line = b"http://bomb.example/" + b"a" * 77 + b",1\n"  # 100 bytes
    block = line * 10_000
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"url,label\n")
        for _ in range(megabytes):
            fh.write(block)
    return path


def test_a_gzip_bomb_stops_at_the_cap_while_streaming(tmp_path):
    bomb = gzip_bomb(tmp_path / "bomb.csv.gz")
    assert bomb.stat().st_size < 400_000
    caps = Caps(8 * 1024 * 1024, 10 ** 9, "ingest.max_decompressed_bytes", "ingest.max_rows")
    with pytest.raises(LimitExceeded) as info:
        check_capped(bomb, caps, header_lines=1)
    message = str(info.value)
    assert message.startswith(f"{bomb}: more than 8,388,608 bytes after decompression")
    assert "raise ingest.max_decompressed_bytes" in message
    read = int(message.split("read ")[1].split(" bytes")[0].replace(",", ""))
    assert 8 * 1024 * 1024 < read <= 8 * 1024 * 1024 + (1 << 16)  # stopped within one chunk of the cap


def test_the_row_cap_names_the_param_and_what_was_read(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(HEADER + b"".join(good_line(i) for i in range(50)))
    caps = Caps(10 ** 9, 20, "monitor.logs.max_decompressed_bytes", "monitor.logs.max_rows")
    with pytest.raises(LimitExceeded, match=r"log\.csv: more than 20 rows \(cap params monitor\.logs\.max_rows; "
                                            r"read 50 rows"):
        logs.load(path, caps=caps)
    assert read_capped(path, Caps(10 ** 9, 50, "b", "r"), header_lines=1).count(b"\n") == 51


def test_caps_must_be_positive_integers():
    with pytest.raises(PipelineError, match="monitor.logs.max_rows: expected a positive integer, got 0"):
        config.from_mapping({"logs": {"max_rows": 0}}).log_caps()


def monitor_with_log_caps(tmp_path, log, cap_line: str) -> int:
    """`monitor` on ``log`` with one ``monitor.logs`` cap set (e.g. ``max_rows: 4``); its exit code."""
    params = tmp_path / "params.yaml"
    params.write_text(f"monitor:\n  releases: []\n  logs:\n    {cap_line}\n")
    return run_cli("monitor", "--log", log, "--out", tmp_path / "out", "--params", params)


@pytest.mark.parametrize("fmt", ["csv.gz", "jsonl", "parquet"])
def test_monitor_refuses_a_log_over_its_caps_with_exit_1(tmp_path, capsys, fmt):
    path = write_log(tmp_path / f"log.{fmt}", fmt)
    assert monitor_with_log_caps(tmp_path, path, "max_rows: 4") == 1
    err = capsys.readouterr().err
    assert str(path) in err and "monitor.logs.max_rows" in err and "4" in err


@pytest.mark.parametrize("fmt", ["csv.gz", "jsonl"])
def test_monitor_stops_at_the_decompressed_byte_cap(tmp_path, capsys, fmt):
    path = write_log(tmp_path / f"log.{fmt}", fmt)
    assert monitor_with_log_caps(tmp_path, path, "max_decompressed_bytes: 200") == 1
    err = capsys.readouterr().err
    assert f"{path}: more than 200 bytes after decompression (cap params monitor.logs.max_decompressed_bytes" in err
    assert not (tmp_path / "out" / "monitor.json").exists()


def test_the_monitor_caps_come_from_params_yaml():
    params = config.load(REPO / paths.PARAMS)
    caps = params.log_caps()
    assert (caps.max_bytes, caps.max_rows) == (1 << 30, 10_000_000)
    assert yaml.safe_load((REPO / paths.PARAMS).read_text())["monitor"]["logs"]["max_rows"] == caps.max_rows


def test_ingest_refuses_a_gzip_bomb_batch_before_writing_anything(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    caps = yaml.safe_load((REPO / paths.PARAMS).read_text())["ingest"]  # the shipped caps: 64 MiB
    (root / "params.yaml").write_text(yaml.safe_dump({
        "data": {"sources": [], "max_url_length": 2048,
                 "out_of_source": {"name": "phishtank", "files": ["data/raw/none.csv.gz"]}},
        "ingest": {"max_decompressed_bytes": caps["max_decompressed_bytes"], "max_rows": caps["max_rows"]}}))
    bomb = gzip_bomb(tmp_path / "feed.csv.gz")
    args = argparse.Namespace(root=str(root), source="feed", feed=None, file=str(bomb), date_column=None, observed_on=None)
    with pytest.raises(LimitExceeded, match=r"feed\.csv\.gz: more than 67,108,864 bytes after decompression "
                                            r"\(cap params ingest\.max_decompressed_bytes"):
        ingest_command.run(args)
    assert not (root / "data").exists()


def test_ingest_caps_read_a_gzipped_batch_even_without_the_suffix(tmp_path):
    batch = tmp_path / "feed.csv"
    batch.write_bytes(gzip.compress(b"url,label\nhttp://a.example/,1\nhttp://b.example/,0\n"))
    caps = Caps(1000, 1, "ingest.max_decompressed_bytes", "ingest.max_rows")
    with pytest.raises(LimitExceeded, match="more than 1 rows"):
        check_capped(batch, caps, header_lines=1, sniff_gzip=True)


def test_a_gzipped_batch_without_the_suffix_is_parsed_in_the_same_capped_pass(tmp_path):
    batch = tmp_path / "feed.csv"
    batch.write_bytes(gzip.compress(b"url,label\nhttp://a.example/,1\nhttp://b.example/,0\n"))
    caps = Caps(1000, 10, "ingest.max_decompressed_bytes", "ingest.max_rows")
    frame = ingest_command.read_raw_capped(batch, caps, "feed")
    assert frame["url"].tolist() == ["http://a.example/", "http://b.example/"] and frame["line"].tolist() == [2, 3]


def parquet_bomb(path: Path, rows: int = 20_000, width: int = 500) -> Path:
    """A Parquet log of a few KB whose pages expand to ``rows * width`` bytes (no dictionary, zstd)."""
    table = pa.table({"timestamp": ["2024-03-01T10:00:00Z"] * rows, "model_version": ["1.4.0"] * rows,
                      "score": [0.5] * rows, "verdict": [1] * rows, "url": ["http://b.example/" + "a" * width] * rows})
    pq.write_table(table, path, use_dictionary=False, compression="zstd", compression_level=19)
    return path


def test_a_parquet_bomb_is_refused_from_its_metadata_before_reading(tmp_path, capsys, monkeypatch):
    """Issue 19, finding 6: only the on-disk size was checked; the footer says what the pages expand to."""
    bomb = parquet_bomb(tmp_path / "bomb.parquet")
    on_disk = bomb.stat().st_size
    meta = pq.ParquetFile(bomb).metadata
    expanded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    assert on_disk < 100_000 and expanded > 10_000_000  # 1 : 100 and more
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", None)  # nothing may read the data
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", None)
    assert monitor_with_log_caps(tmp_path, bomb, "max_decompressed_bytes: 1000000") == 1
    err = capsys.readouterr().err
    assert (f"{bomb}: {expanded:,} bytes uncompressed (from its Parquet metadata) is over the cap of 1,000,000 "
            "(params monitor.logs.max_decompressed_bytes; nothing read yet)") in err
    assert not (tmp_path / "out" / "monitor.json").exists()
    monkeypatch.undo()
    assert logs.load(bomb, caps=Caps(expanded, 10 ** 6, "b", "r")).rows_valid == 20_000  # at the cap: read


def test_a_dictionary_encoded_parquet_bomb_is_refused_by_its_decoded_text_size(tmp_path, capsys):
    """A dictionary-encoded column's footer counts its one distinct value and the indices, not the
    200,000 copies of 500 characters it decodes to: the decoded size is summed from the indices."""
    rows, url = 200_000, "http://b.example/" + "a" * 483
    column = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), [url])
    table = pa.table({"timestamp": pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()),
                                                                  ["2024-03-01T10:00:00Z"]),
                      "model_version": pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), ["1.4.0"]),
                      "score": pa.array([0.5] * rows), "verdict": pa.array([1] * rows), "url": column})
    bomb = tmp_path / "dict-bomb.parquet"
    pq.write_table(table, bomb, compression="zstd")
    meta = pq.ParquetFile(bomb).metadata
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) < 5_000_000  # footer: small
    assert monitor_with_log_caps(tmp_path, bomb, "max_decompressed_bytes: 20000000") == 1
    err = capsys.readouterr().err
    assert (f"{bomb}: 105,000,000 bytes of text once decoded (its dictionary-encoded columns expanded) is over the "
            "cap of 20,000,000 (params monitor.logs.max_decompressed_bytes; only its text columns read") in err


def test_a_parquet_file_staged_for_its_bad_bytes_stops_at_the_byte_cap_while_decoding(tmp_path):
    from pipeline.monitoring import staging

    rows = 50_000
    urls = [b"http://\xff/"] + [b"http://ok.example/"] * (rows - 1)  # one invalid byte: the file is staged
    offsets = [0]
    for url in urls:
        offsets.append(offsets[-1] + len(url))
    url = pa.Array.from_buffers(pa.string(), rows, [None, pa.array(offsets, pa.int32()).buffers()[1],
                                                    pa.py_buffer(b"".join(urls))])
    stamp = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), ["2024-03-01T10:00:00Z" + " " * 480])
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"timestamp": stamp, "model_version": ["1.4.0"] * rows, "score": [0.5] * rows,
                             "url": url}), path)
    caps = Caps(5_000_000, 10 ** 6, "monitor.logs.max_decompressed_bytes", "monitor.logs.max_rows")
    with pytest.raises(LimitExceeded, match=r"log\.parquet: [\d,]+ bytes or more once decoded is over the cap of "
                                            r"5,000,000 \(params monitor\.logs\.max_decompressed_bytes; stopped at row "):
        staging.stage_parquet(path, caps, 0, tmp_path / "staged.parquet")
