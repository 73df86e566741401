"""Hostile input through ``ingest`` (issue 19, item 9): ``--source NAME FILE`` and ``--feed jpcert FILE``.

The property: no traceback; every physical line after the header is one batch row, numbered as the file
is, and is either usable or listed with a reason (the reason ``prepare`` quarantines it with); the
shard holds every line, and ``prepare`` reading the shard accounts for every row (clean + quarantined
== rows). A clean line comes out with exactly its URL, so no stray quote swallowed it.

Hypothesis drives the pure path (read, check, date, convert, re-read, validate) with many small
batches; two big seeded files (10,000+ rows each) go through the real command in a sample project.
"""
from __future__ import annotations

import datetime as dt
import gzip
import io
import random
import re
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, sample_project, sh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.common import load_params
from pipeline.training.dataset import reason_kind
from pipeline.training.feeds import convert, feed_definition
from pipeline.training.ingest import add_date_column, check_batch
from pipeline.training.validation import parse_raw_csv, validate

TODAY = dt.date(2099, 12, 31)  # "after today" is ingest's own check; every other reason is prepare's
ROWS = 10_000
SEED = 19
BIG = "http://big.example/" + "x" * 70_000  # over strict_csv's 65,536-character field cap

PIECES = [b"http://a.example/login", b"https://xn--pple-43d.com/", b"=HYPERLINK(\"x\")", b"+1+cmd|' /C calc'!A0",
          b"-2+3", b"@SUM(1)", "\u202egnp.tk".encode(), "\u2066".encode(), "\u200b".encode(), b"\xef\xbb\xbf",
          b"\x00", b"\x1b[2K", b"\x7f", "\u2028".encode(), "\x85".encode(), b"\t", b" ", b"", b"\xff", b"\xfe",
          b"\xc3", b"\xed\xa0\x80", b"\x80", b'"', b'""', b'x"y', b",", b",,", b"&amp;", b"&#8203;",
          b"1", b"0", b"yes", b"2023-01-05", b"2023/01/05 10:00:00", b"31/12/2023", b"1969-07-20", b"2200-01-01",
          b"\n", b"\r", b"\r\n"]
LINE_END = re.compile(rb"\r\n|\r|\n")
REPOSITORY = parse_raw_csv(io.BytesIO(b"url,label\nhttp://a.example/login,0\nhttp://clean1.example/p?q=1,0\n"
                                      b"http://x.example/\xff,1\n"), Path("repo.csv"), "repo")


def physical_lines(data: bytes) -> int:
    """Lines as a person counts them (\\n, \\r\\n or a lone \\r ends one), independently of the reader."""
    return len(LINE_END.findall(data)) + (0 if not data or LINE_END.search(data[-1:]) else 1)


def hostile_row(rng: random.Random, i: int, width: int, clean_url: bool) -> tuple[bytes, str | None]:
    """One row of ``width`` fields (or not): clean, properly quoted, or built from hostile pieces."""
    if clean_url:
        url = f"http://clean{i}.example/p?q={i}"
        return url.encode(), url
    roll = rng.random()
    if roll < 0.003:
        return BIG.encode(), None
    if roll < 0.1:  # quoted the RFC 4180 way: commas and doubled quotes inside are fine
        inner = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 3))).replace(b"\r", b"").replace(b"\n", b"")
        return b'"' + inner.replace(b'"', b'""') + b'"', None
    return b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4))), None


def _joined(rng: random.Random, header: bytes, rows: list[tuple[bytes, str | None]], crlf: bool
            ) -> tuple[bytes, dict[int, str]]:
    """The file, and by physical line number the URL each clean row must come out with."""
    chunks, clean, ends = [header + b"\n"], {}, 1
    for line, url in rows:
        chunk = line + (rng.choice([b"\n", b"\r\n"]) if crlf else b"\n")
        if url:
            clean[ends + 1] = url
        ends += len(LINE_END.findall(chunk))
        chunks.append(chunk)
    return b"".join(chunks), clean


