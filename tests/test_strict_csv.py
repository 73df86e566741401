"""The one-line-one-record CSV reader that batch scoring, the monitor and ingest share."""
from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phishing_url_detector.strict_csv import (
    RowError,
    bounded_lines,
    read_lines,
    split_fields,
)

# fields as a writer would emit them: anything but line ends
FIELD = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30)


def _lines(text: str, **kwargs):
    return list(read_lines(io.StringIO(text, newline=""), **kwargs))


def test_a_stray_quote_costs_its_own_line_not_the_rest_of_the_file():
    text = "url\n" + 'http://a.example/"x\n' + "".join(f"http://b{i}.example/\n" for i in range(1000))
    lines = _lines(text)
    assert len(lines) == 1002
    assert lines[1].number == 2 and lines[1].fields is None and "stray quote" in lines[1].error
    assert [line.fields for line in lines[2:]] == [[f"http://b{i}.example/"] for i in range(1000)]


def test_an_unclosed_quote_or_embedded_newline_is_an_error_on_each_line_it_touches():
    lines = _lines('url,label\n"http://a.example/\nstill",1\nhttp://c.example/,0\n')
    assert [line.number for line in lines] == [1, 2, 3, 4]
    assert "unbalanced quote: field 1" in lines[1].error
    assert "stray quote: field 1" in lines[2].error
    assert lines[3].fields == ["http://c.example/", "0"]


def test_quoted_fields_follow_rfc_4180():
    assert split_fields('"a,b","say ""hi""",c') == ["a,b", 'say "hi"', "c"]
    assert split_fields('a,"",') == ["a", "", ""]
    with pytest.raises(RowError, match=r"field 1 has 'x,b' after its closing quote"):
        split_fields('"a"x,b')
    with pytest.raises(RowError, match="field 2 .* holds a quote but is not quoted"):
        split_fields('a,b"c')


def test_field_and_line_caps_are_error_rows_and_reading_goes_on():
    big = "x" * 200_000
    lines = _lines(f"url\n{big}\nhttp://ok.example/\n", max_field_chars=1000, max_line_chars=100_000)
    assert "line longer than 100,000 characters" in lines[1].error and len(lines[1].text) <= 100
    assert lines[2].fields == ["http://ok.example/"]
    lines = _lines(f"a,b\n1,{'y' * 1001}\n", max_field_chars=1000)
    assert lines[1].error == "field 2 is 1,001 characters, over the cap of 1,000"


def test_a_line_over_the_cap_ending_in_a_lone_cr_costs_only_itself():
    lines = _lines("h\r" + "x" * 50 + "\rnext\r" + "y" * 10 + "\rlast\n", max_line_chars=10)
    assert [(line.number, line.fields) for line in lines] == [(1, ["h"]), (2, None), (3, ["next"]),
                                                               (4, ["y" * 10]), (5, ["last"])]


def test_crlf_and_blank_lines():
    lines = _lines("url\r\n\r\nhttp://a.example/\r\n")
    assert [(line.number, line.fields) for line in lines] == [(1, ["url"]), (2, []), (3, ["http://a.example/"])]


def test_bounded_lines_of_a_binary_stream_end_at_newline_and_cut_a_long_one():
    """Batch scoring's URL lists and the monitor's JSON lines: a line over the cap comes cut to cap + 1
    bytes and flagged (the rest of it read past); a line at the cap, line end included, is whole."""
    data = b"abc\n" + b"x" * 50 + b"\n12345\n123456\r\nend"
    assert list(bounded_lines(io.BytesIO(data), 5, (b"\n",))) == [
        (b"abc\n", False), (b"xxxxxx", True), (b"12345\n", False), (b"123456", True), (b"end", False)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"b", b"\n", b"\r"]), max_size=60).map(b"".join), st.integers(1, 6))
def test_bounded_lines_give_each_line_whole_or_cut_and_flagged(data, cap):
    whole = io.BytesIO(data).readlines()
    read = list(bounded_lines(io.BytesIO(data), cap, (b"\n",)))
    assert len(read) == len(whole)
    for (line, over_cap), original in zip(read, whole):
        if len(original.removesuffix(b"\n")) <= cap:
            assert (line, over_cap) == (original, False)
        else:
            assert over_cap and line == original[:cap + 1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(FIELD, min_size=1, max_size=5), min_size=1, max_size=20))
def test_what_csv_writer_writes_on_one_line_reads_back_exactly(rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    lines = _lines(out.getvalue())
    assert [line.fields for line in lines] == rows


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab,"\r\n \t')), max_size=60))
def test_any_text_gives_one_record_per_line_and_no_other_exception(text):
    lines = _lines(text)
    assert len(lines) == len(io.StringIO(text, newline="").readlines())  # \n, \r\n or a lone \r
    for line in lines:
        assert (line.fields is None) != (line.error is None)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab,"\r\n')), max_size=40), st.integers(1, 6))
def test_the_line_cap_never_splits_or_merges_lines(text, cap):
    """A line exactly at the cap ending in \\r\\n: readline(cap + 1) cuts between \\r and \\n, and the \\n
    alone must not become a blank line of its own (found by the client's hostile-input suite)."""
    lines = _lines(text, max_line_chars=cap, max_field_chars=cap)
    assert len(lines) == len(io.StringIO(text, newline="").readlines())
    assert all(len(line.text) <= cap or line.error for line in lines)
