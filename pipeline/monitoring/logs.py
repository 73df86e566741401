"""Read and validate the product's prediction log.

The log is one file or a directory of files (CSV, JSON Lines or Parquet,
optionally compressed), one row per scored URL. A monitoring verdict is only
as good as its input, so a row that cannot be used is never dropped quietly:
it goes to the rejects table with the reason, and the report counts it.
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

REQUIRED = ("timestamp", "model_version", "score")
OPTIONAL = ("verdict", "url", "label")
COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet"}
REJECT_COLUMNS = ["source", "row", "reason", *REQUIRED, *OPTIONAL, "raw"]
_TRUE = {"1", "1.0", "true", "t", "yes"}
_FALSE = {"0", "0.0", "false", "f", "no"}


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
    if suffixes and suffixes[-1] in (*COMPRESSIONS, ".zst", ".zip"):
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


def _open_text(path: Path):
    opener = COMPRESSIONS.get(path.suffix.lower())
    if opener is not None:
        return opener(path, "rt", encoding="utf-8", errors="replace")
    if path.suffix.lower() == ".zst":  # pragma: no cover - needs the optional zstandard package
        import zstandard
        return io.TextIOWrapper(zstandard.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_file(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw rows of one file plus the lines that could not even be parsed.

    Returns ``(rows, broken)``; both carry ``source`` and ``row`` (1-based
    data row, or line number for JSON) so a reject can be traced back.
    """
    fmt = file_format(path)
    broken: list[dict] = []
    if fmt == "parquet":
        frame = pd.read_parquet(path)
        rows = list(range(1, len(frame) + 1))
    elif fmt == "json":
        records, rows = [], []
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise ValueError("not an object")
                except ValueError:
                    broken.append({"row": lineno, "reason": "unparseable JSON line",
                                   "raw": line.strip()[:2000]})
                    continue
                records.append(record)
                rows.append(lineno)
        frame = pd.DataFrame.from_records(records)
    else:
        sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
        try:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
        except pd.errors.ParserError:
            # A row with the wrong number of fields: re-read with the python
            # engine, which hands each bad line to us instead of failing.
            def keep(bad: list[str]) -> None:
                broken.append({"row": None, "reason": "wrong number of CSV fields",
                               "raw": sep.join(bad)[:2000]})
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False,
                                engine="python", on_bad_lines=keep)
        rows = list(range(1, len(frame) + 1))
    frame = frame.reset_index(drop=True)
    # Our provenance columns win; a log's own columns of those names are kept aside.
    frame = frame.rename(columns={"source": "log_source", "row": "log_row"})
    frame.insert(0, "row", rows)
    frame.insert(0, "source", str(path))
    broken_frame = pd.DataFrame(broken, columns=["row", "reason", "raw"])
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

    score = pd.to_numeric(column("score"), errors="coerce").astype(float)
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
    needs_threshold = ~verdict_present & ~version_missing & score.notna()
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


def read(path: Path | str, exclude: Iterable[Path | str] = ()) -> RawLog:
    """Read every log file under ``path`` (minus ``exclude``), unvalidated."""
    files = discover_files(path, exclude)
    frames, broken = zip(*(read_file(file) for file in files))
    return RawLog(list(frames), list(broken), [str(f) for f in files])


def versions_without_verdict(raw: RawLog) -> dict[str, int]:
    """``{model_version: rows}`` of the rows that name a version but log no verdict:
    the versions whose threshold is needed to flag them."""
    counts: dict[str, int] = {}
    for frame in raw.frames:
        version, missing = _versions(frame)
        _, present, _ = _as_binary(_column(frame, "verdict"))
        for name, n in version[~missing & ~present].value_counts().items():
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
         exclude: Iterable[Path | str] = ()) -> PredictionLog:
    """Read every log file under ``path`` (minus ``exclude``) and validate the rows."""
    return validate_log(read(path, exclude), thresholds, default_threshold)
