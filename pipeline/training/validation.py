"""Reading raw URL files and deciding, row by row, what may enter training.

Nothing is silently dropped: every row that does not become a training row is
returned in the quarantine frame with its source, line number and reason. A
file is read one physical line per row (``strict_csv``), so a stray quote or an
over-long field costs its own line, never the rows after it.
"""
from __future__ import annotations

import datetime as dt
import gzip
import io
import re
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from phishing_url_detector.contract import normalise_url
from phishing_url_detector.strict_csv import DEFAULT_MAX_FIELD_CHARS, Line, read_lines
from pipeline.common import PipelineError
from pipeline.training.canonical import canonical_url

RAW_COLUMNS = ("url", "label")
QUARANTINE_COLUMNS = ["source", "file", "line", "url", "label", "first_seen", "reason"]
EARLIEST_DATE = dt.date(1990, 1, 1)  # before the web; an earlier date is a broken field
LATEST_DATE = dt.date(2100, 1, 1)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
BOM = "\ufeff"


class RawDataError(PipelineError, ValueError):
    """A raw file cannot be read at all (wrong header, unreadable)."""


def read_raw_csv(path: Path | str, source: str, date_column: str | None = None) -> pd.DataFrame:
    """Read a (gzipped) ``url,label`` CSV without interpreting any value.

    Bytes that are not valid UTF-8 are kept as surrogate escapes so the row can
    be quarantined with a reason instead of aborting the whole file. Extra
    columns are kept; rows with the wrong field count are marked. The raw text
    of ``date_column`` (if given) becomes ``first_seen``; undated sources get ''.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw:
        return parse_raw_csv(raw, path, source, date_column)


def parse_raw_csv(raw: IO[bytes] | gzip.GzipFile, path: Path, source: str, date_column: str | None = None,
                  max_field_chars: int = DEFAULT_MAX_FIELD_CHARS) -> pd.DataFrame:
    """:func:`read_raw_csv` of an open binary stream of the file's (decompressed) bytes: for callers
    that open it themselves, e.g. through a capped reader. ``path`` names the file in rows and errors.

    One physical line is one row (:mod:`phishing_url_detector.strict_csv`): a stray quote, a field
    with an embedded newline or a field over ``max_field_chars`` is a malformed row on its own line,
    never a merged row or a lost file. A malformed row's ``url`` holds the line as written."""
    text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
    lines = read_lines(text, max_field_chars=max_field_chars)
    header = _header(next(lines, None), path)
    required = RAW_COLUMNS + ((date_column,) if date_column else ())
    missing = [c for c in required if c not in header]
    if missing:
        raise RawDataError(f"{path}: header {header} lacks column(s) {missing}; expected {required}")
    records, numbers, malformed = [], [], []
    for line in lines:
        records.append(line.fields if line.fields is not None and len(line.fields) == len(header)
                       else _as_written(line, header))
        numbers.append(line.number)
        malformed.append(malformed_reason(line, len(header)))
    dates = [fields[header.index(date_column)] for fields in records] if date_column else [""] * len(records)
    header = [f"{c}_column" if c in ("source", "file", "line", "malformed", "first_seen") else c for c in header]
    frame = pd.DataFrame(records, columns=header, dtype=object)
    frame.insert(0, "line", np.asarray(numbers, dtype=np.int64))
    frame.insert(0, "file", path.name)
    frame.insert(0, "source", source)
    frame["first_seen"] = pd.Series(dates, dtype=object)
    frame["malformed"] = malformed
    return frame


def _header(line: Line | None, path: Path) -> list[str]:
    """The header's column names (a UTF-8 byte order mark before the first one is not part of it)."""
    if line is None:
        raise RawDataError(f"{path}: file is empty, expected a header with columns {RAW_COLUMNS}")
    if line.fields is None:
        raise RawDataError(f"{path}: line 1 (the header) cannot be read: {line.error}")
    return [line.fields[0].removeprefix(BOM), *line.fields[1:]] if line.fields else []


def malformed_reason(line: Line, width: int) -> str:
    """'' for a row of ``width`` fields, else why it is malformed (the same words for every reader)."""
    if line.fields is None:
        return f"malformed row: {line.error}"
    if len(line.fields) != width:
        return f"malformed row: expected {width} fields, got {len(line.fields)}"
    return ""


def _as_written(line: Line, header: list[str]) -> list[str]:
    """A malformed row's fields: the line as written in ``url``, nothing in the others (so none of
    its pieces is ever read as a label or a date)."""
    fields = [""] * len(header)
    fields[header.index("url")] = line.text
    return fields


