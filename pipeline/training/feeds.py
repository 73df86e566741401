"""Feed definitions: a publisher's file, as shipped, into the repository's raw-row format (pure).

A feed (JPCERT/CC's monthly phishing list, ...) ships its own columns, its own
date format and time zone, and no label column. Its definition lives once, in
params.yaml ``ingest.feeds``: which publisher column fills which repository
column, how its dates are written and in which zone, the label every row
carries and the source it joins. ``ingest --feed NAME`` converts with it, so a
batch is taken in exactly as the publisher shipped it, with no hand editing,
and a date in the publisher's own format is never quarantined for that.

Nothing is lost in the conversion: one publisher line is one row (a stray quote
cannot fold the lines after it into one field), a row with the wrong number of
fields keeps its fields and a line that cannot be split is kept as written
(``prepare`` quarantines both as malformed), a date that does not
match the format is kept as written (``prepare`` quarantines it as a bad date),
and a blank date stays blank (an undated row, like the undated rows of other
sources).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from phishing_url_detector.strict_csv import Line, read_lines
from pipeline.common import PipelineError

REQUIRED = ("url", "date")  # repository columns every feed must fill (the label is fixed by the definition)


@dataclass(frozen=True)
class FeedDefinition:
    name: str
    source: str
    columns: dict[str, str]   # repository column -> publisher column, in the shard's column order
    date_format: str          # strptime format of the publisher's date column
    timezone: str             # IANA zone the publisher's dates are written in
    label: int                # every row of the feed carries this label

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def feed_definition(params: dict, name: str) -> FeedDefinition:
    """The definition named ``name`` in params ``ingest.feeds``, checked field by field."""
    feeds = (params.get("ingest") or {}).get("feeds") or {}
    if name not in feeds:
        raise PipelineError(f"--feed {name!r}: params.yaml ingest.feeds defines {sorted(feeds) or 'no feeds'}")
    entry, where = feeds[name], f"params.yaml ingest.feeds.{name}"
    try:
        columns = {str(k): str(v) for k, v in dict(entry["columns"]).items()}
        feed = FeedDefinition(name, str(entry["source"]), columns, str(entry["date_format"]),
                              str(entry["timezone"]), int(entry["label"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise PipelineError(f"{where}: expected source, columns (repository column: publisher column), "
                            f"date_format, timezone and label; {type(exc).__name__}: {exc}") from None
    missing = [c for c in REQUIRED if c not in columns]
    if missing or "label" in columns:
        raise PipelineError(f"{where}.columns: must map {list(REQUIRED)} (missing {missing}) and not 'label' "
                            "(the definition's label is fixed)")
    if feed.label not in (0, 1):
        raise PipelineError(f"{where}.label: expected 0 (legitimate) or 1 (phishing), got {feed.label}")
    try:
        _ = feed.zone  # resolving the zone is the check
    except (ZoneInfoNotFoundError, ValueError):
        raise PipelineError(f"{where}.timezone: {feed.timezone!r} is not an IANA time zone") from None
    return feed


def iso_date(text: str, feed: FeedDefinition) -> str:
    """The publisher's date as ISO 8601 with its UTC offset; a blank stays blank, anything else
    that does not match the format is returned as written (prepare quarantines it, with the text)."""
    value = text.strip()
    if not value:
        return ""
    try:
        stamp = dt.datetime.strptime(value, feed.date_format)
    except ValueError:
        return text
    return stamp.replace(tzinfo=feed.zone).isoformat()


@dataclass
class Conversion:
    """The batch in the repository's format, and what the conversion saw."""
    csv_text: str
    rows: int
    undated: list[int]          # publisher line numbers with a blank date
    unparsed_dates: list[int]   # publisher line numbers whose date did not match the format
    malformed: list[int]        # publisher line numbers with the wrong number of fields


def convert(text: str, feed: FeedDefinition, file_name: str) -> Conversion:
    """The publisher's CSV text -> CSV text with the repository's columns (``columns`` order, then label).

    One physical line is one row, as everywhere data enters (:mod:`phishing_url_detector.strict_csv`):
    output line N is publisher line N. A line that cannot be split (a stray quote, an embedded newline,
    an over-long field) is written as the publisher wrote it, so ``prepare`` quarantines it with the
    same reason and the line's text; a row of the wrong width is kept at a wrong width."""
    lines = read_lines(io.StringIO(text, newline=""))
    header = _header(next(lines, None), feed, file_name)
    index = {ours: header.index(theirs) for ours, theirs in feed.columns.items()}
    as_written = io.StringIO(text, newline="").readlines()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*feed.columns, "label"])
    result = Conversion("", 0, [], [], [])
    for line in lines:
        result.rows += 1
        if line.fields is None or len(line.fields) != len(header):
            result.malformed.append(line.number)
            if line.fields is None:
                out.write(as_written[line.number - 1].rstrip("\r\n") + "\n")
            else:  # kept as a row of the wrong width, so prepare quarantines it as malformed, with its line
                width = len(feed.columns) + 1
                writer.writerow(line.fields + [""] if len(line.fields) == width else line.fields)
            continue
        row = {ours: line.fields[i] for ours, i in index.items()}
        row["date"] = iso_date(row["date"], feed)
        if not row["date"]:
            result.undated.append(line.number)
        elif row["date"] == line.fields[index["date"]]:
            result.unparsed_dates.append(line.number)
        writer.writerow([*row.values(), feed.label])
    result.csv_text = out.getvalue()
    return result


def _header(line: Line | None, feed: FeedDefinition, file_name: str) -> list[str]:
    expected = list(feed.columns.values())
    if line is None:
        raise PipelineError(f"{file_name}: file is empty, expected the {feed.name} header {expected}")
    if line.fields is None:
        raise PipelineError(f"{file_name}: line 1 (the header) cannot be read: {line.error}")
    header = [line.fields[0].removeprefix("\ufeff"), *line.fields[1:]] if line.fields else []
    missing = [c for c in expected if c not in header]
    if missing:
        raise PipelineError(f"{file_name}: header {header} lacks {missing}, which params.yaml ingest.feeds."
                            f"{feed.name}.columns maps; is this a {feed.name} file?")
    return header
