"""Read and validate the product's prediction log, streaming, on DuckDB or Spark.

The log is one file or a directory of files (CSV, JSON Lines or Parquet, optionally
compressed), one row per scored URL. Nothing holds the rows: ``staging`` streams text logs
into Parquet, the engine scans them once with the shared SQL of ``sql`` and returns counts
per (window, model version, score bin, verdict, label), the reject counts per reason and the
first ``reject_cap`` rejected rows. A row that cannot be used is never dropped quietly: it is
counted with its reason, and the report says when ``rejects.csv`` holds only the first ones.
A directory is listed here (``discover_files``), never by an engine: DuckDB and Spark would read
a name with glob characters as a pattern, so each file reaches them under a name staging chose.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.bounded_io import DECOMPRESSORS, Caps
from pipeline.monitoring import sql, staging

REQUIRED, OPTIONAL = sql.REQUIRED, sql.OPTIONAL
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".ndjson": "json", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet"}
REJECT_COLUMNS = ["source", "row", "reason", *REQUIRED, *OPTIONAL, "raw"]
REJECT_CAP = staging.REJECT_CAP
AGGREGATE_COLUMNS = ["window_us", "version", "bin", "verdict", "label", "n"]
ENGINES = ("duckdb", "spark")


@dataclass
class PredictionLog:
    """What a scan found: counts of the valid rows, rejects (counted all, kept up to a cap)."""

    files: list[str]
    aggregates: pd.DataFrame          # AGGREGATE_COLUMNS, valid rows only
    reject_counts: dict[str, int]     # the full reason text of a rejected row -> rows
    rejects: pd.DataFrame             # REJECT_COLUMNS, the first rejected rows in file and row order
    first_us: int | None = None
    last_us: int | None = None
    rows: pd.DataFrame | None = None  # the valid rows themselves, only when asked for (small logs)
    thresholds: dict = field(default_factory=dict)

    @property
    def rows_valid(self) -> int:
        return int(self.aggregates["n"].sum()) if len(self.aggregates) else 0

    @property
    def rows_rejected(self) -> int:
        return int(sum(self.reject_counts.values()))

    @property
    def rows_read(self) -> int:
        return self.rows_valid + self.rows_rejected

    @property
    def rejects_capped(self) -> bool:
        return len(self.rejects) < self.rows_rejected

    @property
    def labelled_rows(self) -> int:
        agg = self.aggregates
        return int(agg.loc[agg["label"].notna(), "n"].sum()) if len(agg) else 0

    def reject_reasons(self) -> dict[str, int]:
        """How many rows were rejected for each reason (a row may have several)."""
        counts: dict[str, int] = {}
        for reasons, n in self.reject_counts.items():
            for reason in str(reasons).split("; "):
                key = reason.split(" (")[0]
                counts[key] = counts.get(key, 0) + n
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def file_format(path: Path) -> str | None:
    """'csv', 'json' or 'parquet' from the suffixes (compression suffix ignored)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (*DECOMPRESSORS, ".zst", ".zip"):
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


def is_uri(path: str) -> bool:
    """An object-store or HDFS location (``s3a://``, ``gs://``, ``abfss://``...): Spark reads it."""
    return "://" in str(path)


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
    from pipeline.monitoring.config import (
        MonitorParams,  # config is the one home of the defaults
    )
    return MonitorParams().log_caps()


def open_engine(name: str = "duckdb", master: str = "local[2]"):
    """The engine that runs the shared SQL: ``duckdb`` (embedded) or ``spark`` (``master``)."""
    if name == "duckdb":
        from pipeline.monitoring.engine_duckdb import DuckDBEngine
        return DuckDBEngine()
    if name == "spark":
        try:
            from pipeline.monitoring.engine_spark import SparkEngine
            return SparkEngine(master)
        except ImportError as exc:
            raise ValueError(f"--engine spark needs pyspark: `make install` adds it (hash-locked, requirements/dev.lock) "
                             f"({exc})") from None
        except Exception as exc:  # pyspark raises its own error types when the JVM cannot start
            raise ValueError(f"Spark did not start on master {master!r} (it needs Java 17: `make java`): "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    raise ValueError(f"unknown engine {name!r} (expected one of {', '.join(ENGINES)})")


def _reject_text(frame: pd.DataFrame, sources: list[str]) -> pd.DataFrame:
    """Rejected rows from the SQL as text, the way they were logged (typed values formatted here,
    so the two engines' own number and time formatting never shows)."""
    def first(text, typed, fmt):
        return [t if not pd.isna(t) else (None if pd.isna(v) else fmt(v)) for t, v in zip(text, typed)]

    out = pd.DataFrame({
        "source": [sources[int(i)] for i in frame["src"]],
        "row": frame["row_no"].astype("int64"),
        "reason": frame["reasons"],
        "timestamp": first(frame["ts_text"], frame["ts_typed"],
                           lambda us: pd.Timestamp(int(us), unit="us", tz="UTC").isoformat()),
        "model_version": frame["version_raw"],
        "score": first(frame["score_text"], frame["score_num"], repr),
        "verdict": frame["verdict_raw"],
        "url": frame["url"],
        "label": frame["label_raw"],
        "raw": None,
    })
    return out.astype(object).where(out.notna(), None)


def _merge_rejects(sql_rejects: pd.DataFrame, broken: list[dict], sources: list[str], cap: int) -> pd.DataFrame:
    """Broken lines (staging) and SQL rejects in one table, by file then row, the first ``cap``."""
    parts = [_reject_text(sql_rejects, sources)] if len(sql_rejects) else []
    if broken:
        frame = pd.DataFrame(broken)
        frame.insert(0, "source", [sources[i] for i in frame.pop("src")])
        parts.append(frame)
    if not parts:
        return pd.DataFrame(columns=REJECT_COLUMNS)
    out = pd.concat(parts, ignore_index=True).reindex(columns=REJECT_COLUMNS)
    out["_src"] = out["source"].map({s: i for i, s in enumerate(sources)})
    out = out.sort_values(["_src", "row"], kind="stable").drop(columns="_src").head(cap)
    return out.astype(object).where(out.notna(), None).reset_index(drop=True)


def _valid_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "timestamp": pd.to_datetime(frame["ts_us"].astype("int64"), unit="us", utc=True),
        "model_version": frame["model_version"].astype(object),
        "score": frame["score"].astype(float),
        "verdict": frame["verdict"].astype(np.int8),
        "label": frame["label"].astype(float),
        "url": frame["url"].astype(object),
    })


