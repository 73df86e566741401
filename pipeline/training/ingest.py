"""Bringing a new feed batch into the repository as a dated, DVC-tracked shard (pure parts).

A data pull request adds rows; the review must see what it adds. So a batch is
checked before it is written: its schema, dates, labels and URLs, and every
label conflict with the rows already in the repository, compared on the
canonical URL (``HTTP://SHOP.EXAMPLE:80/`` and ``shop.example`` are the same
URL). One physical line is one row: a stray quote or an embedded newline is a
malformed row on its own line, never rows folded into one. Nothing is dropped
here: rows with problems are written like the others, and ``prepare``
quarantines them with the same reasons the batch report shows, so the review
comment lists them URL by URL.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field

import pandas as pd
from ruamel.yaml import YAML

from phishing_url_detector.contract import normalise_url
from phishing_url_detector.strict_csv import read_lines
from pipeline.bounded_io import Caps
from pipeline.common import PipelineError
from pipeline.training.canonical import canonical_url
from pipeline.training.sources import Source
from pipeline.training.validation import parse_first_seen, row_problem


class ShardError(PipelineError, ValueError):
    """The batch cannot join the shard or the registration (other columns, another date column)."""


LABEL_NAMES = {"0": "legitimate", "1": "phishing"}


@dataclass
class BatchReport:
    """What a batch holds and what is wrong with it, row by row."""
    rows: int
    months: dict[str, dict[str, int]]  # month -> {class name: rows}
    problems: pd.DataFrame             # line, url, label, reason
    conflicts: pd.DataFrame            # line, url, label, other_label, other_source, other_file, other_line
    duplicates_of_repo: int
    shard_month: str
    repeats_in_batch: pd.DataFrame = field(default_factory=pd.DataFrame)  # line, url, first_line
    notes: list[str] = field(default_factory=list)


def url_keys(urls) -> list[str]:
    """The key rows are compared on, as ``prepare`` compares them: the canonical form of the normalised URL."""
    return [canonical_url(normalise_url(u)) for u in urls]


def _text(values, index=None) -> pd.Series:
    """Strings kept as Python objects: a URL read from bytes that are not UTF-8 holds surrogate escapes,
    which pandas' inferred string type cannot store."""
    return pd.Series(list(values), index=index, dtype=object)


def batch_problems(batch: pd.DataFrame, max_length: int, today: dt.date) -> pd.DataFrame:
    """Rows that ``prepare`` would quarantine (bad URL, label, date), plus dates after ``today``."""
    rows = []
    for line, url, label, malformed, day in zip(batch["line"], batch["url"], batch["label"], batch["malformed"],
                                                batch["first_seen"]):
        reason = row_problem(url, label, malformed, max_length, day)
        if reason is None and day and parse_first_seen(day) > today.isoformat():
            reason = f"bad date: {parse_first_seen(day)} is after today ({today})"
        if reason:
            rows.append({"line": int(line), "url": url, "label": label, "reason": reason})
    problems = pd.DataFrame(rows, columns=["line", "url", "label", "reason"], dtype=object)  # text as read
    return problems.astype({"line": "int64"})


def repository_keys(existing: pd.DataFrame) -> pd.DataFrame:
    """Canonical key, label and origin of every usable row already in the repository."""
    usable = existing[existing["label"].isin(["0", "1"])]
    return pd.DataFrame({"key": _text(url_keys(usable["url"])),
                         "label": usable["label"].to_numpy(), "source": usable["source"].to_numpy(),
                         "file": usable["file"].to_numpy(), "line": usable["line"].to_numpy()})


