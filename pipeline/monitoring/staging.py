"""Turn every log file into something both engines read the same way, without holding it.

Parquet files that are sound are read by the engine in place. Text logs (CSV, TSV, JSON Lines,
compressed or not) and Parquet files with bytes that are not UTF-8 are streamed here, under the
per-file caps, into a staged Parquet file of text columns plus ``log_row_``: the engines then
never parse CSV or JSON themselves, so quoting, bad lines and undecodable bytes are handled once,
the same for DuckDB and Spark. A line that cannot be parsed becomes a *broken* reject here
(with its reason and row); every other check is the shared SQL's.

CSV is strict (``phishing_url_detector.strict_csv``): one physical line is one record, so a stray
quote, a field with an embedded newline or a field over ``monitor.logs.max_field_chars`` costs its
own line, never the rest of the file. ``row`` is the record's number, as ``score --file`` numbers
it: CSV row n is line n + 1 (the header is line 1, a blank line keeps its number), JSON Lines row
n is line n, Parquet row n its n-th row.

Every input reaches an engine under a name chosen here (``input-000007.parquet`` in the staging
directory: the staged copy, or a symlink to a Parquet file read in place). DuckDB and Spark expand
``*``, ``?``, ``[...]`` and ``{a,b}`` in a path; a log file named ``a[1].parquet`` or
``*.parquet`` must be read as itself, once.
"""
from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from phishing_url_detector.strict_csv import (
    Line,
    RowError,
    bounded_lines,
    read_lines,
    split_fields,
)
from pipeline.bounded_io import DECOMPRESSORS, Caps, LimitExceeded, open_capped
from pipeline.common import visible
from pipeline.monitoring.sql import OPTIONAL, REQUIRED

REJECT_CAP = 10_000  # rejected rows written to rejects.csv (per file when staging); every one is counted

KNOWN = (*REQUIRED, *OPTIONAL)
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet"}
BATCH = 100_000
RAW_LIMIT = 2000
_BAD_TEXT = re.compile("[\ud800-\udfff]")  # an undecodable byte (surrogate escape) or a lone surrogate
GLOB_CHARS = frozenset("*?[]{}\\")  # what DuckDB's or Hadoop's glob expands (or escapes) in a path
_BOM = "\ufeff"
_JSON_SPACE = " \t\r\n"  # JSON's own whitespace: a line of only these is blank, not a record


