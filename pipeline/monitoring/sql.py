"""The monitor's one SQL definition: validation and aggregation, run unchanged by DuckDB and Spark.

Written in the subset the two engines evaluate identically, so a log gives the same
numbers on a laptop and on a cluster:

* time is integer arithmetic on epoch microseconds; text timestamps are cut up with
  ``regexp_extract`` and ``TRY_CAST`` (no engine date parser, no session time zone);
* regular expressions use ``[0-9]`` and ``[.]``, never a backslash (the two SQL parsers
  unescape string literals differently);
* integer division only on small non-negative numbers, as ``CAST(FLOOR(a / b) AS BIGINT)``,
  and the floor modulo as ``((a % b) + b) % b`` (both engines truncate ``%``).

The two names DuckDB lacks, ``unix_micros`` (typed Parquet timestamps) and ``timestamp_micros``
(calendar months), the DuckDB engine defines as macros. The engines only register their inputs (views ``log_<i>`` with a 1-based
``log_row_``, a ``thresholds`` table) and run these statements: ``engine_duckdb``, ``engine_spark``.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.monitoring.windows import DAY_US, HOUR_US, ORIGIN_US, WindowSpec

SCORE_BINS = 10_000  # a score is counted in bin round(score * 10_000): scores to 4 decimals
_TS = ("^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.]([0-9]{1,9}))?)?)?"
       "(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?$")
_NUMBER = "^[+-]?(?:[0-9]+[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?[0-9]+)?$"
_MISSING = "('', 'nan', 'none', 'null', '<na>')"
_TRUE = "('1', '1.0', 'true', 't', 'yes')"
_FALSE = "('0', '0.0', 'false', 'f', 'no')"
REQUIRED = ("timestamp", "model_version", "score")
OPTIONAL = ("verdict", "url", "label")


@dataclass(frozen=True)
class LogFile:
    """One registered input: its index (view ``log_<index>``) and the kind of each known column
    it has: ``string``, ``number``, ``bool`` or ``timestamp`` (typed Parquet columns)."""

    index: int
    kinds: dict[str, str]

    @property
    def view(self) -> str:
        return f"log_{self.index}"


def _div(a: str, b: int) -> str:
    """Integer quotient of a small non-negative expression (exact in a double)."""
    return f"CAST(FLOOR(({a}) / {b}) AS BIGINT)"


def _floor_to(a: str, step: int) -> str:
    """``a`` rounded down to a multiple of ``step`` (correct for negative ``a`` too)."""
    return f"(({a}) - (((({a}) % {step}) + {step}) % {step}))"


def _int(text: str) -> str:
    return f"TRY_CAST(NULLIF({text}, '') AS BIGINT)"


def _days_from_civil(y: str, m: str, d: str) -> str:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, years >= 1)."""
    yy = f"(({y}) - CASE WHEN ({m}) <= 2 THEN 1 ELSE 0 END)"
    era = _div(yy, 400)
    yoe = f"({yy} - {era} * 400)"
    doy = f"({_div(f'153 * (({m}) + CASE WHEN ({m}) > 2 THEN -3 ELSE 9 END) + 2', 5)} + ({d}) - 1)"
    doe = f"({yoe} * 365 + {_div(yoe, 4)} - {_div(yoe, 100)} + {doy})"
    return f"({era} * 146097 + {doe} - 719468)"