def source_batch(rng: random.Random, n: int) -> tuple[bytes, dict[int, str]]:
    """A ``url,label,date`` file (sometimes with a BOM first), hostile row by row."""
    rows = []
    for i in range(n):
        url, known = hostile_row(rng, i, 3, rng.random() < 0.3)
        if known:
            rows.append((url + b",1,2023-01-05", known))
            continue
        label = rng.choice([b"0", b"1", b"1", b"2", b"", b"yes", b'"1"', b"1 "])
        date = rng.choice([b"2023-01-05", b"2023-02-01T10:00:00Z", b"", b"31/12/2023", b"1969-07-20", b"x\xff"])
        fields = [url, label, date][: rng.choice([1, 2, 3, 3, 3, 3, 4])] + ([b"extra"] if rng.random() < 0.05 else [])
        rows.append((b",".join(fields), None))
    header = b"\xef\xbb\xbfurl,label,date" if rng.random() < 0.5 else b"url,label,date"
    return _joined(rng, header, rows, crlf=True)


def feed_batch(rng: random.Random, n: int) -> tuple[bytes, dict[int, str]]:
    """A JPCERT/CC-shaped ``date,URL,description`` file, hostile the same way."""
    rows = []
    for i in range(n):
        url, known = hostile_row(rng, i, 3, rng.random() < 0.3)
        if known:
            rows.append((b"2023/10/02 10:42:00," + url + b",BRAND", known))
            continue
        date = rng.choice([b"2023/10/02 10:42:00", b"", b"2023-10-02", b"99/99/9999 99:99:99", b"\xff"])
        fields = [date, url, rng.choice([b"BRAND", b"=cmd()", "\u202eknab".encode(), b""])]
        rows.append((b",".join(fields[: rng.choice([2, 3, 3, 3, 4])]), None))
    return _joined(rng, b"date,URL,description", rows, crlf=False)


def account(text: str, batch: pd.DataFrame, clean_urls: dict[int, str], rows: int) -> dict:
    """The property on one batch (its text as ingest writes it to the shard): see the module doc."""
    assert list(batch["line"]) == list(range(2, rows + 2))  # one row per physical line, none merged or lost
    report = check_batch(batch, REPOSITORY, 2048, TODAY, TODAY)  # what ingest prints and lists
    problems = report.problems
    assert report.rows == rows and problems["reason"].map(bool).all()
    assert set(report.conflicts["line"]) | set(report.repeats_in_batch["line"]) <= set(batch["line"])
    by_line = dict(zip(problems["line"], problems["reason"]))
    for line, url in clean_urls.items():
        assert line not in by_line and batch.loc[batch["line"] == line, "url"].item() == url
    shard = parse_raw_csv(io.BytesIO(text.encode("utf-8", errors="surrogateescape")), Path("shard.csv"), "s",
                          "date")
    assert list(shard["line"]) == list(range(2, rows + 2))
    clean, quarantine = validate(shard, 2048)
    assert len(clean) + len(quarantine) == rows
    quarantined = dict(zip(quarantine["line"], quarantine["reason"]))
    assert {line: quarantined.get(line) for line in by_line} == by_line  # prepare's reason, line by line
    copies = {line for line, reason in quarantined.items() if reason.startswith(("duplicate", "conflicting labels"))}
    assert set(quarantined) - set(by_line) <= copies  # a usable row is dropped only as a copy
    return {"rows": rows, "usable": rows - len(by_line), "with problems": len(by_line),
            **Counter(reason_kind(r) for r in by_line.values())}


def check_source(data: bytes, clean_urls: dict[int, str]) -> dict:
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")  # as ingest reads it
    batch = parse_raw_csv(io.BytesIO(data), Path("batch.csv"), "s", "date")
    return account(text, batch, clean_urls, physical_lines(data) - 1)


@pytest.fixture(scope="module")
def jpcert():
    return feed_definition(load_params(REPO / "params.yaml"), "jpcert")


