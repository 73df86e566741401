"""Facts about the repository itself: DVC config, remote, CLI, and code/dvc.yaml consistency."""
from __future__ import annotations

import configparser
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from pipeline.cli import build_parser, main
from pipeline.training.provenance import MODEL_CODE

DVC = str(Path(sys.executable).parent / "dvc")


def dvc_config() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / ".dvc" / "config")
    return parser


def test_dvc_is_offline_and_its_remote_lives_in_the_repo():
    config = dvc_config()
    assert config["core"]["analytics"] == "false"
    assert config["core"]["check_update"] == "false"
    remote = config["core"]["remote"]
    url = config[f"'remote \"{remote}\"'"]["url"]
    # Relative remote URLs are resolved against .dvc/, so ../dvc-store is the repo's own folder.
    assert url == "../dvc-store"
    assert (REPO / ".dvc" / url).resolve() == (REPO / "dvc-store").resolve()


def test_remote_holds_the_raw_data_and_every_stored_output_of_the_committed_lock():
    """What a fresh clone restores instead of training; objects of older versions stay for their commits."""
    from pipeline.store import outputs

    pointers = sorted((REPO / "data" / "raw").rglob("*.dvc"))
    needed = {yaml.safe_load(p.read_text())["outs"][0]["md5"] for p in pointers}
    stored = outputs.stored_in_lock(REPO)
    assert {"models/model.joblib", "dist/phishing-url-detector.onnx"} <= set(stored)
    needed |= {entry.md5 for entry in stored.values()}
    on_disk = {p.parent.name + p.name for p in (REPO / "dvc-store" / "files" / "md5").glob("*/*")}
    assert needed <= on_disk, sorted(needed - on_disk)
    for md5 in on_disk:
        data = (REPO / "dvc-store" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes()
        assert hashlib.md5(data).hexdigest() == md5


@pytest.mark.slow
def test_dvc_pull_works_from_a_clone_at_another_depth(tmp_path):
    """A fresh clone three folders deeper must still find the in-repo remote (no ../../ leak)."""
    clone = tmp_path / "a" / "b" / "c" / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    targets = [str(p.relative_to(clone)) for p in sorted((clone / "data" / "raw").rglob("*.dvc"))]
    result = subprocess.run([DVC, "pull", *targets], cwd=clone, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for pointer in targets:
        out = yaml.safe_load((clone / pointer).read_text())["outs"][0]
        data = (clone / pointer).with_suffix("").read_bytes()
        assert hashlib.md5(data).hexdigest() == out["md5"]


def test_model_code_is_a_dependency_of_every_model_stage():
    """The manifest's model-code digest covers exactly files that re-run export (and the manifest
    that digests them) when they change."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert set(MODEL_CODE) <= set(stages["export"]["deps"])
    assert set(MODEL_CODE) <= set(stages["manifest"]["deps"])


def test_export_reads_nothing_that_an_evaluation_only_change_touches():
    """An `evaluate` param, metrics.json or a raw-data pointer must not re-convert the model."""
    export = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["export"]
    assert export["params"] == ["export"]
    assert not [d for d in export["deps"] if d == "metrics.json" or d.startswith("data/raw/")]


def test_every_stage_module_is_a_dependency_of_its_stage():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        module = f"pipeline/stages/{name.replace('-', '_')}.py"
        if (REPO / module).exists():
            assert module in stage["deps"], f"{module} missing from stage {name} deps"
        assert stage["cmd"].startswith("python -m pipeline ")


def test_cli_help_lists_every_command_and_each_command_parses_alone(capsys):
    from pipeline.cli import COMMANDS

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    listed = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command} " in listed or f"    {command}\n" in listed, command
        parser = build_parser(command)
        assert command in parser._subparsers._group_actions[0].choices  # registered by its own module


def test_a_product_command_loads_no_training_stack():
    """`python -m pipeline score` builds only the client's commands: no scikit-learn, pandas, dvc..."""
    code = ("import sys\nfrom pipeline.cli import build_parser\nbuild_parser('score').parse_args(['score', "
            "'--model', 'm.onnx', 'http://x/'])\nprint(sorted(m for m in ('sklearn', 'pandas', 'dvc', "
            "'matplotlib', 'skl2onnx', 'pipeline.training') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow  # the CLI in a subprocess
def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "usage: python -m pipeline" in result.stdout


def test_gitignore_keeps_generated_and_cached_files_out_of_git():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    for forbidden in ("models/model.joblib", "dist/phishing-url-detector.onnx", "data/prepared/train.parquet",
                      "data/raw/ebbu2017.csv.gz"):
        assert forbidden not in tracked


def import_closure(module_file: Path) -> set[str]:
    """Every pipeline/ (and client) module a module imports, transitively (static imports)."""
    import ast

    seen: set[str] = set()
    todo = [module_file]
    while todo:
        path = todo.pop()
        rel = str(path.relative_to(REPO))
        if rel in seen:
            continue
        seen.add(rel)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] + [f"{node.module}.{a.name}" for a in node.names] \
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for name in names:
                if not name.startswith(("pipeline", "phishing_url_detector")):
                    continue
                root = REPO / "client" / "src" if name.startswith("phishing_url_detector") else REPO
                base = root / Path(*name.split("."))
                for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                    if candidate.is_file():
                        todo.append(candidate)
        if path.name != "__init__.py" and (path.parent / "__init__.py").is_file():
            todo.append(path.parent / "__init__.py")
    return {p for p in seen if not _docstring_only(REPO / p)}


def _docstring_only(path: Path) -> bool:
    """A package __init__ that only documents the package cannot change what a stage computes."""
    import ast

    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def test_every_module_a_stage_imports_is_a_dependency_of_that_stage():
    """DVC re-runs a stage only when a dependency changes: a module the stage imports but dvc.yaml does
    not list would change the outputs without re-running the stage."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        closure = import_closure(REPO / f"pipeline/stages/{name.replace('-', '_')}.py")
        missing = sorted(closure - set(stage["deps"]))
        assert not missing, f"stage {name} imports {missing} but dvc.yaml does not list them as deps"


def test_artefact_files_are_named_only_in_pipeline_paths():
    """One place for every artefact path: a module that spells one itself would drift from dvc.yaml."""
    import re

    from pipeline import paths

    files = {v.as_posix() for v in vars(paths).values() if isinstance(v, Path) and v.suffix}
    offenders = []
    for module in sorted((REPO / "pipeline").rglob("*.py")):
        if module.name == "paths.py":
            continue
        text = module.read_text()
        offenders += [f"{module.relative_to(REPO)}: {f}" for f in files if re.search(rf'"{re.escape(f)}"', text)]
    assert not offenders


def test_every_artefact_in_pipeline_paths_is_declared_by_dvc_yaml_as_it_is_spelled():
    from pipeline import paths

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values()
    declared = {next(iter(o)) if isinstance(o, dict) else o
                for s in stages for section in ("outs", "metrics", "plots") for o in s.get(section) or []}
    declared |= {d for s in stages for d in s.get("deps", [])}
    produced = {paths.TRAIN, paths.VALIDATION, paths.TEST, paths.FUTURE, paths.OUT_OF_SOURCE, paths.QUARANTINE,
                paths.MODEL,
                paths.DATA_REPORT, paths.OPERATING_POINT, paths.LEAVE_ONE_SOURCE_OUT, paths.BACKTEST,
                paths.BACKTEST_TABLE, paths.PARITY, paths.METRICS, paths.BACKTEST_PLOT, paths.ONNX, paths.MANIFEST,
                paths.CARD_TEMPLATE, paths.CARD}
    missing = sorted(p.as_posix() for p in produced
                     if p.as_posix() not in declared and p.parent.as_posix() not in declared)
    assert not missing, f"pipeline/paths.py names {missing}, which dvc.yaml does not declare"