def scan(engine, staged: staging.Staged, window,
         resolve: Callable[[dict[str, int]], Mapping[str, float]] | None = None,
         reject_cap: int = REJECT_CAP, with_rows: bool = False) -> PredictionLog:
    """Run the shared SQL on registered inputs: thresholds first (``resolve`` gets the rows
    without a verdict per version), then the one aggregating pass, then the capped rejects."""
    inputs, broken = staged.inputs, staged.broken
    files = [sql.LogFile(i, engine.register(i, item, item.present or staging.KNOWN)) for i, item in enumerate(inputs)]
    sources = [item.source for item in inputs]
    engine.register_thresholds({})
    needed = engine.query(sql.needs_threshold_sql(files))
    thresholds = dict(resolve({str(v): int(n) for v, n in zip(needed["version"], needed["n"])}) if resolve else {})
    engine.register_thresholds(thresholds)
    agg = engine.query(sql.aggregate_sql(files, window))
    valid = agg["reasons"] == ""
    counts = agg[~valid].groupby("reasons")["n"].sum()
    reject_counts = {str(r): int(n) for r, n in counts.items()}
    for reason, n in staged.counts.items():
        reject_counts[reason] = reject_counts.get(reason, 0) + n
    aggregates = sql.decode(agg[valid]).reindex(columns=AGGREGATE_COLUMNS).reset_index(drop=True)
    sql_rejects = engine.query(sql.rejects_sql(files, reject_cap)) if (~valid).any() else pd.DataFrame()
    log = PredictionLog(sources, aggregates, reject_counts, _merge_rejects(sql_rejects, broken, sources, reject_cap),
                        first_us=_int_or_none(agg.loc[valid, "first_us"].min()),
                        last_us=_int_or_none(agg.loc[valid, "last_us"].max()), thresholds=thresholds)
    if with_rows:
        log.rows = _valid_rows(engine.query(sql.rows_sql(files)))
    return log


def _int_or_none(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def load(path: Path | str, thresholds: Mapping[str, float] | None = None,
         default_threshold: float | None = None, exclude: Iterable[Path | str] = (),
         caps: Caps | None = None, *, window=None, engine=None,
         resolve: Callable[[dict[str, int]], Mapping[str, float]] | None = None,
         reject_cap: int = REJECT_CAP, with_rows: bool = True, sort_rows: bool = True) -> PredictionLog:
    """Read every log file under ``path`` (minus ``exclude``, each under ``caps``) and validate it.

    Rows without a verdict are flagged at ``thresholds[version]``, else ``default_threshold``
    (or whatever ``resolve`` returns for the versions that need one). ``with_rows`` also
    returns the valid rows, for small logs; the monitor itself uses only the counts.
    """
    from pipeline.monitoring.analysis import parse_window

    caps = caps or _default_caps()
    if resolve is None:
        def resolve(needed: dict[str, int]) -> dict[str, float]:
            given = dict(thresholds or {})
            if default_threshold is not None:
                given.update({v: float(default_threshold) for v in needed if v not in given})
            return given
    owned = engine is None
    engine = engine or open_engine("duckdb")
    try:
        with tempfile.TemporaryDirectory(prefix="monitor-staging-") as workdir:
            if is_uri(str(path)):  # read in place by Spark's executors: a file or a directory, never a pattern
                staged = staging.Staged([staging.Input(str(path), staging.literal_path(str(path)), False)])
            else:
                staged = staging.stage(discover_files(path, exclude), caps, Path(workdir), reject_cap)
            log = scan(engine, staged, window or parse_window("7D"), resolve,
                       reject_cap, with_rows)
    finally:
        if owned:
            engine.close()
    if log.rows is not None and sort_rows:
        log.rows = log.rows.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return log


def validate(raw: pd.DataFrame, thresholds: Mapping[str, float] | None = None,
             default_threshold: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split in-memory raw log rows (as logged: text or numbers) into clean rows and rejects,
    through the same staging and SQL as a file."""
    with tempfile.TemporaryDirectory(prefix="monitor-frame-") as workdir:
        path = Path(workdir) / "frame.jsonl"
        path.write_text("".join(pd.Series([{k: v for k, v in r.items() if _present(v)}
                                           for r in raw.to_dict("records")]).map(_json_line)))
        log = load(path, thresholds, default_threshold, caps=Caps(1 << 40, 1 << 40, "-", "-"), sort_rows=False)
    return log.rows.drop(columns="url"), log.rejects


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _json_line(record: dict) -> str:
    import json
    return json.dumps(record, default=str) + "\n"
