"""Read and validate the product's prediction log.

The log is one file or a directory of files (CSV, JSON Lines or Parquet,
optionally compressed), one row per scored URL. A monitoring verdict is only
as good as its input, so a row that cannot be used is never dropped quietly:
it goes to the rejects table with the reason, and the report counts it.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from pipeline.bounded_io import DECOMPRESSORS, Caps, LimitExceeded, open_capped
from pipeline.common import visible

REQUIRED = ("timestamp", "model_version", "score")
OPTIONAL = ("verdict", "url", "label")
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet"}
REJECT_COLUMNS = ["source", "row", "reason", *REQUIRED, *OPTIONAL, "raw"]
_TRUE = {"1", "1.0", "true", "t", "yes"}
_FALSE = {"0", "0.0", "false", "f", "no"}
_BAD_TEXT = re.compile("[\ud800-\udfff]")  # an undecodable byte (surrogate escape) or a lone surrogate


@dataclass
class PredictionLog:
    """Validated rows, rejected rows (with reasons) and where they came from."""

    rows: pd.DataFrame
    rejects: pd.DataFrame
    files: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return len(self.rows) + len(self.rejects)

    def reject_reasons(self) -> dict[str, int]:
        """How many rows were rejected for each reason (a row may have several)."""
        counts: dict[str, int] = {}
        for reasons in self.rejects["reason"]:
            for reason in str(reasons).split("; "):
                key = reason.split(" (")[0]
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def file_format(path: Path) -> str | None:
    """'csv', 'json' or 'parquet' from the suffixes (compression suffix ignored)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (*DECOMPRESSORS, ".zst", ".zip"):
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


def discover_files(path: Path | str, exclude: Iterable[Path | str] = ()) -> list[Path]:
    """The log files under ``path``: itself, or every known-format file below it.

    ``exclude`` (e.g. the monitor's own output directory, if it sits inside
    the log directory) is skipped, so a run never reads its previous outputs.
    """
    path = Path(path)
    skip = [Path(e).resolve() for e in exclude]
    if path.is_file():
        if file_format(path) is None:
            raise ValueError(f"{path}: unknown log format (expected csv, jsonl or parquet)")
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"prediction log not found: {path}")
    files = sorted(p for p in path.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
                   and file_format(p) is not None
                   and not any(p.resolve().is_relative_to(e) for e in skip))
    if not files:
        raise FileNotFoundError(f"no csv/jsonl/parquet files under {path}")
    return files


def _default_caps() -> Caps:
    from pipeline.monitoring.config import MonitorParams  # config is the one home of the defaults
    return MonitorParams().log_caps()


def _escaped(text: str) -> str:
    """Text with each undecodable byte shown as ``\\xff`` (and a lone surrogate as ``\\udXXX``):
    the raw bytes stay visible in a reject, and nothing downstream has to encode them."""
    if _BAD_TEXT.search(text) is None:
        return text
    return _BAD_TEXT.sub(lambda match: visible(match.group()), text)


def _bad_offset(text: str) -> int | None:
    """Byte offset (in the field's UTF-8 bytes) of its first undecodable byte, else None."""
    match = _BAD_TEXT.search(text)
    if match is None:
        return None
    return len(text[:match.start()].encode("utf-8", "surrogatepass"))


def _undecodable_reject(row: int, items: list[tuple[str, object]], sep: str = ",") -> dict | None:
    """The broken-row entry for a row with a field (or a JSON key) that is not valid UTF-8
    text, naming the field and byte offset, every value escaped; None for a clean row."""
    bad = next(((str(k), k) for k, _ in items if isinstance(k, str) and _BAD_TEXT.search(k)), None) or next(
        ((str(k), v) for k, v in items if isinstance(v, str) and _BAD_TEXT.search(v)), None)
    if bad is None:
        return None
    field_name, text = bad
    record = {_escaped(str(k)): _escaped(v) if isinstance(v, str) else v for k, v in items}
    return {**record, "row": row,
            "reason": f"invalid UTF-8 (field {_escaped(field_name)!r}, byte offset {_bad_offset(text)})",
            "raw": sep.join(_escaped(str(v)) for v in record.values())[:2000]}