def label_conflicts(batch: pd.DataFrame, known: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """(rows whose canonical URL the repository or the batch itself holds with the other label,
    number of rows the repository already holds with the same label)."""
    usable = batch[batch["label"].isin(["0", "1"])]
    keys = pd.DataFrame({"key": _text(url_keys(usable["url"])),
                         "label": usable["label"].to_numpy(), "url": _text(usable["url"]),
                         "line": usable["line"].to_numpy(), "source": "this batch", "file": ""})
    first = pd.concat([known, keys[known.columns]], ignore_index=True).drop_duplicates(["key", "label"])
    other = first.assign(other_label=first["label"].map({"0": "1", "1": "0"}))
    joined = keys.merge(other[["key", "other_label", "source", "file", "line"]],
                        left_on=["key", "label"], right_on=["key", "other_label"], suffixes=("", "_other"))
    conflicts = pd.DataFrame({"line": joined["line"].astype(int), "url": joined["url"], "label": joined["label"],
                              "other_source": joined["source_other"], "other_file": joined["file_other"],
                              "other_line": joined["line_other"].astype(int)}).sort_values(["line", "other_line"])
    same = keys.merge(known[["key", "label"]].drop_duplicates(), on=["key", "label"])
    return conflicts.reset_index(drop=True), int(same["line"].nunique())


def batch_repeats(batch: pd.DataFrame) -> pd.DataFrame:
    """Rows whose canonical URL an earlier row of the same batch already has (any label), with that row's line.
    A feed re-lists a site it confirmed again; prepare keeps the first copy, and the review should see how many."""
    first: dict[str, int] = {}
    rows = []
    for line, url, key in zip(batch["line"], batch["url"], url_keys(batch["url"])):
        if key in first:
            rows.append((int(line), url, first[key]))
        else:
            first[key] = int(line)
    repeats = pd.DataFrame(rows, columns=["line", "url", "first_line"], dtype=object)
    return repeats.astype({"line": "int64", "first_line": "int64"})


def rows_by_month(batch: pd.DataFrame) -> dict[str, dict[str, int]]:
    """month -> {class: rows} for rows with a usable date and label."""
    out: dict[str, dict[str, int]] = {}
    for day, label in zip(batch["first_seen"], batch["label"]):
        try:
            month = parse_first_seen(day)[:7]
        except ValueError:
            continue
        if month and label in LABEL_NAMES:
            counts = out.setdefault(month, {})
            counts[LABEL_NAMES[label]] = counts.get(LABEL_NAMES[label], 0) + 1
    return dict(sorted(out.items()))


def shard_month(months: dict, observed_on: dt.date) -> str:
    """A batch becomes one shard named after its newest month (undated batches: the day it was seen)."""
    return max(months) if months else observed_on.isoformat()[:7]


def shard_path(source: str, month: str) -> str:
    return f"data/raw/{source}/{month}.csv.gz"


SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")
CAP_KEYS = ("max_decompressed_bytes", "max_rows")  # params.yaml ``ingest:``: the caps' only home


def check_source_name(source: str) -> str:
    """The source name, if it can name a folder under data/raw and a params.yaml entry."""
    if not SOURCE_NAME.match(source):
        raise PipelineError(f"source {source!r}: use 1-40 lower-case letters, digits, '-' or '_'")
    return source


def ingest_caps(params: dict) -> Caps:
    """Caps on every CSV ``ingest`` reads (the batch and the repository's raw files), from params
    ``ingest``. Not under ``data``: prepare and export track that section, and a cap that only
    ever refuses must not re-run the pipeline."""
    section = params.get("ingest") or {}
    missing = [key for key in CAP_KEYS if key not in section]
    if missing:
        raise PipelineError("params.yaml lacks " + ", ".join(f"ingest.{key}" for key in missing)
                            + ": the caps on every CSV `ingest` reads")
    return Caps(section["max_decompressed_bytes"], section["max_rows"],
                "ingest.max_decompressed_bytes", "ingest.max_rows")


def check_batch(batch: pd.DataFrame, existing: pd.DataFrame, max_length: int, today: dt.date,
                observed_on: dt.date) -> BatchReport:
    """What a parsed batch holds and what is wrong with it, against the rows already in the repository."""
    months = rows_by_month(batch)
    conflicts, duplicates = label_conflicts(batch, repository_keys(existing))
    return BatchReport(rows=len(batch), months=months, problems=batch_problems(batch, max_length, today),
                       conflicts=conflicts, duplicates_of_repo=duplicates,
                       shard_month=shard_month(months, observed_on), repeats_in_batch=batch_repeats(batch))


def dating(source: str, known: dict[str, Source], date_column: str | None) -> tuple[str | None, bool]:
    """(the batch's date column, whether to add a ``date`` column from --observed-on)."""
    if source in known:
        registered = known[source].date_column
        if date_column and date_column != registered:
            raise PipelineError(f"--date-column {date_column!r}: source {source!r} reads dates from "
                                f"{registered!r} (params.yaml data.sources)")
        return registered, False
    return date_column, date_column is None


def add_date_column(text: str, day: dt.date) -> str:
    """``text`` with a ``date`` column of ``day``, line by line as the strict reader splits it: a row
    gets the date appended (a row of the wrong width stays wrong), a blank line or a line that cannot
    be split is kept as written, so prepare quarantines the same lines for the same reasons."""
    physical = io.StringIO(text, newline="").readlines()
    out = []
    for line, raw in zip(read_lines(io.StringIO(text, newline="")), physical):
        body = raw.rstrip("\r\n")
        suffix = "date" if line.number == 1 else day.isoformat()
        out.append(f"{body},{suffix}\n" if line.fields else f"{body}\n")
    return "".join(out)


def merge_csv(existing: bytes | None, new_text: str) -> str:
    """The shard's CSV text: the rows already in it, then the batch's rows (same header required)."""
    if not existing:
        return new_text
    old = existing.decode("utf-8", errors="surrogateescape")
    old_header, new_header = old.split("\n", 1)[0].rstrip("\r"), new_text.split("\n", 1)[0].rstrip("\r")
    if old_header != new_header:
        raise ShardError(f"the existing shard has columns {old_header!r}, the batch {new_header!r}")
    body = new_text.split("\n", 1)[1] if "\n" in new_text else ""
    return old + ("" if old.endswith("\n") else "\n") + body


# -- registering the shard in params.yaml and dvc.yaml (comments and order preserved) ---------------
def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _dump(y: YAML, doc) -> str:
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def register_in_params(params_text: str, source: str, shard: str, date_column: str | None) -> str:
    """params.yaml with ``shard`` appended to the source's files (a new source is added last)."""
    y = _yaml()
    doc = y.load(params_text)
    sources = doc["data"]["sources"]
    entry = next((s for s in sources if s["name"] == source), None)
    if entry is None:
        entry = {"name": source, "files": []}
        if date_column:
            entry["date_column"] = date_column
        sources.append(entry)
    elif (entry.get("date_column") or None) != (date_column or None):
        raise ShardError(f"source {source!r} has date_column {entry.get('date_column')!r} in params.yaml, "
                         f"the batch was given {date_column!r}")
    if shard not in entry["files"]:
        entry["files"].append(shard)
    return _dump(y, doc)


# The stages that read data/raw/** (prepare reads the rows, manifest digests the pointers).
RAW_DATA_STAGES = ("prepare", "manifest")


def register_in_dvc_yaml(dvc_text: str, shard: str, stages=RAW_DATA_STAGES) -> str:
    """dvc.yaml with ``shard`` as a dependency of the stages that read raw data, after their last raw file."""
    y = _yaml()
    doc = y.load(dvc_text)
    for name in stages:
        deps = doc["stages"][name]["deps"]
        if shard in deps:
            continue
        raw = [i for i, d in enumerate(deps) if isinstance(d, str) and d.startswith("data/raw/")]
        deps.insert(raw[-1] + 1 if raw else 0, shard)
    return _dump(y, doc)
