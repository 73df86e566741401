"""Feed definitions: a publisher's file, as shipped, through `ingest --feed` (JPCERT/CC's monthly list)."""
from __future__ import annotations

import csv
import gzip
import io
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, SAMPLES, sample_project, sh

from pipeline.common import PipelineError, load_params
from pipeline.training.feeds import convert, feed_definition, iso_date
from pipeline.training.ingest import batch_repeats
from pipeline.training.splitting import future_split_start, future_start
from pipeline.training.validation import parse_first_seen, parse_raw_csv, row_problem

FEED_SAMPLE = SAMPLES / "jpcert_feed_202310.csv"  # 20 rows of 2023/10 as published + 7 hand-picked ones


@pytest.fixture(scope="module")
def jpcert():
    return feed_definition(load_params(REPO / "params.yaml"), "jpcert")


@pytest.fixture(scope="module")
def converted(jpcert):
    return convert(FEED_SAMPLE.read_text(encoding="utf-8"), jpcert, FEED_SAMPLE.name)


def _rows(conversion) -> list[dict]:
    return list(csv.DictReader(io.StringIO(conversion.csv_text)))


def test_the_jpcert_definition_lives_in_params_and_names_everything_the_publisher_leaves_out(jpcert):
    assert jpcert.source == "jpcert" and jpcert.label == 1 and jpcert.timezone == "Asia/Tokyo"
    assert jpcert.columns == {"url": "URL", "date": "date", "brand": "description"}
    source = next(s for s in load_params(REPO / "params.yaml")["data"]["sources"] if s["name"] == "jpcert")
    assert source["date_column"] == "date"  # the column the definition fills


def test_a_jst_date_becomes_an_iso_timestamp_with_its_offset_and_prepare_reads_its_utc_day(jpcert):
    assert iso_date("2023/01/04 13:39:00", jpcert) == "2023-01-04T13:39:00+09:00"
    assert parse_first_seen(iso_date("2023/10/01 05:00:00", jpcert)) == "2023-09-30"  # 20:00 UTC the day before
    assert iso_date(" ", jpcert) == ""
    assert iso_date("05/10/2023", jpcert) == "05/10/2023"  # kept as written: prepare says why it is bad


def test_conversion_keeps_every_row_and_says_which_lines_need_a_look(converted):
    rows = _rows(converted)
    assert converted.rows == 27 and len(rows) == 27  # nothing dropped, the repeat included
    assert converted.undated == [23, 24] and converted.malformed == [26] and converted.unparsed_dates == [27]
    assert list(rows[0]) == ["url", "date", "brand", "label"]
    assert {r["label"] for r in rows if r["date"] != "2023/10/31 20:30:00"} >= {"1"}
    quoted = next(r for r in rows if "url-shield" in (r["url"] or ""))
    assert quoted["url"].endswith("?vc=example@example") and "ms=0.5,0.0,0.0,0.5" in quoted["url"]
    assert quoted["date"] == "2023-10-04T17:29:00+09:00" and quoted["brand"] == "ぷらら"


def test_prepare_quarantines_exactly_the_rows_the_conversion_flagged_and_reads_the_rest(converted):
    batch = parse_raw_csv(io.BytesIO(converted.csv_text.encode()), FEED_SAMPLE, "jpcert", "date")
    reasons = {int(line): row_problem(url, label, bad, 2048, day)
               for line, url, label, bad, day in zip(batch["line"], batch["url"], batch["label"],
                                                     batch["malformed"], batch["first_seen"])}
    problems = {line: reason for line, reason in reasons.items() if reason}
    assert set(problems) == {26, 27}
    assert problems[26].startswith("malformed row: expected 4 fields, got 5")
    assert problems[27].startswith("bad date: expected an ISO 8601 date") and "05/10/2023" in problems[27]
    assert parse_first_seen(batch.loc[batch["line"] == 23, "first_seen"].item()) == ""  # blank: undated, kept


def test_repeats_within_a_batch_are_counted_with_the_line_they_repeat(converted):
    batch = parse_raw_csv(io.BytesIO(converted.csv_text.encode()), FEED_SAMPLE, "jpcert", "date")
    repeats = batch_repeats(batch)
    assert repeats[["line", "first_line"]].values.tolist() == [[25, 2]]
    assert repeats["url"].item() == "https://saisoncard.obaolu.net"


@pytest.mark.parametrize("change, message", [
    (lambda e: e.update(timezone="Mars/Olympus"), "not an IANA time zone"),
    (lambda e: e["columns"].update(label="kind"), "not 'label'"),
    (lambda e: e["columns"].pop("url"), r"missing \['url'\]"),
    (lambda e: e.update(label=2), "expected 0 .legitimate. or 1"),
    (lambda e: e.pop("date_format"), "expected source, columns"),
])
def test_a_broken_feed_definition_is_refused_with_the_field_named(change, message):
    params = load_params(REPO / "params.yaml")
    entry = params["ingest"]["feeds"]["jpcert"]
    entry["columns"] = dict(entry["columns"])
    change(entry)
    with pytest.raises(PipelineError, match=message):
        feed_definition(params, "jpcert")


