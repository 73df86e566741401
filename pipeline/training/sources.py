"""The raw data sources named in params.yaml ``data``: one definition for every reader.

A source is a name, the DVC-tracked files that hold its rows (a first import
plus the monthly shards ``ingest`` adds) and, for dated sources, the column
with the day each URL was first seen. Source order is the de-duplication
priority of ``prepare``.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.common import PipelineError


@dataclass(frozen=True)
class Source:
    name: str
    files: tuple[str, ...]
    date_column: str | None = None

    @property
    def dated(self) -> bool:
        return self.date_column is not None


def _source(entry: dict, where: str) -> Source:
    try:
        files = entry["files"]
        if isinstance(files, str) or not files:
            raise TypeError
        return Source(str(entry["name"]), tuple(str(f) for f in files), entry.get("date_column"))
    except (KeyError, TypeError):
        raise PipelineError(f"params.yaml {where}: expected {{name: NAME, files: [FILE, ...], "
                            f"date_column: COLUMN (optional)}}, got {entry!r}") from None


def training_sources(params: dict) -> list[Source]:
    """The sources that are validated, de-duplicated and split (in priority order)."""
    sources = [_source(e, f"data.sources[{i}]") for i, e in enumerate(params["data"]["sources"])]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise PipelineError(f"params.yaml data.sources: source names must be unique, got {names}")
    return sources


def out_of_source(params: dict) -> Source:
    """The dated stream that is only ever evaluated on (never trained on)."""
    return _source(params["data"]["out_of_source"], "data.out_of_source")


def raw_files(params: dict) -> list[str]:
    """Every raw file the pipeline reads, in params order."""
    return [f for s in [*training_sources(params), out_of_source(params)] for f in s.files]
