import gzip

import pandas as pd
import pytest

from pipeline.training.validation import (
    RawDataError,
    read_raw_csv,
    row_problem,
    validate,
)


def write_gz(path, data: bytes):
    with gzip.open(path, "wb") as fh:
        fh.write(data)
    return path


def test_every_rejected_row_is_kept_with_its_reason(tmp_path):
    raw = (b"url,label\n"
           b"http://ok.example/a,0\n"
           b"http://ok.example/a,0\n"                 # duplicate
           b"http://both.example/,0\n"
           b"http://both.example/,1\n"                # conflicting labels
           b"http://bad-label.example/,2\n"
           b",1\n"                                    # empty
           b"   ,0\n"                                 # whitespace only
           b"http://toolong.example/" + b"a" * 100 + b",1\n"
           b"http://nul.example/\x01x,1\n"            # control character
           b"http://bad-utf8.example/\xff\xfe,1\n"   # invalid UTF-8
           b"http://lone.example/\xed\xa0\x80,1\n"   # encoded lone surrogate
           b"http://too,many,1\n"                     # malformed row
           b"http://phish.example/?a=1&amp;b=2,1\n")
    frame = read_raw_csv(write_gz(tmp_path / "raw.csv.gz", raw), "src")
    clean, quarantine = validate(frame, max_length=60)
    assert len(clean) + len(quarantine) == len(frame) == 13
    reasons = dict(zip(quarantine["line"], quarantine["reason"]))
    assert reasons[3].startswith("duplicate: same url as src:2")
    assert reasons[4].startswith("conflicting labels") and reasons[5].startswith("conflicting labels")
    assert reasons[6] == "bad label: expected 0 or 1, got '2'"
    assert reasons[7].startswith("empty url") and reasons[8].startswith("empty url")
    assert reasons[9].startswith("url too long: 123 characters > max_url_length 60")
    assert reasons[10] == "control character: url contains U+0001"
    assert reasons[11].startswith("invalid encoding") and reasons[12].startswith("invalid encoding")
    assert reasons[13] == "malformed row: expected 2 fields, got 3"
    assert list(clean["url"]) == ["http://ok.example/a", "http://phish.example/?a=1&b=2"]
    assert list(clean["label"]) == [0, 1]


def test_duplicates_across_sources_keep_the_first_source(tmp_path):
    a = read_raw_csv(write_gz(tmp_path / "a.csv.gz", b"url,label\nhttp://x.example/,1\n"), "first")
    b = read_raw_csv(write_gz(tmp_path / "b.csv.gz", b"url,label\nhttp://x.example/,1\n"), "second")
    clean, quarantine = validate(pd.concat([a, b], ignore_index=True), 100)
    assert list(clean["source"]) == ["first"]
    assert quarantine.loc[0, "source"] == "second" and quarantine.loc[0, "reason"] == "duplicate: same url as first:2"


def test_html_entities_are_decoded_before_deduplication(tmp_path):
    raw = b"url,label\nhttp://p.example/?a=1&amp;b=2,1\nhttp://p.example/?a=1&b=2,1\n"
    clean, quarantine = validate(read_raw_csv(write_gz(tmp_path / "r.csv.gz", raw), "s"), 100)
    assert len(clean) == 1 and len(quarantine) == 1


def test_header_without_required_columns_names_the_file(tmp_path):
    path = write_gz(tmp_path / "r.csv.gz", b"link,class\nx,1\n")
    with pytest.raises(RawDataError, match=r"r\.csv\.gz.*lacks column\(s\) \['url', 'label'\]"):
        read_raw_csv(path, "s")


def test_extra_columns_named_like_ours_are_kept_under_another_name(tmp_path):
    raw = b"url,label,source,date\nhttp://a.example/,1,phishtank,2020-01-01\n"
    frame = read_raw_csv(write_gz(tmp_path / "r.csv.gz", raw), "stream")
    assert frame.loc[0, "source"] == "stream" and frame.loc[0, "source_column"] == "phishtank"


@pytest.mark.parametrize("url,expected", [
    ("http://a.example/", None),
    ("  http://a.example/  ", None),
    ("http://a.example/\ud800", "invalid encoding"),
    ("http://a.example/\x7f", "control character"),
])
def test_row_problem(url, expected):
    problem = row_problem(url, "1", "", 100)
    assert (problem is None) if expected is None else problem.startswith(expected)


def test_dates_become_first_seen_and_bad_dates_are_quarantined_with_the_value(tmp_path):
    raw = (b"url,label,date\n"
           b"http://a.example/,1,2022-07-01\n"
           b"http://b.example/,1,2022-07-01 23:30:00-05:00\n"   # a timestamp: its UTC day
           b"http://c.example/,0,\n"                           # undated row of a dated source: kept
           b"http://d.example/,1,01/07/2022\n"
           b"http://e.example/,1,1970-01-01\n")
    clean, quarantine = validate(read_raw_csv(write_gz(tmp_path / "r.csv.gz", raw), "feed", "date"), 100)
    assert list(clean["first_seen"]) == ["2022-07-01", "2022-07-02", ""]
    reasons = dict(zip(quarantine["line"], quarantine["reason"]))
    assert reasons[5] == "bad date: expected an ISO 8601 date like 2022-07-01, got '01/07/2022'"
    assert reasons[6].startswith("bad date: 1970-01-01 is outside")
    assert set(quarantine["file"]) == {"r.csv.gz"}