def _undecodable(frame: pd.DataFrame, rows: list[int], sep: str = ",") -> tuple[pd.DataFrame, list[int], list[dict]]:
    """Split off the rows with a field that is not valid UTF-8 text: each becomes a broken row
    naming the field and byte offset, with every value escaped, so one hostile byte costs one row."""
    text = [c for c in frame.columns if frame[c].dtype == object]
    suspect = np.zeros(len(frame), dtype=bool)
    for column in text:
        suspect |= np.array([isinstance(v, str) and _BAD_TEXT.search(v) is not None for v in frame[column]],
                            dtype=bool)
    broken = [_undecodable_reject(rows[i], list(zip(frame.columns, frame.iloc[i].tolist())), sep)
              for i in np.flatnonzero(suspect)]
    keep = [r for r, s in zip(rows, suspect) if not s]
    return frame[~suspect].reset_index(drop=True), keep, broken


def _read_parquet(path: Path, caps: Caps) -> pd.DataFrame:
    """A Parquet file, its row count checked against the cap from the footer before any data is read.

    Parquet compresses inside the file, so the byte cap applies to the file itself. A string
    column holding invalid UTF-8 is re-read as binary and decoded like the text formats.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = path.stat().st_size
    if size > caps.max_bytes:
        raise LimitExceeded(f"{path}: {size:,} bytes is over the cap of {caps.max_bytes:,} (params "
                            f"{caps.bytes_param}; nothing read yet); raise {caps.bytes_param} if the file is genuine")
    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows > caps.max_rows:
        raise LimitExceeded(f"{path}: {parquet.metadata.num_rows:,} rows is over the cap of {caps.max_rows:,} "
                            f"(params {caps.rows_param}; nothing read yet); raise {caps.rows_param} if the file "
                            "is genuine")
    schema = parquet.schema_arrow
    binary = pa.schema([f.with_type(pa.binary()) if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                        else f for f in schema])
    frame = pq.read_table(path, schema=binary).to_pandas()
    for field_ in schema:
        if field_.name in frame.columns and binary.field(field_.name).type != field_.type:
            frame[field_.name] = pd.Series(
                [b.decode("utf-8", "surrogateescape") if isinstance(b, bytes) else b for b in frame[field_.name]],
                index=frame.index, dtype=object)
    return frame


def _read_json(path: Path, caps: Caps) -> tuple[pd.DataFrame, list[int], list[dict]]:
    """JSON Lines, one object per line, streamed through the caps. Bytes are decoded with
    surrogate escapes, so an invalid byte becomes a reject (:func:`_undecodable_reject`) instead
    of aborting the file."""
    records, rows, broken = [], [], []
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
                broken.append({"row": lineno, "reason": "unparseable JSON line",
                               "raw": _escaped(line.strip())[:2000]})
                continue
            undecodable = _undecodable_reject(lineno, list(record.items()))
            if undecodable is not None:
                broken.append({**undecodable, "raw": _escaped(line.strip())[:2000]})
                continue
            records.append(record)
            rows.append(lineno)
    return pd.DataFrame.from_records(records), rows, broken


def _damaged_header(path: Path, caps: Caps, sep: str) -> list[str] | None:
    """The header's column names, escaped, when it is not valid UTF-8 (pandas cannot build
    column names from surrogate escapes); None for a sound header."""
    with open_capped(path, caps, header_lines=1) as fh:
        line = fh.readline()
    try:
        line.decode("utf-8")
        return None
    except UnicodeDecodeError:
        text = line.decode("utf-8", "surrogateescape").rstrip("\r\n")
        return [_escaped(name) for name in next(csv.reader([text], delimiter=sep))]


def _read_csv(path: Path, caps: Caps, sep: str) -> tuple[pd.DataFrame, list[dict]]:
    """A (compressed) CSV streamed through the caps; undecodable bytes kept as surrogate escapes."""
    broken: list[dict] = []
    # dtype object, not str: pandas' str dtype cannot hold the surrogate escapes.
    options = dict(sep=sep, dtype=object, keep_default_na=False, encoding="utf-8",
                   encoding_errors="surrogateescape")
    names = _damaged_header(path, caps, sep)
    if names is not None:
        options.update(header=None, names=names, skiprows=1)
    try:
        with open_capped(path, caps, header_lines=1) as fh:
            return pd.read_csv(fh, **options), broken
    except pd.errors.ParserError:
        pass
    # A row with the wrong number of fields: re-read with the python
    # engine, which hands each bad line to us instead of failing.
    def keep(bad: list[str]) -> None:
        broken.append({"row": None, "reason": "wrong number of CSV fields",
                       "raw": _escaped(sep.join(bad))[:2000]})
    with open_capped(path, caps, header_lines=1) as fh:
        return pd.read_csv(fh, engine="python", on_bad_lines=keep, **options), broken


def read_file(path: Path, caps: Caps | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw rows of one file plus the lines that could not even be parsed or decoded.

    Returns ``(rows, broken)``; both carry ``source`` and ``row`` (1-based
    data row, or line number for JSON) so a reject can be traced back. A file
    over ``caps`` (decompressed bytes or rows, params monitor.logs) raises
    :class:`LimitExceeded`: a log that large is an incident, not a row problem.
    """
    caps = caps or _default_caps()
    fmt = file_format(path)
    broken: list[dict] = []
    if fmt == "parquet":
        frame = _read_parquet(path, caps)
        rows = list(range(1, len(frame) + 1))
    elif fmt == "json":
        frame, rows, broken = _read_json(path, caps)
    else:
        sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
        frame, broken = _read_csv(path, caps, sep)
        rows = list(range(1, len(frame) + 1))
    frame.columns = [_escaped(str(c)) for c in frame.columns]  # a damaged header name: its rows lack that column
    frame = frame.reset_index(drop=True)
    if fmt != "json":  # _read_json has already set aside every line with an undecodable value
        frame, rows, undecodable = _undecodable(frame, rows)
        broken.extend(undecodable)
    if fmt == "csv":  # every value is decodable text now: back to the str dtype CSV values had
        frame = frame.astype(str)
    # Our provenance columns win; a log's own columns of those names are kept aside.
    frame = frame.rename(columns={"source": "log_source", "row": "log_row"})
    frame.insert(0, "row", rows)
    frame.insert(0, "source", str(path))
    broken_frame = pd.DataFrame(broken)
    broken_frame = broken_frame.reindex(columns=["row", "reason", "raw", *[
        c for c in broken_frame.columns if c not in ("row", "reason", "raw", "source")]])
    broken_frame.insert(0, "source", str(path))
    return frame, broken_frame


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 to UTC; a naive time is taken as UTC, anything else becomes NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = pd.to_datetime(values)
        return ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    # Only ISO-looking strings: pandas would happily read "3" or "March 3".
    iso = text.str.match(r"^\d{4}-\d{2}-\d{2}", na=False)
    parsed = pd.to_datetime(text.where(iso), utc=True, format="ISO8601", errors="coerce")
    return parsed