def parse_first_seen(value: str) -> str:
    """'' for an undated row, else the ISO date (UTC) of an ISO 8601 date or timestamp.

    Raises ValueError with what was expected, so the row can be quarantined.
    """
    value = value.strip()
    if not value:
        return ""
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))  # noqa: FURB162 - also reads a date-only "2022-07-01Z"
    except ValueError:
        raise ValueError(f"bad date: expected an ISO 8601 date like 2022-07-01, got {value[:40]!r}") from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    if not EARLIEST_DATE <= stamp.date() < LATEST_DATE:
        raise ValueError(f"bad date: {stamp.date()} is outside {EARLIEST_DATE}..{LATEST_DATE}")
    return stamp.date().isoformat()


def row_problem(url: str, label: str, malformed: str, max_length: int, first_seen: str = "") -> str | None:
    """Why a raw row cannot be used, or None if it can."""
    if malformed:
        return malformed
    if _SURROGATE.search(url):
        return "invalid encoding: url is not valid UTF-8 (or holds a lone surrogate)"
    if label not in ("0", "1"):
        return f"bad label: expected 0 or 1, got {label!r}"
    try:
        parse_first_seen(first_seen)
    except ValueError as exc:
        return str(exc)
    cleaned = normalise_url(url)
    if not cleaned:
        return "empty url: nothing left after stripping whitespace"
    if len(cleaned) > max_length:
        return f"url too long: {len(cleaned)} characters > max_url_length {max_length}"
    control = _CONTROL.search(cleaned)
    if control:
        return f"control character: url contains U+{ord(control.group()):04X}"
    return None


def validate(frame: pd.DataFrame, max_length: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw rows into (clean, quarantine); clean rows are normalised and de-duplicated.

    Rows are compared by :func:`pipeline.training.canonical.canonical_url`. Order
    matters and is stable: the first occurrence (by source order, then line) of
    a URL is kept, later copies are quarantined as duplicates, and a URL seen
    with both labels is quarantined in every row, with where each label came from.
    """
    if "first_seen" not in frame:
        frame = frame.assign(first_seen="")
    if "file" not in frame:
        frame = frame.assign(file="")
    reasons = [row_problem(u, lab, bad, max_length, day)
               for u, lab, bad, day in zip(frame["url"], frame["label"], frame["malformed"], frame["first_seen"])]
    frame = frame.assign(reason=reasons)
    rejected = frame[frame["reason"].notna()]
    ok = frame[frame["reason"].isna()].copy()
    ok["url"] = [normalise_url(u) for u in ok["url"]]
    ok["label"] = ok["label"].astype(np.int64)
    ok["first_seen"] = [parse_first_seen(d) for d in ok["first_seen"]]
    ok["key"] = [canonical_url(u) for u in ok["url"]]

    conflicts = label_conflicts(ok)
    ok = ok[~ok.index.isin(conflicts.index)]

    first = ok.drop_duplicates("key", keep="first")
    dupes = ok[~ok.index.isin(first.index)]
    origin = first.set_index("key")[["source", "line"]]
    dup_reason = [f"duplicate: same url as {origin.at[k, 'source']}:{origin.at[k, 'line']}" for k in dupes["key"]]
    dupes = dupes.assign(reason=dup_reason)

    quarantine = pd.concat([rejected, conflicts, dupes], ignore_index=True)
    labels = pd.Series([str(v) for v in quarantine["label"]], index=quarantine.index, dtype=object)  # text as read
    quarantine = quarantine.assign(label=labels)[QUARANTINE_COLUMNS]
    clean = first.drop(columns=["malformed", "reason", "key"]).reset_index(drop=True)
    return clean, quarantine.reset_index(drop=True)


def label_conflicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Every row whose canonical ``key`` occurs with both labels, with a reason naming both sides."""
    labels_per_key = rows.groupby("key")["label"].nunique()
    conflicting = rows[rows["key"].isin(labels_per_key.index[labels_per_key > 1])]
    first_of = conflicting.drop_duplicates(["key", "label"]).set_index(["key", "label"])
    reasons = []
    for key in conflicting["key"]:
        phish, legit = first_of.loc[(key, 1)], first_of.loc[(key, 0)]
        reasons.append(f"conflicting labels: the same url is phishing at {phish['source']}:{phish['line']} "
                       f"and legitimate at {legit['source']}:{legit['line']}")
    return conflicting.assign(reason=reasons)