def test_a_missing_date_column_names_the_file_and_the_column(tmp_path):
    path = write_gz(tmp_path / "r.csv.gz", b"url,label\nhttp://a.example/,1\n")
    with pytest.raises(RawDataError, match=r"r\.csv\.gz.*lacks column\(s\) \['date'\]"):
        read_raw_csv(path, "s", "date")


def test_spellings_of_one_url_are_duplicates_and_conflicts_name_both_sides(tmp_path):
    a = read_raw_csv(write_gz(tmp_path / "a.csv.gz", b"url,label\nhttp://shop.example/,1\nhttp://x.example/a,0\n"),
                     "first")
    b = read_raw_csv(write_gz(tmp_path / "b.csv.gz", b"url,label\nHTTP://SHOP.EXAMPLE,0\nhttp://x.example/a/#,0\n"),
                     "second")
    clean, quarantine = validate(pd.concat([a, b], ignore_index=True), 100)
    assert list(clean["url"]) == ["http://x.example/a"]
    reasons = quarantine.set_index(["source", "line"])["reason"]
    expected = "conflicting labels: the same url is phishing at first:2 and legitimate at second:2"
    assert reasons[("first", 2)] == reasons[("second", 2)] == expected
    assert reasons[("second", 3)] == "duplicate: same url as first:3"


# -- strict parsing: one physical line is one row (issue 19, findings 4 and 5) -----------------------
def test_a_stray_quote_is_one_malformed_row_and_the_other_1001_urls_are_read(tmp_path):
    rows = "".join(f"http://u{i}.example/,1\n" for i in range(1000))
    raw = b'url,label\nhttp://a.example/,0\n"http://stray.example/,1\n' + rows.encode()
    frame = read_raw_csv(write_gz(tmp_path / "r.csv.gz", raw), "s")
    clean, quarantine = validate(frame, 100)
    assert len(frame) == 1002 and len(clean) == 1001 and list(quarantine["line"]) == [3]
    assert quarantine.loc[0, "reason"].startswith("malformed row: unbalanced quote: field 1 opens a quote")
    assert quarantine.loc[0, "url"] == '"http://stray.example/,1'  # the line as written


def test_a_field_with_an_embedded_newline_is_two_malformed_lines_never_one_merged_row(tmp_path):
    raw = b'url,label\n"http://a.example/\nx",1\nhttp://b.example/,0\n'
    clean, quarantine = validate(read_raw_csv(write_gz(tmp_path / "r.csv.gz", raw), "s"), 100)
    assert list(clean["url"]) == ["http://b.example/"]
    reasons = dict(zip(quarantine["line"], quarantine["reason"]))
    assert reasons[2].startswith("malformed row: unbalanced quote") and reasons[3].startswith("malformed row: stray")
    assert list(quarantine["url"]) == ['"http://a.example/', 'x",1']


def test_a_field_over_the_cap_is_a_malformed_row_not_a_traceback(tmp_path):
    raw = b"url,label\nhttp://big.example/" + b"a" * 200_000 + b",1\nhttp://ok.example/,0\n"
    clean, quarantine = validate(read_raw_csv(write_gz(tmp_path / "r.csv.gz", raw), "s"), 100)
    assert list(clean["url"]) == ["http://ok.example/"]
    assert quarantine.loc[0, "reason"] == "malformed row: field 1 is 200,019 characters, over the cap of 65,536"


def test_a_wrong_width_row_keeps_its_line_and_none_of_its_pieces_is_read_as_a_label(tmp_path):
    raw = b"url,label,date\nhttp://a.example/,1\nhttp://b.example/,x,1,2022-01-01\n"
    frame = read_raw_csv(write_gz(tmp_path / "r.csv.gz", raw), "s", "date")
    assert list(frame["url"]) == ["http://a.example/,1", "http://b.example/,x,1,2022-01-01"]
    assert list(frame["label"]) == ["", ""] and list(frame["first_seen"]) == ["", ""]
    assert list(frame["malformed"]) == ["malformed row: expected 3 fields, got 2",
                                        "malformed row: expected 3 fields, got 4"]


def test_a_byte_order_mark_is_not_part_of_the_first_column_and_a_broken_header_is_refused(tmp_path):
    frame = read_raw_csv(write_gz(tmp_path / "bom.csv.gz", b"\xef\xbb\xbfurl,label\nhttp://a.example/,1\n"), "s")
    assert list(frame["url"]) == ["http://a.example/"]
    with pytest.raises(RawDataError, match=r"h\.csv\.gz: line 1 \(the header\) cannot be read: unbalanced quote"):
        read_raw_csv(write_gz(tmp_path / "h.csv.gz", b'"url,label\nhttp://a.example/,1\n'), "s")