def file_format(path: Path) -> str | None:
    """'csv', 'json' or 'parquet' from the suffixes (compression suffix ignored)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (*DECOMPRESSORS, ".zst", ".zip"):
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


def literal_path(path: str) -> str:
    """``path`` unchanged, or ValueError when an engine would read it as a pattern (why: DuckDB and
    Spark expand glob characters, so ``a[1].parquet`` would read ``a1.parquet``)."""
    found = sorted(set(str(path)) & GLOB_CHARS)
    if found:
        raise ValueError(f"{path}: contains the glob character(s) {' '.join(found)}, which DuckDB and Spark would "
                         "expand as a pattern; a log is read as literal files only (a URI names one file or a "
                         "directory; a local directory is listed by the monitor itself)")
    return str(path)


def input_name(workdir: Path, index: int) -> Path:
    """The name input ``index`` reaches the engine under: chosen here, never a pattern."""
    return Path(literal_path(str(workdir / f"input-{index:06d}.parquet")))


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


class _Broken(list[dict]):
    """The broken lines of one file: every one counted, the first ``keep`` kept."""

    def __init__(self, keep: int = REJECT_CAP):
        super().__init__()
        self.keep = keep
        self.total: dict[str, int] = {}

    def append(self, item: dict) -> None:
        self.total[item["reason"]] = self.total.get(item["reason"], 0) + 1
        if len(self) < self.keep:
            super().append(item)


def escaped(text: str) -> str:
    """Text with each undecodable byte shown as ``\\xff``: raw bytes stay visible in a reject."""
    if _BAD_TEXT.search(text) is None:
        return text
    return _BAD_TEXT.sub(lambda match: visible(match.group()) or match.group(), text)


def _bad_offset(text: str) -> int:
    match = _BAD_TEXT.search(text)
    assert match is not None, "called on text with a bad character"
    return len(text[:match.start()].encode("utf-8", "surrogatepass"))


def _undecodable(items: list[tuple[str, object]]) -> str | None:
    """The reason for a record with a key or value that is not valid UTF-8 text, else None."""
    for key, value in [(k, k) for k, _ in items] + items:
        if isinstance(value, str) and _BAD_TEXT.search(value):
            return f"invalid UTF-8 (field {escaped(str(key))!r}, byte offset {_bad_offset(value)})"
    return None


def _broken(index: int, row: int | None, reason: str, raw: str, record: dict | None = None) -> dict:
    values = {k: escaped(str(v))[:RAW_LIMIT] for k, v in (record or {}).items() if k in KNOWN and v is not None}
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


_LINE_ERRORS = (  # strict_csv's message -> a stable reason (the key the report counts by) and its detail
    (re.compile(r"unbalanced quote: field (\d+)"), "unbalanced quote",
     "field {0}: a quote not closed on its line, or a field with an embedded newline"),
    (re.compile(r"stray quote: field (\d+)"), "stray quote", "field {0}: a quote inside or after a field"),
    (re.compile(r"field (\d+) is ([\d,]+) characters, over the cap of ([\d,]+)"), "field over the length cap",
     "field {0}: {1} characters, cap {2}, params monitor.logs.max_field_chars"),
    (re.compile(r"line longer than ([\d,]+) characters"), "line over the length cap", "over {0} characters"),
)


def line_reason(error: str) -> str:
    """A strict-CSV line error as ``kind (detail)``: the report groups rejects by ``kind``."""
    for pattern, kind, detail in _LINE_ERRORS:
        match = pattern.match(error)
        if match:
            return f"{kind} ({detail.format(*match.groups())})"
    return error


def _line_cap(caps: Caps, columns: int) -> int:
    """The longest line worth parsing: ``columns`` fields at the field cap and their delimiters
    (a longer line has a field over the cap or too many fields, a reject either way)."""
    return (caps.max_field_chars + 1) * max(columns, 1)


def _header(lines: Iterator[Line]) -> tuple[list[str], str | None]:
    """The header's names (a leading byte-order mark dropped), or none and why."""
    first = next(lines, None)
    if first is None or first.fields == []:
        return [], None
    if first.error or first.fields is None:
        return [], f"unreadable CSV header ({line_reason(first.error or '')})"
    return [escaped(name) for name in [first.fields[0].removeprefix(_BOM), *first.fields[1:]]], None