def check_feed(data: bytes, clean_urls: dict[int, str], feed) -> dict:
    conversion = convert(data.decode("utf-8", errors="surrogateescape"), feed, "feed.csv")
    rows = physical_lines(data) - 1
    assert conversion.rows == rows
    batch = parse_raw_csv(io.BytesIO(conversion.csv_text.encode("utf-8", errors="surrogateescape")),
                          Path("feed.csv"), "jpcert", "date")
    assert set(conversion.malformed) == set(batch.loc[batch["malformed"] != "", "line"])
    return account(conversion.csv_text, batch, clean_urls, rows)


@pytest.mark.slow  # a property over the whole ingest check: 50 batches, ~2 s
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), n=st.integers(1, 60))
def test_any_hostile_source_batch_is_accounted_for_row_by_row(rng, n):
    check_source(*source_batch(rng, n))


@pytest.mark.slow  # a property over the whole ingest check: 50 batches, ~2 s
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), n=st.integers(1, 60))
def test_any_hostile_feed_batch_is_accounted_for_row_by_row(rng, n, jpcert):
    check_feed(*feed_batch(rng, n), jpcert)


@pytest.mark.slow  # a property over the whole raw reader: 100 files, ~2 s
@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=5).map(b"".join), min_size=1, max_size=40))
def test_any_bytes_at_all_are_accounted_for(lines):
    data = b"url,label,date\n" + b"\n".join(lines)
    check_source(data, {})
    undated = parse_raw_csv(io.BytesIO(b"url,label\n" + b"\n".join(lines)), Path("b.csv"), "s")
    dated = add_date_column((b"url,label\n" + b"\n".join(lines)).decode("utf-8", "surrogateescape"), TODAY)
    shard = parse_raw_csv(io.BytesIO(dated.encode("utf-8", "surrogateescape")), Path("b.csv"), "s", "date")
    assert list(undated["line"]) == list(shard["line"])
    assert list(undated["malformed"] != "") == list(shard["malformed"] != "")


# -- the real command, on two big seeded files ------------------------------------------------------
def ingest(root: Path, *args: str):
    return sh(sys.executable, "-m", "pipeline", "ingest", *args, cwd=root, check=False)


@pytest.mark.slow
def test_ten_thousand_hostile_rows_through_ingest_source_and_feed(tmp_path):
    rng = random.Random(SEED)
    root = sample_project(tmp_path / "project", repro=False)
    source, source_clean = source_batch(rng, ROWS)
    feed, feed_clean = feed_batch(rng, ROWS)
    (tmp_path / "hostile.csv").write_bytes(source)
    (tmp_path / "202310.csv").write_bytes(feed)
    printed = {}
    for name, args, data in (("source", ["--source", "hostile", "--date-column", "date"], source),
                             ("feed", ["--feed", "jpcert"], feed)):
        result = ingest(root, *args, str(tmp_path / ("hostile.csv" if name == "source" else "202310.csv")))
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
        rows = physical_lines(data) - 1
        usable = re.search(r": ([\d,]+) rows for source '\w+' \(one a line after the header\), ([\d,]+) usable, "
                           r"([\d,]+) with problems", result.stdout)
        assert usable and [int(g.replace(",", "")) for g in usable.groups()] == [
            rows, rows - int(usable.group(3).replace(",", "")), int(usable.group(3).replace(",", ""))]
        printed[name] = {"lines": rows, "usable": int(usable.group(2).replace(",", "")),
                         "with problems": int(usable.group(3).replace(",", ""))}
    shard = gzip.decompress((root / "data/raw/hostile/2023-02.csv.gz").read_bytes())
    assert shard == source.removeprefix(b"\xef\xbb\xbf")  # every line, byte for byte
    jpcert = feed_definition(load_params(REPO / "params.yaml"), "jpcert")
    counts = {"source": check_source(source, source_clean), "feed": check_feed(feed, feed_clean, jpcert)}
    for name in counts:
        assert printed[name]["lines"] == counts[name]["rows"] >= ROWS
        assert printed[name]["usable"] == counts[name]["usable"] > 3000
        assert printed[name]["with problems"] == counts[name]["with problems"] > 1000
    print(counts)  # shown with -s: the numbers the closing note quotes
