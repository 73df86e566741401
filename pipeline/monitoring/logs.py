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

import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict

import numpy as np
import pandas as pd

from pipeline.bounded_io import Caps
from pipeline.monitoring import config, sql, staging
from pipeline.monitoring.engine_duckdb import DuckDBEngine
from pipeline.monitoring.engine_spark import LOCAL_MASTER, SparkEngine
from pipeline.monitoring.staging import file_format
from pipeline.monitoring.windows import WindowSpec, parse_window

REQUIRED, OPTIONAL = sql.REQUIRED, sql.OPTIONAL
REJECT_COLUMNS = ["source", "row", "reason", *REQUIRED, *OPTIONAL, "raw"]
REJECT_CAP = staging.REJECT_CAP
AGGREGATE_COLUMNS = ["window_us", "version", "bin", "verdict", "label", "n"]
ENGINES = ("duckdb", "spark")
Resolve = Callable[[dict[str, int]], Mapping[str, float]]  # {version: rows without a verdict} -> thresholds


class Engine(Protocol):
    """What runs the shared SQL: :class:`DuckDBEngine` or :class:`SparkEngine`."""

    def register_input(self, index: int, item: staging.Input, known: tuple[str, ...]) -> dict[str, str]: ...

    def register_thresholds(self, thresholds: Mapping[str, float]) -> None: ...

    def query(self, statement: str) -> pd.DataFrame: ...

    def close(self) -> None: ...


class InputSummary(TypedDict):
    """monitor.json's ``input``: what was read, what was kept, what was rejected and why."""

    files: list[str]
    rows_read: int
    rows_valid: int
    rows_rejected: int
    rejects_by_reason: dict[str, int]
    rejects_file: str
    rejects_written: int
    first_timestamp: str | None
    last_timestamp: str | None
    labelled_rows: int


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
    thresholds: dict[str, float] = field(default_factory=dict)

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

    def summary(self, rejects_file: str = "rejects.csv") -> InputSummary:
        """What was read, what was kept, what was rejected and why."""
        return {
            "files": self.files,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_rejected": self.rows_rejected,
            "rejects_by_reason": self.reject_reasons(),
            "rejects_file": rejects_file,
            "rejects_written": len(self.rejects),
            "first_timestamp": _iso(self.first_us),
            "last_timestamp": _iso(self.last_us),
            "labelled_rows": self.labelled_rows,
        }


def _iso(micros: int | None) -> str | None:
    return None if micros is None else pd.Timestamp(micros, unit="us", tz="UTC").isoformat()


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


def open_engine(name: str = ENGINES[0], master: str = LOCAL_MASTER) -> Engine:
    """The engine that runs the shared SQL: ``duckdb`` (embedded) or ``spark`` (``master``)."""
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        try:
            return SparkEngine(master)
        except ImportError as exc:
            raise ValueError(f"--engine spark needs pyspark: `make install` adds it (hash-locked, requirements/dev.lock) "
                             f"({exc})") from None
        except Exception as exc:  # noqa: BLE001 - pyspark raises its own error types when the JVM cannot start
            raise ValueError(f"Spark did not start on master {master!r} (it needs Java 17: `make java`): "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    raise ValueError(f"unknown engine {name!r} (expected one of {', '.join(ENGINES)})")


def _reject_text(frame: pd.DataFrame, sources: list[str]) -> pd.DataFrame:
    """Rejected rows from the SQL as text, the way they were logged (typed values formatted here,
    so the two engines' own number and time formatting never shows)."""
    def first(text: pd.Series, typed: pd.Series, fmt: Callable[[Any], str]) -> list[str | None]:
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


def scan(engine: Engine, staged: staging.Staged, window: WindowSpec, resolve: Resolve | None = None,
         reject_cap: int = REJECT_CAP, with_rows: bool = False) -> PredictionLog:
    """Run the shared SQL on registered inputs: thresholds first (``resolve`` gets the rows
    without a verdict per version), then the one aggregating pass, then the capped rejects."""
    inputs, broken = staged.inputs, staged.broken
    files = [sql.LogFile(i, engine.register_input(i, item, item.present or staging.KNOWN)) for i, item in enumerate(inputs)]
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


def _int_or_none(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def fixed_thresholds(thresholds: Mapping[str, float] | None = None,
                     default: float | None = None) -> Resolve:
    """Resolve rows without a verdict at ``thresholds[version]``, else at ``default``."""
    def resolve(needed: dict[str, int]) -> dict[str, float]:
        given = dict(thresholds or {})
        if default is not None:
            given.update({v: float(default) for v in needed if v not in given})
        return given
    return resolve


def load(path: Path | str, thresholds: Mapping[str, float] | None = None,
         default_threshold: float | None = None, exclude: Iterable[Path | str] = (),
         caps: Caps | None = None, *, window: WindowSpec | None = None, engine: Engine | None = None,
         resolve: Resolve | None = None,
         reject_cap: int = REJECT_CAP, with_rows: bool = True, sort_rows: bool = True) -> PredictionLog:
    """Read every log file under ``path`` (minus ``exclude``, each under ``caps``) and validate it.

    Rows without a verdict are flagged at ``thresholds[version]``, else ``default_threshold``
    (or whatever ``resolve`` returns for the versions that need one). ``with_rows`` also
    returns the valid rows, for small logs; the monitor itself uses only the counts.
    ``caps`` and ``window`` not given are params.yaml's.
    """
    if caps is None or window is None:
        params = config.defaults()
        caps = caps or params.log_caps()
        window = window or parse_window(params.window)
    resolve = resolve or fixed_thresholds(thresholds, default_threshold)
    owned = engine is None
    engine = engine or open_engine("duckdb")
    try:
        with tempfile.TemporaryDirectory(prefix="monitor-staging-") as workdir:
            if is_uri(str(path)):  # read in place by Spark's executors: a file or a directory, never a pattern
                staged = staging.Staged([staging.Input(str(path), staging.literal_path(str(path)), False)])
            else:
                staged = staging.stage(discover_files(path, exclude), caps, Path(workdir), reject_cap)
            log = scan(engine, staged, window, resolve, reject_cap, with_rows)
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
    assert log.rows is not None, "load(with_rows=True) keeps the rows"
    return log.rows.drop(columns="url"), log.rejects


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _json_line(record: dict) -> str:
    return json.dumps(record, default=str) + "\n"


def aggregate_rows(rows: pd.DataFrame, window: WindowSpec) -> pd.DataFrame:
    """Validated rows (timestamp, model_version, score, verdict, label) counted by the shared SQL,
    as the engines count a log: one aggregation, whichever the input."""
    frame = pd.DataFrame({"log_row_": np.arange(1, len(rows) + 1), "timestamp": rows["timestamp"],
                          "model_version": rows["model_version"].astype(str), "score": rows["score"].astype(float),
                          "verdict": rows["verdict"].astype(np.int64),
                          "label": rows["label"].astype(float) if "label" in rows else np.nan})
    engine = DuckDBEngine()
    try:
        files = [sql.LogFile(0, engine.register_frame(0, frame, sql.REQUIRED + sql.OPTIONAL))]
        engine.register_thresholds({})
        agg = engine.query(sql.aggregate_sql(files, window))
    finally:
        engine.close()
    bad = agg[agg["reasons"] != ""]
    if len(bad):
        raise ValueError(f"rows that do not validate: {dict(zip(bad['reasons'], bad['n']))}")
    return sql.decode(agg)