class _CleanWatch(io.RawIOBase):
    """The bytes after a CSV header, for the fast path: ends the stream at the first ``"`` or lone
    ``\\r`` (the caller then reads the file strictly) and counts physical lines."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.clean, self.newlines, self.last = inner, True, 0, b"\n"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.inner.read(len(buffer))
        if b'"' in data or data.count(b"\r") != data.count(b"\r\n"):
            self.clean = False
            return 0
        buffer[:len(data)] = data
        self.newlines += data.count(b"\n")
        self.last = data[-1:] or self.last
        return len(data)

    @property
    def lines(self) -> int:
        return self.newlines + (self.last != b"\n")


def _stage_csv_fast(path: Path, caps: Caps, out: Path, sep: str) -> bool:
    """A clean CSV streamed by pyarrow's parser, about eight times the speed of the strict loop, and
    the same rows: taken only while the file has no quote at all (so no quoted field can span
    lines) and no lone ``\\r``, every line has the header's field count in UTF-8, no field is
    over the cap and no line is blank (pyarrow would skip it: the row numbers would shift).
    False as soon as one of these fails, and the caller reads the file strictly."""
    with open_capped(path, caps, header_lines=1) as fh:
        line = fh.readline(caps.max_field_chars + 1)
        text = line.decode("utf-8", "surrogateescape").removesuffix("\n").removesuffix("\r")
        if not line.endswith(b"\n") or b'"' in line or "\r" in text or _BAD_TEXT.search(text):
            return False
        header = [escaped(name) for name in split_fields(text.removeprefix(_BOM), sep, caps.max_field_chars)]
        if len(header) < 2 or len(set(header)) < len(header):
            return False
        watch = _CleanWatch(fh)
        reader = pacsv.open_csv(
            io.BufferedReader(watch, 1 << 16),
            read_options=pacsv.ReadOptions(column_names=header, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter=sep, quote_char=False, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header}))
        known = [c for c in header if c in KNOWN]
        schema = pa.schema([("log_row_", pa.int64()), *[(c, pa.string()) for c in known]])
        row = 0
        with pq.ParquetWriter(out, schema) as writer:
            try:
                for batch in reader:
                    if any((pc.max(pc.utf8_length(column)).as_py() or 0) > caps.max_field_chars
                           for column in batch.columns):
                        return False
                    rows = pa.array(range(row + 1, row + batch.num_rows + 1), pa.int64())
                    writer.write_table(pa.table([rows, *[batch.column(c) for c in known]], schema=schema))
                    row += batch.num_rows
            except pa.ArrowInvalid:
                return False
    return watch.clean and row == watch.lines


def stage_csv(path: Path, caps: Caps, index: int, out: Path, sep: str) -> tuple[Input, _Broken]:
    """A (compressed) CSV streamed line by line, strictly: a line that does not parse (stray or
    unbalanced quote, a field over the cap), has the wrong number of fields or an undecodable
    byte is a broken reject. Row n is line n + 1 (the header is line 1); blank lines are
    skipped and keep their numbers."""
    try:
        if _stage_csv_fast(path, caps, out, sep):
            return Input(str(path), str(out), True), _Broken()
    except (pa.ArrowInvalid, RowError):
        pass
    broken = _Broken()
    with open_capped(path, caps, header_lines=1) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
        header, header_error = _header(read_lines(text, delimiter=sep, max_field_chars=caps.max_field_chars,
                                                  max_line_chars=_line_cap(caps, 64)))
        writer = _Writer(out, header)
        for line in read_lines(text, delimiter=sep, max_field_chars=caps.max_field_chars,
                               max_line_chars=_line_cap(caps, len(header)), first_line=2):
            if line.fields == []:
                continue
            reason = header_error or (line_reason(line.error) if line.error else None)
            fields = line.fields or []  # None only with an error, a reason already
            if reason is None and len(fields) != len(header):
                reason = "wrong number of CSV fields"
            if reason:
                broken.append(_broken(index, line.number - 1, reason, line.text))
                continue
            record = dict(zip(header, fields))
            reason = _undecodable(list(record.items()))
            if reason:
                broken.append(_broken(index, line.number - 1, reason, line.text, record))
                continue
            writer.add(line.number - 1, record)
        writer.close()
    return Input(str(path), str(out), True), broken


def _json_lines(fh: IO[bytes], limit: int) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, too long) for each ``\\n``-ended line of a binary stream, a line over
    ``limit`` bytes cut to its start and read past in bounded memory (the client's one bounded reader)."""
    for number, (raw, too_long) in enumerate(bounded_lines(fh, limit, (b"\n",)), 1):
        yield number, raw[:RAW_LIMIT if too_long else None].decode("utf-8", "surrogateescape"), too_long


