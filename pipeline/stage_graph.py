"""The stage graph, read from dvc.yaml: the one place it is written (``--help`` and the docs show it from here)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from pipeline import paths
from pipeline.common import load_params

OUTPUT_KEYS = ("outs", "metrics", "plots")  # the three lists of dvc.yaml that declare a stage's outputs


def _out_paths(stage: dict[str, Any]) -> list[str]:
    """A stage's outputs, whether written ``- path`` or ``- path: {options}``."""
    return [next(iter(out)) if isinstance(out, dict) else out for key in OUTPUT_KEYS for out in stage.get(key, [])]


def _within(dep: str, out: str) -> bool:
    return dep == out or PurePosixPath(out) in PurePosixPath(dep).parents


def upstream(dvc_yaml: dict[str, Any]) -> dict[str, list[str]]:
    """{stage: the stages whose outputs it reads}, both in dvc.yaml's order."""
    stages = dvc_yaml.get("stages", {})
    outs = {name: _out_paths(stage) for name, stage in stages.items()}
    return {name: [other for other in stages if other != name
                   and any(_within(dep, out) for dep in stage.get("deps", []) for out in outs[other])]
            for name, stage in stages.items()}


def describe(graph: dict[str, list[str]]) -> str:
    """One line per stage: ``train <- prepare`` (a stage with no upstream stands alone)."""
    width = max((len(name) for name in graph), default=0)
    return "\n".join(f"  {name:<{width}}  <- {', '.join(after)}" if after else f"  {name}"
                     for name, after in graph.items())


def read_graph(path: Path = paths.DVC_YAML) -> dict[str, list[str]]:
    """The graph of the dvc.yaml at ``path`` ({} where there is none: an installed package outside the repository)."""
    try:
        return upstream(load_params(path))
    except FileNotFoundError:
        return {}
