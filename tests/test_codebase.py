"""The habits `make lint` keeps (issue 20): ruff and import-linter clean, one-way imports that a reversed import
breaks, no import inside a function without a `# lazy:` reason, one place per CLI command, mypy clean (slow)."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.commands import help_text

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CODE_ROOTS = ("pipeline", "client/src/phishing_url_detector", "benchmarks")
AREAS = ("training", "review", "release", "monitoring", "store", "reproduce")


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN))
    assert path, f"{name} is not installed in {BIN}: `make install` installs it (requirements/dev.lock)"
    return path


def _run(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)


def test_ruff_is_clean():
    result = _run(_tool("ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_import_layers_hold():
    result = _run(_tool("lint-imports"), "--no-cache")
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout + result.stderr


def test_a_reversed_import_breaks_the_layers(tmp_path):
    """The contract is not vacuous: training importing the review (an area above it) is reported."""
    for package in ("pipeline", "benchmarks"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "client/src/phishing_url_detector", tmp_path / "phishing_url_detector",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "pipeline/training/__init__.py", "a", encoding="utf-8") as fh:
        fh.write("\nimport pipeline.review.stats  # noqa: F401\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _run(_tool("lint-imports"), "--no-cache", cwd=tmp_path, env=env)
    assert result.returncode == 1 and "BROKEN" in result.stdout, result.stdout + result.stderr
    assert "pipeline.training -> pipeline.review" in result.stdout


def _imports_inside_functions(path: Path, root: Path = REPO) -> list[str]:
    """``file:line`` of each import inside a function whose line, or the comment/import lines right
    above it, do not say ``# lazy: <why>``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for function in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                first, statements = node.lineno - 1, 0  # walk up the import block (one other statement allowed,
                while first > 0 and statements <= 1:     # e.g. matplotlib.use() between two imports)
                    above = lines[first - 1].strip()
                    statements += not above.startswith(("#", "import ", "from ")) and above != ""
                    first -= 1
                if not any("# lazy:" in line for line in lines[first:node.end_lineno]):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_no_import_inside_a_function_without_a_reason():
    unexplained = [where for root in CODE_ROOTS for path in sorted((REPO / root).rglob("*.py"))
                   for where in _imports_inside_functions(path)]
    assert unexplained == [], "move these imports to the top, or say why they wait with `# lazy: <why>`"


def test_the_reason_check_finds_an_unexplained_import(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    import json\n\n    # lazy: heavy\n    import csv\n"
                                   "    import io  # lazy: also fine\n")
    assert _imports_inside_functions(tmp_path / "m.py", tmp_path) == ["m.py:2"]


def test_each_command_lives_in_stages_or_commands_under_its_own_name():
    """`python -m pipeline X` is pipeline/stages/x.py (a DVC stage) or pipeline/commands/x.py; the product
    client's own commands stay in its cli.py."""
    misplaced = {command: module for command, module in cli.COMMANDS.items()
                 if module not in {f"pipeline.stages.{command.replace('-', '_')}",
                                   f"pipeline.commands.{command.replace('-', '_')}", "phishing_url_detector.cli"}}
    assert misplaced == {}


# Run alone with `python3 -m`, without the pipeline installed, so they keep their own small command lines:
# the review's trusted job (the comment gate, the CML lock check) and the monitor's alert job (a sparse checkout).
STANDALONE_SCRIPTS = {"pipeline/review/comment.py", "pipeline/review/cml_lock.py",
                      "pipeline/monitoring/tracking_issue.py"}


def test_the_area_packages_hold_no_command_line():
    """Pure code and I/O helpers only: argparse belongs to stages/, commands/ and cli.py."""
    with_argparse = [name for area in AREAS for path in sorted((REPO / "pipeline" / area).rglob("*.py"))
                     if (name := str(path.relative_to(REPO))) not in STANDALONE_SCRIPTS
                     and ("import argparse" in (text := path.read_text(encoding="utf-8")) or "def register(" in text)]
    assert with_argparse == []


@pytest.mark.slow
def test_mypy_is_clean():
    result = _run(_tool("mypy"), "--no-incremental")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr


def test_help_text_reads_docstring_markup_as_plain_text():
    doc = "Run ``dvc repro`` via :func:`analysis.run` and :data:`~x.HOSTILE`, writing::\n\n    out/\n"
    assert help_text(doc) == "Run `dvc repro` via `analysis.run` and `x.HOSTILE`, writing:\n\n    out/\n"
    assert help_text(None) == ""


@pytest.mark.parametrize("command", sorted(c for c, m in cli.COMMANDS.items() if m.startswith("pipeline.commands.")))
def test_each_commands_help_reads_without_markup(command):
    subparsers = next(a for a in cli.build_parser(command)._actions if a.dest == "command")
    text = subparsers.choices[command].format_help()
    assert "``" not in text and ":func:" not in text and ":data:" not in text, text