def _text_ts_columns(text: str) -> str:
    """The pieces of a trimmed ISO 8601 text timestamp ``text`` by position (one regular
    expression checks the shape; fraction and zone are found with instr, not more matching)."""
    time = f"substr({text}, 11, 1) IN ('T', ' ')"
    tail = f"substr({text}, 11)"
    zone_at = f"greatest(instr({tail}, 'Z'), instr({tail}, '+'), instr({tail}, '-'))"
    end = f"CASE WHEN {zone_at} > 0 THEN 10 + {zone_at} ELSE length({text}) + 1 END"
    return ", ".join([
        f"regexp_extract({text}, '{_TS}', 0) <> '' AS t_ok",
        f"substr({text}, 1, 4) AS t_y", f"substr({text}, 6, 2) AS t_mo", f"substr({text}, 9, 2) AS t_d",
        f"CASE WHEN {time} THEN substr({text}, 12, 2) ELSE '' END AS t_h",
        f"CASE WHEN {time} THEN substr({text}, 15, 2) ELSE '' END AS t_mi",
        f"CASE WHEN {time} AND substr({text}, 17, 1) = ':' THEN substr({text}, 18, 2) ELSE '' END AS t_s",
        f"CASE WHEN {time} AND substr({text}, 20, 1) = '.' THEN substr({text}, 21, {end} - 21) ELSE '' END AS t_frac",
        f"CASE WHEN {zone_at} > 0 THEN substr({tail}, {zone_at}) ELSE '' END AS t_zone",
    ])


def _text_ts_micros() -> str:
    """Epoch microseconds from the t_* pieces, NULL when any is out of range."""
    y, mo, d = _int("t_y"), _int("t_mo"), _int("t_d")
    h, mi, s = (f"COALESCE({_int(f't_{p}')}, 0)" for p in ("h", "mi", "s"))
    padded = "rpad(substr(t_frac, 1, 6), 6, '0')"
    frac = f"COALESCE({_int(padded)}, 0)"
    zone_h = f"COALESCE({_int('substr(t_zone, 2, 2)')}, 0)"
    zone_m = f"COALESCE({_int('substr(t_zone, length(t_zone) - 1, 2)')} * CASE WHEN length(t_zone) > 3 THEN 1 ELSE 0 END, 0)"
    sign = "CASE WHEN substr(t_zone, 1, 1) = '-' THEN -1 ELSE 1 END"
    leap = f"CASE WHEN ({y} % 4 = 0 AND {y} % 100 <> 0) OR {y} % 400 = 0 THEN 1 ELSE 0 END"
    month_days = (f"CASE WHEN {mo} = 2 THEN 28 + {leap} WHEN {mo} IN (4, 6, 9, 11) THEN 30 ELSE 31 END")
    ok = (f"{y} BETWEEN 1678 AND 2261 AND {mo} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {month_days} "
          f"AND {h} <= 23 AND {mi} <= 59 AND {s} <= 59 AND {zone_h} <= 23 AND {zone_m} <= 59")
    micros = (f"{_days_from_civil(y, mo, d)} * {DAY_US} + {h} * {HOUR_US} + {mi} * 60000000 + {s} * 1000000 "
              f"+ {frac} - {sign} * ({zone_h} * 60 + {zone_m}) * 60000000")
    return f"CASE WHEN t_ok AND {ok} THEN {micros} END"


def _binary(col: str) -> tuple[str, str]:
    """(0/1/NULL value, 'present but not 0/1' flag) of a verdict or label column."""
    text = f"lower(TRIM(CAST({col} AS STRING)))"
    value = f"CASE WHEN {text} IN {_TRUE} THEN 1 WHEN {text} IN {_FALSE} THEN 0 END"
    bad = f"({col} IS NOT NULL AND {text} NOT IN {_MISSING} AND {text} NOT IN {_TRUE} AND {text} NOT IN {_FALSE})"
    return value, bad


def _missing_reasons(kinds: dict[str, str]) -> str:
    reasons = [f"concat('missing column ', chr(39), '{name}', chr(39))" for name in REQUIRED if name not in kinds]
    if not reasons:
        return "CAST(NULL AS STRING)"
    return f"concat_ws('; ', {', '.join(reasons)})"


