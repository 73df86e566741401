"""The stage graph is read from dvc.yaml (pipeline/stage_graph.py), never written out by hand: it agrees
with `dvc dag`, and `python -m pipeline --help` shows it."""

import re
import subprocess
import sys
from pathlib import Path

from pipeline import cli, stage_graph

REPO = Path(__file__).resolve().parent.parent


def test_upstream_links_a_stage_to_the_stages_whose_outputs_it_reads():
    dvc_yaml = {"stages": {
        "prepare": {"deps": ["data/raw.csv"], "outs": [{"data/prepared": {"push": False}}, "reports/data.json"]},
        "train": {"deps": ["data/prepared/train.parquet"], "outs": ["models/model.joblib"]},
        "evaluate": {"deps": ["models/model.joblib"], "metrics": [{"metrics.json": {"cache": False}}],
                     "plots": ["plots/roc.png"]},
        "report": {"deps": ["models/model.joblib", "reports/data.json", "data/prepared-notes.txt", "metrics.json"]},
    }}
    graph = stage_graph.upstream(dvc_yaml)
    assert graph == {"prepare": [], "train": ["prepare"], "evaluate": ["train"],
                     "report": ["prepare", "train", "evaluate"]}
    assert stage_graph.describe(graph).splitlines() == ["  prepare", "  train     <- prepare", "  evaluate  <- train",
                                                        "  report    <- prepare, train, evaluate"]


def test_the_graph_agrees_with_dvc_dag():
    dot = subprocess.run([sys.executable, "-m", "dvc", "dag", "--dot"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    graph = stage_graph.read_graph(REPO / "dvc.yaml")
    edges = {(a, b) for a, b in re.findall(r'"([^"]+)" -> "([^"]+)"', dot) if a in graph}  # not the .dvc files
    assert edges and {(before, stage) for stage, after in graph.items() for before in after} == edges


def test_running_a_command_does_not_read_dvc_yaml(monkeypatch):
    """Start-up: only `python -m pipeline --help` (the full parser) pays for the graph."""
    def refuse(*args):
        raise AssertionError("dvc.yaml read to run a command")

    monkeypatch.setattr(cli.stage_graph, "read_graph", refuse)
    for command in ("prepare", "score", "monitor"):
        assert "<- prepare" not in cli.build_parser(command).format_help()


def test_help_shows_the_graph_of_dvc_yaml(monkeypatch):
    monkeypatch.chdir(REPO)
    text = cli.build_parser().format_help()
    for line in stage_graph.describe(stage_graph.read_graph()).splitlines():
        assert line.strip() in text
    assert "model-card" in text and "<- prepare" in text