def _json_record(line: str, cap: int) -> dict | str:
    """The object on one line, or why there is none (not JSON, not an object, a value over ``cap``)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than Python recurses
        return "unparseable JSON line"
    if not isinstance(record, dict):
        return "unparseable JSON line"
    for key, value in record.items():
        size = max(len(key), len(value) if isinstance(value, str) else
                   len(_text(value)) if key in KNOWN and value is not None else 0)
        if size > cap:
            return (f"field over the length cap (field {escaped(key[:100])!r}: {size:,} characters, "
                    f"cap {cap:,}, params monitor.logs.max_field_chars)")
    return record


def stage_json(path: Path, caps: Caps, index: int, out: Path) -> tuple[Input, _Broken]:
    """JSON Lines, one object per line (row = line number); a line that is not a JSON object,
    longer than the line cap, with a value over the field cap or an undecodable byte is a broken
    reject. A line of JSON whitespace only is blank; a byte-order mark may open the file."""
    broken = _Broken()
    writer = _Writer(out, list(KNOWN))
    seen: set[str] = set()
    limit = _line_cap(caps, 4 * len(KNOWN))
    with open_capped(path, caps) as fh:
        for lineno, line, too_long in _json_lines(fh, limit):
            if lineno == 1:
                line = line.removeprefix(_BOM)
            if too_long:
                broken.append(_broken(index, lineno, f"line over the length cap (over {limit:,} bytes)", line))
                continue
            if not line.strip(_JSON_SPACE):
                continue
            record = _json_record(line, caps.max_field_chars)
            if isinstance(record, str):
                broken.append(_broken(index, lineno, record, line.strip(_JSON_SPACE)))
                continue
            reason = _undecodable(list(record.items()))
            if reason:
                broken.append(_broken(index, lineno, reason, line.strip(_JSON_SPACE), record))
                continue
            seen.update(k for k in record if k in KNOWN)
            writer.add(lineno, record)
    writer.close()
    return Input(str(path), str(out), True, tuple(k for k in KNOWN if k in seen)), broken


def uncompressed_bytes(metadata: pq.FileMetaData) -> int:
    """What a Parquet file's pages hold once decompressed, from its footer alone: the larger of the
    row groups' total byte size and the sum of the column chunks' uncompressed sizes."""
    groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
    chunks = sum(g.column(j).total_uncompressed_size for g in groups for j in range(g.num_columns))
    return max(sum(g.total_byte_size for g in groups), chunks)


def _over(path: Path, what: str, value: int, cap: int, param: str, read: str = "nothing read yet") -> LimitExceeded:
    return LimitExceeded(f"{path}: {value:,} {what} is over the cap of {cap:,} (params {param}; {read}); "
                         f"raise {param} if the file is genuine")


def _parquet_caps(path: Path, caps: Caps) -> pq.ParquetFile:
    """The file opened once its footer says it fits the caps: bytes on disk, bytes decompressed
    (a 7 MB file can expand to GBs), rows. Nothing but the footer is read before the check."""
    size = path.stat().st_size
    if size > caps.max_bytes:
        raise _over(path, "bytes", size, caps.max_bytes, caps.bytes_param)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({str(exc).strip()[:200]})") from None
    expanded = uncompressed_bytes(parquet.metadata)
    if expanded > caps.max_bytes:
        raise _over(path, "bytes uncompressed (from its Parquet metadata)", expanded, caps.max_bytes,
                    caps.bytes_param)
    if parquet.metadata.num_rows > caps.max_rows:
        raise _over(path, "rows", parquet.metadata.num_rows, caps.max_rows, caps.rows_param)
    return parquet


def _text_columns(parquet: pq.ParquetFile) -> list[str]:
    """The known columns stored as text (the Arrow schema a writer saved may call them dictionaries)."""
    def text(kind) -> bool:
        kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        return pa.types.is_string(kind) or pa.types.is_large_string(kind)

    return [f.name for f in parquet.schema_arrow if f.name in KNOWN and text(f.type)]


def _decoded_bytes(chunk: pa.Array) -> int:
    """The bytes a text chunk holds once decoded: a dictionary-encoded column is stored as its few
    distinct values and an index per row, so its footer size says little about what it expands to."""
    if pa.types.is_dictionary(chunk.type):
        lengths = pc.binary_length(chunk.dictionary)
        return int(pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0)
    return int(pc.sum(pc.binary_length(chunk)).as_py() or 0)


def _clean_text(path: Path, parquet: pq.ParquetFile, columns: list[str], caps: Caps) -> bool:
    """Whether the known text columns hold UTF-8 only, no value over the field cap, checked a row
    group at a time on their dictionaries (``parquet`` opened with ``read_dictionary``: the version
    column is a few values). Their decoded size counts against the byte cap: LimitExceeded over it."""
    decoded = 0
    for i in range(parquet.num_row_groups if columns else 0):
        table = parquet.read_row_group(i, columns=columns)
        for column in table.columns:
            for chunk in column.chunks:
                values = chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk
                try:
                    values.validate(full=True)
                except pa.ArrowInvalid:
                    return False
                if (pc.max(pc.utf8_length(values)).as_py() or 0) > caps.max_field_chars:
                    return False
                decoded += _decoded_bytes(chunk)
        if decoded > caps.max_bytes:
            raise _over(path, "bytes of text once decoded (its dictionary-encoded columns expanded)", decoded,
                        caps.max_bytes, caps.bytes_param, "only its text columns read, as dictionaries")
    return True


def _parquet_reason(record: dict, max_chars: int) -> str | None:
    """Why one Parquet row (text decoded with surrogate escapes) is a broken reject, else None."""
    reason = _undecodable(list(record.items()))
    if reason:
        return reason
    for key, value in record.items():
        if isinstance(value, str) and len(value) > max_chars:
            return (f"field over the length cap (field {key!r}: {len(value):,} characters, cap {max_chars:,}, "
                    "params monitor.logs.max_field_chars)")
    return None


def stage_parquet(path: Path, caps: Caps, index: int, out: Path) -> tuple[Input, _Broken]:
    """A Parquet file in place (under a name chosen here) when its text is UTF-8 and within the
    field cap; otherwise staged a batch at a time with its text columns read as bytes, each row
    with an undecodable or over-cap value a broken reject."""
    parquet = _parquet_caps(path, caps)
    columns = _text_columns(parquet)
    if _clean_text(path, pq.ParquetFile(path, read_dictionary=columns), columns, caps):
        os.symlink(path.absolute(), out)
        return Input(str(path), str(out), False), _Broken()
    broken = _Broken()
    known = [f.name for f in parquet.schema_arrow if f.name in KNOWN]
    writer = _Writer(out, known)
    binary = pa.schema([pa.field(c, pa.binary()) if c in columns else parquet.schema_arrow.field(c) for c in known])
    row = decoded = 0
    for batch in parquet.iter_batches(columns=known, batch_size=8192):
        batch = pa.Table.from_batches([batch]).cast(binary)
        decoded += batch.nbytes
        if decoded > caps.max_bytes:
            raise _over(path, "bytes or more once decoded", decoded, caps.max_bytes, caps.bytes_param,
                        f"stopped at row {row:,}")
        for record in batch.to_pylist():
            row += 1
            record = {k: v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v
                      for k, v in record.items()}
            reason = _parquet_reason(record, caps.max_field_chars)
            if reason:
                raw = ",".join(escaped(str(v))[:RAW_LIMIT] for v in record.values())
                broken.append(_broken(index, row, reason, raw, record))
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
    """Every file as an engine input named ``input-<index>.parquet`` in ``workdir``, in the order
    given, plus the broken lines found on the way (all counted, the first ``keep`` of each file kept)."""
    staged = Staged(keep=keep)
    for index, path in enumerate(files):
        fmt = file_format(path)
        out = input_name(workdir, index)
        if fmt == "parquet":
            item, broken = stage_parquet(path, caps, index, out)
        elif fmt == "json":
            item, broken = stage_json(path, caps, index, out)
        else:
            sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
            item, broken = stage_csv(path, caps, index, out, sep)
        staged.inputs.append(item)
        staged.add(broken, broken.total)
    return staged