def _file_select(log: LogFile) -> str:
    """One file's rows in the common shape; a missing known column reads as NULL."""
    kinds = log.kinds

    def text(name: str) -> str:
        return f"CAST({name} AS STRING)" if name in kinds else "CAST(NULL AS STRING)"

    typed_ts = kinds.get("timestamp") == "timestamp"
    typed_score = kinds.get("score") in ("number", "bool")
    if typed_score:
        score = "CAST(score AS DOUBLE)"
    else:
        trimmed = f"TRIM({text('score')})"
        score = f"CASE WHEN regexp_extract({trimmed}, '{_NUMBER}', 0) <> '' THEN TRY_CAST({trimmed} AS DOUBLE) END"
    flags = ", ".join(f"{'true' if name in kinds else 'false'} AS has_{name}" for name in REQUIRED)
    return (f"SELECT {log.index} AS src, log_row_ AS row_no, {_missing_reasons(kinds)} AS missing, {flags}, "
            f"{'unix_micros(timestamp)' if typed_ts else 'CAST(NULL AS BIGINT)'} AS ts_typed, "
            f"{'CAST(NULL AS STRING)' if typed_ts else text('timestamp')} AS ts_text, "
            f"{text('model_version')} AS version_raw, "
            f"CASE WHEN isnan({score}) THEN NULL ELSE {score} END AS score_num, "
            f"{'CAST(NULL AS STRING)' if typed_score else text('score')} AS score_text, "
            f"{text('verdict')} AS verdict_raw, {text('label')} AS label_raw, {text('url')} AS url "
            f"FROM {log.view}")


def checked(files: list[LogFile]) -> str:
    """CTEs ending in ``checked``: every row with its parsed fields and its reasons ('' = valid).

    Reasons and their order are the ones ``logs`` has always given; the threshold of a row
    without a verdict comes from the registered ``thresholds(version, threshold)`` table.
    """
    union = " UNION ALL ".join(_file_select(f) for f in files)
    version_missing = f"(version IS NULL OR lower(version) IN {_MISSING})"
    verdict, verdict_bad = _binary("verdict_raw")
    label, label_bad = _binary("label_raw")
    verdict_present = f"(verdict_raw IS NOT NULL AND lower(TRIM(verdict_raw)) NOT IN {_MISSING})"
    checks = [  # (condition, reason), in the order reasons have always been listed
        ("missing IS NOT NULL", "missing"),
        ("has_timestamp AND ts_us IS NULL", "'unparseable timestamp'"),
        ("has_model_version AND version IS NULL", "'missing model_version'"),
        ("has_score AND score_num IS NULL", "'score missing or not a number'"),
        ("has_score AND (score_num < 0 OR score_num > 1)", "'score outside [0,1]'"),
        ("verdict_bad", "'verdict not 0/1'"),
        ("label_bad", "'label not 0/1'"),
        ("needs_threshold AND threshold IS NULL", "concat('no verdict and no threshold (model_version ', version, ')')"),
    ]
    bad = " OR ".join(f"COALESCE({condition}, false)" for condition, _ in checks)
    reasons = ", ".join(f"CASE WHEN {condition} THEN {reason} END" for condition, reason in checks)
    return f"""
raw_rows AS ({union}),
trimmed AS (SELECT *, TRIM(version_raw) AS version, TRIM(ts_text) AS ts_trim FROM raw_rows),
pieces AS (SELECT *, {_text_ts_columns('ts_trim')} FROM trimmed),
parsed AS (
  SELECT src, row_no, missing, has_timestamp, has_model_version, has_score, ts_text, version_raw, score_num,
         score_text, verdict_raw, label_raw, url, ts_typed,
         CASE WHEN {version_missing} THEN NULL ELSE version END AS version,
         COALESCE(ts_typed, {_text_ts_micros()}) AS ts_us,
         {verdict} AS verdict_logged, {verdict_bad} AS verdict_bad, {verdict_present} AS verdict_present,
         {label} AS label, {label_bad} AS label_bad
  FROM pieces),
judged AS (
  SELECT p.*, t.threshold,
         (NOT p.verdict_present AND p.version IS NOT NULL AND p.score_num IS NOT NULL) AS needs_threshold
  FROM parsed p LEFT JOIN thresholds t ON p.version = t.version),
checked AS (
  SELECT *,
    CASE WHEN {bad} THEN concat_ws('; ', {reasons}) ELSE '' END AS reasons,
    COALESCE(verdict_logged, CASE WHEN score_num >= threshold THEN 1 ELSE 0 END) AS verdict
  FROM judged)"""


