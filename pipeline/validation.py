"""Reading raw URL files and deciding, row by row, what may enter training.

Nothing is silently dropped: every row that does not become a training row is
returned in the quarantine frame with its source, line number and reason.
"""
from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.contract import normalise_url
from pipeline.errors import PipelineError

RAW_COLUMNS = ("url", "label")
QUARANTINE_COLUMNS = ["source", "line", "url", "label", "reason"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class RawDataError(PipelineError, ValueError):
    """A raw file cannot be read at all (wrong header, unreadable)."""


def read_raw_csv(path: Path | str, source: str) -> pd.DataFrame:
    """Read a (gzipped) ``url,label`` CSV without interpreting any value.

    Bytes that are not valid UTF-8 are kept as surrogate escapes so the row can
    be quarantined with a reason instead of aborting the whole file. Extra
    columns (e.g. dates) are kept; rows with the wrong field count are marked.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            raise RawDataError(f"{path}: file is empty, expected a header with columns {RAW_COLUMNS}")
        missing = [c for c in RAW_COLUMNS if c not in header]
        if missing:
            raise RawDataError(f"{path}: header {header} lacks column(s) {missing}; expected {RAW_COLUMNS}")
        records, lines, malformed = [], [], []
        for fields in reader:
            lines.append(reader.line_num)
            problem = ""
            if len(fields) != len(header):
                problem = f"malformed row: expected {len(header)} fields, got {len(fields)}"
                fields = (fields + [""] * len(header))[: len(header)]
            records.append(fields)
            malformed.append(problem)
    header = [f"{c}_column" if c in ("source", "line", "malformed") else c for c in header]
    frame = pd.DataFrame(records, columns=header, dtype=object)
    frame.insert(0, "line", np.asarray(lines, dtype=np.int64))
    frame.insert(0, "source", source)
    frame["malformed"] = malformed
    return frame


def row_problem(url: str, label: str, malformed: str, max_length: int) -> str | None:
    """Why a raw row cannot be used, or None if it can."""
    if malformed:
        return malformed
    if _SURROGATE.search(url):
        return "invalid encoding: url is not valid UTF-8 (or holds a lone surrogate)"
    if label not in ("0", "1"):
        return f"bad label: expected 0 or 1, got {label!r}"
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

    Order matters and is stable: the first occurrence (by source order, then
    line) of a URL is kept, later copies are quarantined as duplicates, and a
    URL seen with both labels is quarantined in every row.
    """
    reasons = [row_problem(u, lab, bad, max_length)
               for u, lab, bad in zip(frame["url"], frame["label"], frame["malformed"])]
    frame = frame.assign(reason=reasons)
    rejected = frame[frame["reason"].notna()]
    ok = frame[frame["reason"].isna()].copy()
    ok["url"] = [normalise_url(u) for u in ok["url"]]
    ok["label"] = ok["label"].astype(np.int64)

    labels_per_url = ok.groupby("url")["label"].nunique()
    conflicting = set(labels_per_url.index[labels_per_url > 1])
    conflict_mask = ok["url"].isin(conflicting)
    conflicts = ok[conflict_mask].assign(reason="conflicting labels: url appears with both 0 and 1")
    ok = ok[~conflict_mask]

    first = ok.drop_duplicates("url", keep="first")
    dupes = ok[~ok.index.isin(first.index)]
    origin = first.set_index("url")[["source", "line"]]
    dup_reason = [f"duplicate: same url as {origin.at[u, 'source']}:{origin.at[u, 'line']}" for u in dupes["url"]]
    dupes = dupes.assign(reason=dup_reason)

    quarantine = pd.concat([rejected, conflicts, dupes], ignore_index=True)
    quarantine = quarantine.assign(label=quarantine["label"].astype(str))[QUARANTINE_COLUMNS]
    clean = first.drop(columns=["malformed", "reason"]).reset_index(drop=True)
    return clean, quarantine.reset_index(drop=True)
