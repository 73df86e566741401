"""The distributed engine: Spark SQL runs the same statements as DuckDB (``sql``).

pyspark is imported here only, so the DuckDB path never needs Java. Local mode
(``--master local[2]``) is what the tests run; a cluster is a ``--master`` URL
(``spark://host:7077``, ``yarn``, ``k8s://https://...``) and logs may then be
``s3a://``, ``gs://`` or ``abfss://`` Parquet paths (docs/monitoring.md: On a cluster).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from pipeline.monitoring.staging import Input, literal_path

LOCAL_MASTER = "local[2]"  # Spark on this machine, two cores: what the tests and the CLI default run
_NUMBER = ("ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType")


def _kind(data_type: object) -> str:
    name = type(data_type).__name__
    if name in ("TimestampType", "TimestampNTZType", "DateType"):
        return "timestamp"
    if name == "BooleanType":
        return "bool"
    return "number" if name in _NUMBER else "string"


class SparkEngine:
    """A Spark session on ``master``; times in UTC, ANSI SQL on (as Spark 4 defaults)."""

    name = "spark"

    def __init__(self, master: str = LOCAL_MASTER):
        # lazy: pyspark is the optional Spark extra (a 456 MB download, a JVM); the DuckDB path never loads it
        from pyspark.sql import SparkSession, functions

        self.functions = functions

        # py4j logs each connection at INFO, the last one from a destructor at interpreter exit,
        # when the log streams are already closed: keep only its warnings.
        logging.getLogger("py4j").setLevel(logging.WARNING)
        self.spark = (SparkSession.builder.master(master).appName("phishing-url-monitor")
                      .config("spark.sql.session.timeZone", "UTC")
                      .config("spark.sql.ansi.enabled", "true")
                      .config("spark.ui.enabled", "false")
                      .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                      .config("spark.sql.shuffle.partitions", "8")
                      .getOrCreate())

    def register_input(self, index: int, item: Input, known: tuple[str, ...]) -> dict[str, str]:
        """View ``log_<index>`` over one input, with a 1-based ``log_row_`` (Parquet's row index).
        The path is a name staging chose, or a URI without glob characters (Hadoop expands them)."""
        df = self.spark.read.parquet(literal_path(item.path))
        if not item.staged:
            df = df.select("*", (self.functions.col("_metadata.row_index") + 1).alias("log_row_"))
        df.createOrReplaceTempView(f"log_{index}")
        return {f.name: _kind(f.dataType) for f in df.schema.fields if f.name in known}

    def register_thresholds(self, thresholds: Mapping[str, float]) -> None:
        rows = [(v, float(t)) for v, t in thresholds.items()]
        self.spark.createDataFrame(rows, "version string, threshold double").createOrReplaceTempView("thresholds")

    def query(self, statement: str) -> pd.DataFrame:
        return self.spark.sql(statement).toPandas()

    def close(self) -> None:
        """The session is left to the process's end: tests and repeated runs share one JVM."""