def window_start(spec: WindowSpec) -> tuple[str, str]:
    """(extra CTEs, expression) for the start of the window of ``ts_us``, in epoch microseconds.

    Hours and days count from 1970-01-05 (a Monday);
    months are calendar months, from ``year``/``month`` of ``timestamp_micros(ts_us)`` (UTC:
    the engines run with the UTC session time zone).
    """
    if spec.unit in ("h", "D"):
        step = spec.count * (HOUR_US if spec.unit == "h" else DAY_US)
        return "", f"({ORIGIN_US} + {_floor_to(f'ts_us - {ORIGIN_US}', step)})"
    ctes = f""",
m0 AS (SELECT *, year(timestamp_micros(ts_us)) * 12 + month(timestamp_micros(ts_us)) - 1 AS mon_ FROM valid),
m1 AS (SELECT *, mon_ - mon_ % {spec.count} AS k_ FROM m0)"""
    start = f"({_days_from_civil(_div('k_', 12), '(k_ % 12) + 1', '1')} * {DAY_US})"
    return ctes, start


def needs_threshold_sql(files: list[LogFile]) -> str:
    """Per version: the rows that log no verdict and so need the release's threshold."""
    return (f"WITH {checked(files)} SELECT version, COUNT(*) AS n FROM checked "
            "WHERE needs_threshold GROUP BY version ORDER BY version")


def aggregate_sql(files: list[LogFile], spec: WindowSpec) -> str:
    """One pass over the log: valid rows counted per (window, version, score bin, verdict, label),
    the last three packed in one integer (:func:`decode`), rejected rows per reason text (window
    and the rest NULL); first/last valid time per group."""
    ctes, start = window_start(spec)
    source = "m1" if ctes else "valid"
    return f"""WITH {checked(files)},
valid AS (SELECT * FROM checked){ctes},
keyed AS (
  SELECT reasons,
         CASE WHEN reasons = '' THEN {start} END AS window_us,
         CASE WHEN reasons = '' THEN version END AS version,
         CASE WHEN reasons = '' THEN CAST(ROUND(score_num * {SCORE_BINS}) AS BIGINT) * 6 + verdict * 3
                                     + COALESCE(label, 2) END AS cell_key,
         CASE WHEN reasons = '' THEN ts_us END AS ts_us
  FROM {source})
SELECT reasons, window_us, version, cell_key, COUNT(*) AS n, MIN(ts_us) AS first_us, MAX(ts_us) AS last_us
FROM keyed GROUP BY reasons, window_us, version, cell_key"""


def decode(agg: pd.DataFrame) -> pd.DataFrame:
    """Split ``cell_key`` (bin * 6 + verdict * 3 + label, label 2 = none) back into its columns."""
    key = agg["cell_key"]
    agg = agg.drop(columns="cell_key")
    agg["bin"] = key // 6
    agg["verdict"] = (key % 6) // 3
    agg["label"] = (key % 3).where(key % 3 != 2)
    return agg


def rejects_sql(files: list[LogFile], limit: int) -> str:
    """The first ``limit`` rejected rows in file then row order, with their values as logged."""
    return (f"WITH {checked(files)} SELECT src, row_no, reasons, ts_text, ts_typed, version_raw, score_text, "
            f"score_num, verdict_raw, url, label_raw FROM checked WHERE reasons <> '' "
            f"ORDER BY src, row_no LIMIT {int(limit)}")


def rows_sql(files: list[LogFile]) -> str:
    """Every valid row (small logs only: tests and ``logs.load``)."""
    return (f"WITH {checked(files)} SELECT ts_us, version AS model_version, score_num AS score, verdict, label, url "
            "FROM checked WHERE reasons = '' ORDER BY src, row_no")