def test_an_unknown_feed_or_a_file_of_another_shape_is_refused_by_name(jpcert):
    with pytest.raises(PipelineError, match=r"--feed 'phishtank': params.yaml ingest.feeds defines \['jpcert'\]"):
        feed_definition(load_params(REPO / "params.yaml"), "phishtank")
    with pytest.raises(PipelineError, match=r"feed.csv: header \['url', 'label'\] lacks \['URL', 'date', 'description'\]"):
        convert("url,label\nhttp://a.example/,1\n", jpcert, "feed.csv")


def test_the_future_window_follows_the_newest_phishing_month():
    labels = np.array([1, 1, 0, 1, 0])
    seen = np.array(["2022-11-03", "2023-02-27", "2026-05-01", "", "2023-01-15"], dtype=object)
    assert future_start(labels, seen, 3) == "2022-12-01"  # Citizen Lab's 2026 legitimate rows do not move it
    assert future_start(labels, seen, 1) == "2023-02-01"
    assert future_start(labels, seen, None) is None and future_start(labels[:0], seen[:0], 3) is None
    future = pd.DataFrame({"first_seen": ["2023-01-15", "", "2022-12-09"]})
    assert future_split_start(future) == "2022-12-01"


def ingest(root, *args):
    return sh(sys.executable, "-m", "pipeline", "ingest", *args, cwd=root, check=False)


@pytest.mark.slow
def test_ingest_feed_writes_the_publishers_month_as_a_registered_shard(tmp_path):
    root = sample_project(tmp_path / "project", repro=False)
    both = ingest(root, "--feed", "jpcert", "--source", "jpcert", str(FEED_SAMPLE))
    assert both.returncode != 0 and "exactly one of --feed NAME" in both.stderr
    result = ingest(root, "--feed", "jpcert", str(FEED_SAMPLE))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "27 publisher rows converted with params.yaml ingest.feeds.jpcert" in out
    assert "blank date (kept undated): 2 rows, publisher lines 23, 24" in out
    assert "repeats of an earlier row of this batch: 1 rows" in out and "line 25 repeats line 2" in out
    assert "rows with problems (prepare will quarantine them with this reason): 2" in out
    shard = root / "data/raw/jpcert/2023-10.csv.gz"
    text = gzip.decompress(shard.read_bytes()).decode()
    assert text.splitlines()[0] == "url,date,brand,label" and text.count("\n") == 28
    jpcert = next(s for s in yaml.safe_load((root / "params.yaml").read_text())["data"]["sources"]
                  if s["name"] == "jpcert")
    assert jpcert["files"][-1] == "data/raw/jpcert/2023-10.csv.gz" and jpcert["date_column"] == "date"
    sh("dvc", "repro", "prepare", cwd=root)
    quarantine = pd.read_csv(root / "data/prepared/quarantine.csv", dtype=str, keep_default_na=False)
    mine = quarantine[quarantine["file"] == "2023-10.csv.gz"]
    assert sorted(mine["reason"].str.split(":").str[0]) == ["bad date", "duplicate", "malformed row"]


def test_a_stray_quote_in_a_publishers_file_costs_its_own_line_and_prepare_gives_the_same_reason(jpcert):
    rows = "".join(f"2023/10/02 10:42:00,https://u{i}.example/,BRAND\n" for i in range(1000))
    text = ('date,URL,description\n2023/10/01 09:00:00,"https://stray.example/,BRAND\n' + rows
            + '2023/10/03 10:00:00,https://big.example/' + "x" * 70_000 + ",BRAND\n")
    conversion = convert(text, jpcert, "feed.csv")
    assert conversion.rows == 1002 and conversion.malformed == [2, 1003]
    lines = conversion.csv_text.split("\n")
    assert len(lines) == 1004 and lines[1] == '2023/10/01 09:00:00,"https://stray.example/,BRAND'  # as written
    batch = parse_raw_csv(io.BytesIO(conversion.csv_text.encode()), FEED_SAMPLE, "jpcert", "date")
    assert len(batch) == 1002
    problems = {int(n): row_problem(u, lab, bad, 2048, day) for n, u, lab, bad, day in zip(
        batch["line"], batch["url"], batch["label"], batch["malformed"], batch["first_seen"])}
    assert {n for n, reason in problems.items() if reason} == {2, 1003}
    assert problems[2].startswith("malformed row: unbalanced quote: field 2")
    assert problems[1003] == "malformed row: field 2 is 70,020 characters, over the cap of 65,536"
    assert batch.loc[batch["line"] == 3, "url"].item() == "https://u0.example/"


def test_a_publishers_byte_order_mark_or_broken_header_is_named(jpcert):
    assert convert("\ufeffdate,URL,description\n2023/10/01 09:00:00,https://a.example/,X\n", jpcert, "f").rows == 1
    with pytest.raises(PipelineError, match=r"f\.csv: line 1 \(the header\) cannot be read: stray quote"):
        convert('date,U"RL,description\n', jpcert, "f.csv")
