"""The embedded engine: DuckDB reads the (staged) Parquet inputs in a streaming scan.

Only registration lives here; the statements are ``sql``'s. DuckDB lacks Spark's
``unix_micros`` and ``timestamp_micros``, so they are macros over ``epoch_us`` and ``make_timestamp``.
"""
from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from pipeline.monitoring.staging import Input, literal_path

_KINDS = {"VARCHAR": "string", "BOOLEAN": "bool", "DATE": "timestamp"}


def _kind(duckdb_type: object) -> str:
    name = str(duckdb_type).upper()
    if name.startswith("TIMESTAMP"):
        return "timestamp"
    if name in _KINDS:
        return _KINDS[name]
    if name.split("(")[0] in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                              "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL"):
        return "number"
    return "string"


class DuckDBEngine:
    """One in-process DuckDB connection, its memory capped (it spills to ``temp_dir`` beyond)."""

    name = "duckdb"

    def __init__(self, memory_limit: str = "1GB", threads: int | None = None, temp_dir: str | None = None):
        config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit, "preserve_insertion_order": False}
        if threads:
            config["threads"] = threads
        if temp_dir:
            config["temp_directory"] = temp_dir
        self.con = duckdb.connect(config=config)
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("CREATE MACRO unix_micros(t) AS epoch_us(t)")
        self.con.execute("CREATE MACRO timestamp_micros(u) AS make_timestamp(u)")

    def register_input(self, index: int, item: Input, known: tuple[str, ...]) -> dict[str, str]:
        """View ``log_<index>`` over one input, with a 1-based ``log_row_``; the kinds of its known columns.
        The path is a name staging chose (DuckDB would expand glob characters in any other)."""
        rel = self.con.read_parquet(literal_path(item.path), file_row_number=not item.staged)
        if not item.staged:
            rel = rel.project("* EXCLUDE (file_row_number), file_row_number + 1 AS log_row_")
        rel.create_view(f"log_{index}")
        return {c: _kind(t) for c, t in zip(rel.columns, rel.types) if c in known}

    def register_frame(self, index: int, frame: pd.DataFrame, known: tuple[str, ...]) -> dict[str, str]:
        """View ``log_<index>`` over an in-memory frame that already has ``log_row_``."""
        self.con.register(f"frame_{index}", frame)
        rel = self.con.table(f"frame_{index}")
        rel.create_view(f"log_{index}")
        return {c: _kind(t) for c, t in zip(rel.columns, rel.types) if c in known}

    def register_thresholds(self, thresholds: Mapping[str, float]) -> None:
        self.con.execute("CREATE OR REPLACE TABLE thresholds (version VARCHAR, threshold DOUBLE)")
        if thresholds:
            self.con.executemany("INSERT INTO thresholds VALUES (?, ?)",
                                 [[v, float(t)] for v, t in thresholds.items()])

    def query(self, statement: str) -> pd.DataFrame:
        return self.con.sql(statement).df()

    def close(self) -> None:
        self.con.close()
