"""Turn every log file into something both engines read the same way, without holding it.

Parquet files that are sound are read by the engine in place. Text logs (CSV, TSV, JSON Lines,
compressed or not) and Parquet files with bytes that are not UTF-8 are streamed here, under the
per-file caps, into a staged Parquet file of text columns plus ``log_row_``: the engines then
never parse CSV or JSON themselves, so quoting, bad lines and undecodable bytes are handled once,
the same for DuckDB and Spark. A line that cannot be parsed becomes a *broken* reject here
(with its reason and row); every other check is the shared SQL's.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.bounded_io import Caps, LimitExceeded, open_capped
from pipeline.common import visible
from pipeline.monitoring.sql import OPTIONAL, REQUIRED

REJECT_CAP = 10_000  # rejected rows written to rejects.csv (per file when staging); every one is counted

KNOWN = (*REQUIRED, *OPTIONAL)
BATCH = 100_000
RAW_LIMIT = 2000
_BAD_TEXT = re.compile("[\ud800-\udfff]")  # an undecodable byte (surrogate escape) or a lone surrogate


@dataclass
class Input:
    """One log file as an engine reads it: the Parquet ``path`` (the file itself, or its staged
    copy, which carries ``log_row_``) under the name ``source``."""

    source: str
    path: str
    staged: bool
    present: tuple[str, ...] | None = None  # the known columns the source has (JSON: keys seen); None = all


@dataclass
class Staged:
    """The inputs of a run and the lines no engine can read: all counted by reason, the first
    ``keep`` of each file kept (dicts of REJECT columns)."""

    inputs: list[Input] = field(default_factory=list)
    broken: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    keep: int = REJECT_CAP

    def add(self, items: list[dict], total: dict[str, int]) -> None:
        self.broken.extend(items[:self.keep])
        for reason, n in total.items():
            self.counts[reason] = self.counts.get(reason, 0) + n


class _Broken(list):
    """The broken lines of one file: every one counted, the first ``keep`` kept."""

    def __init__(self, keep: int = REJECT_CAP):
        super().__init__()
        self.keep, self.total = keep, {}

    def append(self, item: dict) -> None:
        self.total[item["reason"]] = self.total.get(item["reason"], 0) + 1
        if len(self) < self.keep:
            super().append(item)


def escaped(text: str) -> str:
    """Text with each undecodable byte shown as ``\\xff``: raw bytes stay visible in a reject."""
    if _BAD_TEXT.search(text) is None:
        return text
    return _BAD_TEXT.sub(lambda match: visible(match.group()), text)


def _bad_offset(text: str) -> int:
    match = _BAD_TEXT.search(text)
    return len(text[:match.start()].encode("utf-8", "surrogatepass"))


def _undecodable(items: list[tuple[str, object]]) -> str | None:
    """The reason for a record with a key or value that is not valid UTF-8 text, else None."""
    for key, value in [(k, k) for k, _ in items] + items:
        if isinstance(value, str) and _BAD_TEXT.search(value):
            return f"invalid UTF-8 (field {escaped(str(key))!r}, byte offset {_bad_offset(value)})"
    return None


def _broken(index: int, row: int | None, reason: str, raw: str, record: dict | None = None) -> dict:
    values = {k: escaped(str(v)) for k, v in (record or {}).items() if k in KNOWN and v is not None}
    return {"src": index, "row": row, "reason": reason, **values, "raw": escaped(raw)[:RAW_LIMIT]}


class _Writer:
    """Staged rows written in batches of text columns (None stays null)."""

    def __init__(self, path: Path, columns: list[str]):
        self.path, self.columns = path, [c for c in columns if c in KNOWN]
        self.schema = pa.schema([("log_row_", pa.int64()), *[(c, pa.string()) for c in self.columns]])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows: list[int] = []
        self.values: dict[str, list] = {c: [] for c in self.columns}

    def add(self, row: int, record: dict) -> None:
        self.rows.append(row)
        for c in self.columns:
            value = record.get(c)
            self.values[c].append(None if value is None else value if isinstance(value, str) else _text(value))
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        self.writer.write_table(pa.table([self.rows, *self.values.values()], schema=self.schema))
        self.rows, self.values = [], {c: [] for c in self.columns}

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _text(value) -> str:
    """A JSON value as text: numbers as JSON writes them, true/false as true/false."""
    return json.dumps(value) if isinstance(value, (bool, int, float, list, dict)) else str(value)


def _csv_header(fh, sep: str) -> list[str]:
    line = fh.readline()
    text = line.decode("utf-8", "surrogateescape").rstrip("\r\n")
    return [escaped(name) for name in next(csv.reader([text], delimiter=sep))] if text else []


def _stage_csv_fast(path: Path, caps: Caps, out: Path, sep: str) -> bool:
    """A clean CSV (every row well-formed UTF-8 with the header's field count) streamed by
    pyarrow's parser, about ten times the speed of the row loop; False as soon as a row is not
    clean, and the caller starts over with the loop, which says what is wrong with it."""
    import pyarrow.csv as pacsv

    with open_capped(path, caps, header_lines=1) as fh:
        header = _csv_header(fh, sep)
        if not header or len(set(header)) < len(header):
            return False
        reader = pacsv.open_csv(
            fh, read_options=pacsv.ReadOptions(column_names=header, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header},
                                                 include_columns=[c for c in header if c in KNOWN]))
        known = [c for c in header if c in KNOWN]
        schema = pa.schema([("log_row_", pa.int64()), *[(c, pa.string()) for c in known]])
        row = 0
        with pq.ParquetWriter(out, schema) as writer:
            try:
                for batch in reader:
                    rows = pa.array(range(row + 1, row + batch.num_rows + 1), pa.int64())
                    writer.write_table(pa.table([rows, *[batch.column(c) for c in known]], schema=schema))
                    row += batch.num_rows
            except pa.ArrowInvalid:
                return False
    return True


def stage_csv(path: Path, caps: Caps, index: int, out: Path, sep: str) -> tuple[Input, list[dict]]:
    """A (compressed) CSV streamed row by row; a row with the wrong number of fields or an
    undecodable byte is a broken reject. Rows are numbered from 1 after the header; blank
    lines are skipped, as pandas skipped them."""
    try:
        if _stage_csv_fast(path, caps, out, sep):
            return Input(str(path), str(out), True), _Broken()
    except pa.ArrowInvalid:
        pass
    broken = _Broken()
    with open_capped(path, caps, header_lines=1) as fh:
        header = _csv_header(fh, sep)
        writer = _Writer(out, header)
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
        row = 0
        for fields in csv.reader(text, delimiter=sep):
            if not fields:
                continue
            row += 1
            record = dict(zip(header, fields))
            if len(fields) != len(header):
                broken.append(_broken(index, row, "wrong number of CSV fields", sep.join(fields)))
                continue
            reason = _undecodable(list(record.items()))
            if reason:
                broken.append(_broken(index, row, reason, sep.join(fields), record))
                continue
            writer.add(row, record)
        writer.close()
    return Input(str(path), str(out), True), broken


def stage_json(path: Path, caps: Caps, index: int, out: Path) -> tuple[Input, list[dict]]:
    """JSON Lines, one object per line (row = line number); an unparseable line or one with an
    undecodable byte is a broken reject."""
    broken = _Broken()
    writer = _Writer(out, list(KNOWN))
    seen: set[str] = set()
    with open_capped(path, caps) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.decode("utf-8", "surrogateescape")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError:
                broken.append(_broken(index, lineno, "unparseable JSON line", line.strip()))
                continue
            reason = _undecodable(list(record.items()))
            if reason:
                broken.append(_broken(index, lineno, reason, line.strip(), record))
                continue
            seen.update(k for k in record if k in KNOWN)
            writer.add(lineno, record)
    writer.close()
    return Input(str(path), str(out), True, tuple(k for k in KNOWN if k in seen)), broken


def _parquet_caps(path: Path, caps: Caps) -> pq.ParquetFile:
    size = path.stat().st_size
    if size > caps.max_bytes:
        raise LimitExceeded(f"{path}: {size:,} bytes is over the cap of {caps.max_bytes:,} (params "
                            f"{caps.bytes_param}; nothing read yet); raise {caps.bytes_param} if the file is genuine")
    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows > caps.max_rows:
        raise LimitExceeded(f"{path}: {parquet.metadata.num_rows:,} rows is over the cap of {caps.max_rows:,} "
                            f"(params {caps.rows_param}; nothing read yet); raise {caps.rows_param} if the file "
                            "is genuine")
    return parquet


def _text_columns(parquet: pq.ParquetFile) -> list[str]:
    return [f.name for f in parquet.schema_arrow if f.name in KNOWN
            and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]


def _valid_utf8(parquet: pq.ParquetFile, columns: list[str]) -> bool:
    """Whether the known text columns hold UTF-8 only, checked a row group at a time on their
    dictionaries (``parquet`` opened with ``read_dictionary``: the version column is a few values)."""
    if not columns:
        return True
    for i in range(parquet.num_row_groups):
        table = parquet.read_row_group(i, columns=columns)
        for column in table.columns:
            for chunk in column.chunks:
                try:
                    (chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk).validate(full=True)
                except pa.ArrowInvalid:
                    return False
    return True


def stage_parquet(path: Path, caps: Caps, index: int, out: Path) -> tuple[Input, list[dict]]:
    """A Parquet file in place when its text is UTF-8; otherwise staged a batch at a time with its
    text columns read as bytes, each row with an undecodable value a broken reject."""
    parquet = _parquet_caps(path, caps)
    columns = _text_columns(parquet)
    if _valid_utf8(pq.ParquetFile(path, read_dictionary=columns), columns):
        return Input(str(path), str(path), False), _Broken()
    broken = _Broken()
    known = [f.name for f in parquet.schema_arrow if f.name in KNOWN]
    writer = _Writer(out, known)
    binary = pa.schema([pa.field(c, pa.binary()) if c in columns else parquet.schema_arrow.field(c) for c in known])
    row = 0
    for batch in parquet.iter_batches(columns=known):
        batch = pa.Table.from_batches([batch]).cast(binary)
        for record in batch.to_pylist():
            row += 1
            record = {k: v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v
                      for k, v in record.items()}
            reason = _undecodable(list(record.items()))
            if reason:
                broken.append(_broken(index, row, reason, ",".join(escaped(str(v)) for v in record.values()), record))
            else:
                writer.add(row, {k: _parquet_text(v) for k, v in record.items()})
    writer.close()
    return Input(str(path), str(out), True), broken


def _parquet_text(value):
    """A typed Parquet value as text for a staged copy (timestamps in ISO 8601 with their zone)."""
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return _text(value)


def stage(files: list[Path], caps: Caps, workdir: Path, keep: int = REJECT_CAP) -> Staged:
    """Every file as an engine input, in the order given, plus the broken lines found on the way
    (all counted, the first ``keep`` of each file kept)."""
    from pipeline.monitoring.logs import file_format

    staged = Staged(keep=keep)
    for index, path in enumerate(files):
        fmt = file_format(path)
        out = workdir / f"staged-{index}.parquet"
        if fmt == "parquet":
            item, broken = stage_parquet(path, caps, index, out)
        elif fmt == "json":
            item, broken = stage_json(path, caps, index, out)
        else:
            sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
            item, broken = stage_csv(path, caps, index, out, sep)
        staged.inputs.append(item)
        staged.add(broken, broken.total if isinstance(broken, _Broken) else {})
    return staged