def _as_binary(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(value as 0/1 float, present?, valid?) for a 0/1 column of any dtype."""
    text = values.astype("string").str.strip().str.lower()
    present = text.notna() & (text != "") & ~text.isin(["nan", "none", "null", "<na>"])
    one, zero = text.isin(_TRUE), text.isin(_FALSE)
    parsed = pd.Series(np.where(one, 1.0, np.where(zero, 0.0, np.nan)), index=values.index)
    return parsed, present, (~present) | one | zero


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column, or all-missing when the log has no such column."""
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _versions(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(model_version as stripped text, missing?)."""
    version = _column(frame, "model_version").astype("string").str.strip()
    return version, version.isna() | version.isin(["", "nan", "None", "null", "<NA>"])


def _scores(frame: pd.DataFrame) -> pd.Series:
    return pd.to_numeric(_column(frame, "score"), errors="coerce").astype(float)


def _needs_threshold(verdict_present: pd.Series, version_missing: pd.Series, score: pd.Series) -> pd.Series:
    """Rows flagged by their release's threshold: no verdict logged, a version and a valid score
    (rows without either are rejected for that, so they need no threshold)."""
    return ~verdict_present & ~version_missing & score.notna()


def validate(raw: pd.DataFrame, thresholds: Mapping[str, float] | None = None,
             default_threshold: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw log rows into clean rows and rejects (each with its reasons).

    Clean rows get ``timestamp`` (UTC), ``model_version`` (text), ``score``
    (float), ``verdict`` (0/1: logged, else ``score >= thresholds[version]``,
    else ``default_threshold``), ``label`` (0/1 or NaN)
    and ``url`` when logged.
    """
    thresholds = dict(thresholds or {})
    n = len(raw)
    reasons: list[list[str]] = [[] for _ in range(n)]

    def flag(mask: Iterable[bool], reason: str) -> None:
        for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
            reasons[i].append(reason)

    def column(name: str) -> pd.Series:
        return _column(raw, name)

    for name in REQUIRED:
        if name not in raw.columns:
            flag(np.ones(n, bool), f"missing column {name!r}")

    ts = parse_timestamps(column("timestamp")) if "timestamp" in raw.columns else pd.Series(
        pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    if "timestamp" in raw.columns:
        flag(ts.isna(), "unparseable timestamp")

    version, version_missing = _versions(raw)
    if "model_version" in raw.columns:
        flag(version_missing, "missing model_version")

    score = _scores(raw)
    if "score" in raw.columns:
        flag(score.isna(), "score missing or not a number")
        flag(score.notna() & ((score < 0) | (score > 1)), "score outside [0,1]")

    verdict, verdict_present, verdict_ok = _as_binary(column("verdict"))
    flag(~verdict_ok, "verdict not 0/1")
    label, _, label_ok = _as_binary(column("label"))
    flag(~label_ok, "label not 0/1")

    threshold = pd.to_numeric(version.astype(object).map(thresholds), errors="coerce").astype(float)
    if default_threshold is not None:
        threshold = threshold.fillna(float(default_threshold))
    needs_threshold = _needs_threshold(verdict_present, version_missing, score)
    for i in np.flatnonzero((needs_threshold & threshold.isna()).to_numpy()):
        reasons[i].append(f"no verdict and no threshold (model_version {version.iloc[i]})")
    derived = (score >= threshold).astype(float)
    verdict = verdict.where(verdict_present, derived)

    bad = np.array([bool(r) for r in reasons], dtype=bool)
    clean = pd.DataFrame({
        "timestamp": ts,
        "model_version": version.astype(object),
        "score": score,
        "verdict": verdict,
        "label": label,
    }, index=raw.index)
    if "url" in raw.columns:
        clean["url"] = raw["url"]
    clean = clean[~bad].reset_index(drop=True)
    clean["verdict"] = clean["verdict"].astype(np.int8)

    rejects = raw[bad].copy()
    rejects["reason"] = ["; ".join(r) for r, b in zip(reasons, bad) if b]
    return clean, _reject_frame(rejects)


def _reject_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Rejects with the known columns first, all as text (they failed to parse)."""
    out = frame.reindex(columns=[*REJECT_COLUMNS, *[c for c in frame.columns if c not in REJECT_COLUMNS]])
    return out.astype(object).where(out.notna(), None).reset_index(drop=True)


@dataclass
class RawLog:
    """The log as read, before validation: one frame per file, plus its unparseable lines."""

    frames: list[pd.DataFrame]
    broken: list[pd.DataFrame]
    files: list[str]


def read(path: Path | str, exclude: Iterable[Path | str] = (), caps: Caps | None = None) -> RawLog:
    """Read every log file under ``path`` (minus ``exclude``), unvalidated, each under ``caps``."""
    files = discover_files(path, exclude)
    frames, broken = zip(*(read_file(file, caps) for file in files))
    return RawLog(list(frames), list(broken), [str(f) for f in files])


def versions_without_verdict(raw: RawLog) -> dict[str, int]:
    """``{model_version: rows}`` of the rows that name a version but log no verdict:
    the versions whose threshold is needed to flag them."""
    counts: dict[str, int] = {}
    for frame in raw.frames:
        version, missing = _versions(frame)
        _, present, _ = _as_binary(_column(frame, "verdict"))
        for name, n in version[_needs_threshold(present, missing, _scores(frame))].value_counts().items():
            counts[str(name)] = counts.get(str(name), 0) + int(n)
    return counts


def validate_log(raw: RawLog, thresholds: Mapping[str, float] | None = None,
                 default_threshold: float | None = None) -> PredictionLog:
    """Validate the rows of every file; rejects keep their file and row."""
    clean_parts, reject_parts = [], []
    for frame, broken in zip(raw.frames, raw.broken):
        clean, rejects = validate(frame, thresholds, default_threshold)
        clean_parts.append(clean)
        reject_parts.extend([_reject_frame(broken), rejects])
    rows = pd.concat(clean_parts, ignore_index=True) if clean_parts else pd.DataFrame()
    rows = rows.sort_values("timestamp", kind="stable").reset_index(drop=True)
    rejects = pd.concat([r for r in reject_parts if len(r)], ignore_index=True) if any(
        len(r) for r in reject_parts) else _reject_frame(pd.DataFrame(columns=REJECT_COLUMNS))
    return PredictionLog(rows=rows, rejects=rejects, files=raw.files)


def load(path: Path | str, thresholds: Mapping[str, float] | None = None,
         default_threshold: float | None = None,
         exclude: Iterable[Path | str] = (), caps: Caps | None = None) -> PredictionLog:
    """Read every log file under ``path`` (minus ``exclude``) and validate the rows."""
    return validate_log(read(path, exclude, caps), thresholds, default_threshold)
