"""``python -m pipeline ingest --feed NAME FILE`` or ``--source NAME FILE``: a batch -> a DVC-tracked monthly shard.

``--feed NAME`` takes a publisher's file exactly as shipped: the feed definition
in params.yaml ``ingest.feeds.NAME`` maps its columns, reads its dates in their
format and zone, gives every row the feed's label and names the source.
``--source NAME`` takes a file already in the repository's format (url,label[,date]).

Validates the batch (schema, dates, labels, URLs), lists every label conflict
with the rows already in the repository (canonical URLs), writes the batch as
``data/raw/<source>/<YYYY-MM>.csv.gz`` (merged into that shard if it exists),
registers the shard in params.yaml and dvc.yaml, runs ``dvc add`` and prints
what is left to do: ``dvc push``, then commit.

An undated batch of a new source is dated by ``--observed-on`` (a ``date``
column is added); an undated batch of an undated source stays undated.

Exit codes: 0 written, 2 the batch cannot be read (no file, missing column),
1 any other error.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import paths
from pipeline.bounded_io import Caps, open_capped, read_capped
from pipeline.commands import help_text
from pipeline.common import ExitCode, PipelineError, load_params, terminal, write_csv
from pipeline.training.feeds import Conversion, convert, feed_definition
from pipeline.training.ingest import (
    LABEL_NAMES,
    BatchReport,
    add_date_column,
    check_batch,
    check_source_name,
    dating,
    ingest_caps,
    merge_csv,
    register_in_dvc_yaml,
    register_in_params,
    shard_path,
)
from pipeline.training.sources import out_of_source, training_sources
from pipeline.training.validation import RawDataError, parse_raw_csv

SHOWN = 20  # conflicts and problems printed URL by URL; the CSV holds all of them


def read_raw_capped(path: Path, caps: Caps, source: str, date_column: str | None = None) -> pd.DataFrame:
    """``read_raw_csv`` behind the caps, in one pass: rows are parsed as they stream through the
    counting reader, so a gzip bomb stops at the cap instead of inflating into memory."""
    with open_capped(path, caps, header_lines=1, sniff_gzip=True) as raw:
        return parse_raw_csv(raw, path, source, date_column)


def read_repository(params: dict, root: Path) -> pd.DataFrame:
    """Every raw row already in the repository (training sources and the evaluation stream)."""
    caps = ingest_caps(params)
    frames = [read_raw_capped(root / path, caps, s.name) for s in [*training_sources(params), out_of_source(params)]
              for path in s.files if (root / path).exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["source", "file", "line", "url", "label"])


def write_shard(text: str, shard: Path, add_date: dt.date | None, caps: Caps) -> None:
    """The batch's rows (repository format), merged into the shard (``add_date``: append a ``date`` column)."""
    if add_date:
        text = add_date_column(text, add_date)
    existing = read_capped(shard, caps, header_lines=1) if shard.exists() else None
    shard.parent.mkdir(parents=True, exist_ok=True)
    merged = merge_csv(existing, text).encode("utf-8", errors="surrogateescape")
    shard.write_bytes(gzip.compress(merged, compresslevel=9, mtime=0))


def _read_text(file: Path, caps: Caps) -> str:
    """The batch as text; bytes that are not UTF-8 survive as surrogate escapes (those rows are
    quarantined, the shard keeps their bytes); a byte order mark is dropped (the shard starts with
    its header)."""
    data = read_capped(file, caps, header_lines=1, sniff_gzip=True)
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def print_conversion(conversion: Conversion, feed: str) -> None:
    """What the feed definition did with the publisher's rows (nothing is dropped here)."""
    print(f"ingest: feed {feed!r}: {conversion.rows:,} publisher rows converted with params.yaml ingest.feeds.{feed}")
    for what, lines in (("blank date (kept undated)", conversion.undated),
                        ("date not in the feed's format (prepare quarantines it)", conversion.unparsed_dates),
                        (("malformed: a stray quote, an over-long field or the wrong number of fields "
                         "(prepare quarantines it)"), conversion.malformed)):
        if lines:
            shown = ", ".join(str(n) for n in lines[:SHOWN]) + (" ..." if len(lines) > SHOWN else "")
            print(f"  {what}: {len(lines):,} rows, publisher lines {shown}")


def print_report(report: BatchReport, source: str, file: Path, out_dir: Path) -> None:
    print(f"ingest: {terminal(file)}: {report.rows:,} rows for source {source!r} (one a line after the header), "
          f"{report.rows - len(report.problems):,} usable, {len(report.problems):,} with problems")
    for month, counts in report.months.items():
        print(terminal(f"  {month}  " + "  ".join(f"{name} {n:,}" for name, n in sorted(counts.items()))))
    print(f"  repeats of an earlier row of this batch: {len(report.repeats_in_batch):,} rows "
          "(prepare keeps the first copy)")
    print(f"  already in the repository with the same label: {report.duplicates_of_repo:,} rows "
          "(prepare keeps the first copy)")
    _listing(report.repeats_in_batch, "repeats within this batch", lambda r: f"line {r.line} repeats line "
             f"{r.first_line}: {r.url}", out_dir / f"{source}-repeats.csv", show=min(SHOWN, 5))
    _listing(report.problems, "rows with problems (prepare will quarantine them with this reason)",
             lambda r: f"line {r.line}: {r.reason}: {r.url}", out_dir / f"{source}-problems.csv")
    _listing(report.conflicts, "label conflicts with the repository (prepare quarantines every copy)",
             lambda r: (f"line {r.line}: {_label(r.label)} here, {_label(r.label, flip=True)} at "
                        f"{r.other_source}:{r.other_file}:{r.other_line}: {r.url}"),
             out_dir / f"{source}-label-conflicts.csv")


def _listing(frame: pd.DataFrame, title: str, line: Callable[[Any], str], csv_path: Path,
             show: int = SHOWN) -> None:
    print(f"  {title}: {len(frame):,}")
    if not len(frame):
        return
    for row in frame.head(show).itertuples():
        print(f"    {terminal(line(row))}")  # one inert line: controls and bidi overrides made visible
    write_csv(frame, csv_path, encoding="utf-8", errors="backslashreplace")
    print(f"    all {len(frame):,} in {terminal(csv_path)}")


def _label(label: str, flip: bool = False) -> str:
    return LABEL_NAMES.get({"0": "1", "1": "0"}[label] if flip else label, label)


def register_shard(root: Path, source: str, shard: str, date_column: str | None) -> None:
    params_path, dvc_path = root / paths.PARAMS, root / paths.DVC_YAML
    params_path.write_text(register_in_params(params_path.read_text(), source, shard, date_column))
    dvc_path.write_text(register_in_dvc_yaml(dvc_path.read_text(), shard))


def batch_text(file: Path, params: dict, caps: Caps, feed_name: str | None) -> tuple[str, str | None]:
    """(the batch as CSV text in the repository's format, the source it joins when a feed names it)."""
    text = _read_text(file, caps)
    if not feed_name:
        return text, None
    feed = feed_definition(params, feed_name)
    conversion = convert(text, feed, str(file))
    print_conversion(conversion, feed_name)
    return conversion.csv_text, feed.source


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    file = Path(args.file)
    if bool(args.source) == bool(args.feed):
        raise PipelineError("ingest: give exactly one of --feed NAME (a publisher's file, params.yaml "
                            "ingest.feeds) or --source NAME (a file in the repository's url,label[,date] format)")
    if not file.is_file():
        print(f"error: {terminal(file)}: no such file", file=sys.stderr)
        return ExitCode.REFUSED
    params = load_params(root / paths.PARAMS)
    caps = ingest_caps(params)
    text, feed_source = batch_text(file, params, caps, args.feed)
    source = check_source_name(feed_source or args.source)
    date_column, add_date = dating(source, {s.name: s for s in training_sources(params)},
                                   "date" if args.feed else args.date_column)
    today, observed_on = dt.date.today(), args.observed_on or dt.date.today()
    try:
        batch = parse_raw_csv(io.BytesIO(text.encode("utf-8", errors="surrogateescape")), file, source, date_column)
    except RawDataError as exc:
        print(f"error: {terminal(exc, newlines=True)}", file=sys.stderr)
        return ExitCode.REFUSED
    if add_date:
        batch["first_seen"] = observed_on.isoformat()
    report = check_batch(batch, read_repository(params, root), params["data"]["max_url_length"], today, observed_on)
    print_report(report, source, file, root / paths.INGEST_REPORTS)
    shard = shard_path(source, report.shard_month)
    write_shard(text, root / shard, observed_on if add_date else None, caps)
    register_shard(root, source, shard, "date" if add_date else date_column)
    _dvc_add(root, shard)
    print(f"ingest: wrote {shard} (+ {shard}.dvc) and registered it in params.yaml (data.sources: {source}) "
          "and dvc.yaml (prepare, manifest)\n"
          "next:\n"
          "  dvc push                     # the remote must hold the shard, or CI cannot reproduce the PR\n"
          "  dvc repro                    # optional: preview; CI reproduces the pipeline anyway\n"
          f"  git add params.yaml dvc.yaml {shard}.dvc {Path(shard).parent}/.gitignore\n"
          f"  git commit -m 'data: {source} {report.shard_month}'")
    return ExitCode.OK


def _dvc_add(root: Path, shard: str) -> None:
    dvc = Path(sys.executable).parent / "dvc"
    result = subprocess.run([str(dvc) if dvc.exists() else "dvc", "add", "-q", shard], cwd=root,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"`dvc add {shard}` failed:\n{result.stdout}{result.stderr}")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2023-01-31, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ingest", help="add a feed batch as a DVC-tracked monthly shard (data PRs)",
                              description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feed", help="feed name in params.yaml ingest.feeds: FILE is the publisher's file as shipped")
    p.add_argument("--source", help="source name in params.yaml data.sources (new names are added): FILE has "
                   "the repository's columns")
    p.add_argument("file", help="CSV (optionally gzipped): as the feed's publisher ships it (--feed), "
                   "or with columns url,label[,date column] (--source)")
    p.add_argument("--date-column", help="column with the day each URL was first seen (default: the "
                   "source's date_column in params.yaml; none = undated batch, dated by --observed-on)")
    p.add_argument("--observed-on", type=_date, help="day an undated batch was observed (default: today)")
    p.add_argument("--root", default=".", help=argparse.SUPPRESS)
    p.set_defaults(func=run)
