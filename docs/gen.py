"""Regenerate the blocks of README.md and docs/*.md that a command prints, so the docs never restate
by hand what the code can say: the stage graph (``dvc dag --md``, read from dvc.yaml), the CLI's
``--help``, the exit codes (the one ``ExitCode`` enum) and the ``make`` targets (the Makefile's ``##``
comments).

A generated block sits between two markers, and the first one names the command::

    <!-- generated: python -m pipeline monitor --help -->
    ...
    <!-- end generated -->

``python docs/gen.py`` rewrites every block; ``python docs/gen.py --check`` changes nothing and
exits 1 naming each stale block (tests/test_docs.py runs it).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from phishing_url_detector.cli import main as client_main
from phishing_url_detector.exit_codes import ExitCode
from pipeline.cli import main as pipeline_main

REPO = Path(__file__).resolve().parent.parent
# argparse wraps help at the terminal's width: fix it, so the blocks do not depend on who ran this.
HELP_COLUMNS = "100"
BLOCK = re.compile(r"(?P<open><!-- generated: (?P<command>[^>]+?) -->\n)(?P<body>.*?)(?P<close><!-- end generated -->)",
                   re.DOTALL)
log = logging.getLogger("docs.gen")


def documents(repo: Path = REPO) -> list[Path]:
    """Every file that may hold generated blocks: the README and the docs site's pages."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def _captured_help(main: Callable[[list[str]], object], argv: list[str]) -> str:
    """What ``main(argv)`` prints for ``--help`` (argparse exits after printing it)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(argv)
    return out.getvalue()


def _dvc_dag(argv: list[str]) -> str:
    """``dvc dag`` from the venv beside this interpreter: it reads dvc.yaml only."""
    dvc = Path(sys.executable).with_name("dvc")
    done = subprocess.run([str(dvc), "dag", *argv], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dvc dag {shlex.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def _exit_codes() -> str:
    """A markdown table of ExitCode: each value with every name it carries (aliases included)."""
    names: dict[int, list[str]] = {}
    for name, member in ExitCode.__members__.items():
        names.setdefault(int(member), []).append(f"`{name}`")
    rows = [f"| {value} | {', '.join(labels)} |" for value, labels in sorted(names.items())]
    return "\n".join(["| exit code | `ExitCode` names |", "|---:|---|", *rows]) + "\n"


def _cell(text: str) -> str:
    """``text`` inside a markdown table cell: a pipe would end the cell."""
    return text.replace("|", "\\|")


MAKE_TARGET = re.compile(r"^(?P<target>[a-z][\w-]*):[^#\n]*## (?P<what>.+)$", re.MULTILINE)


def _make_targets() -> str:
    """A markdown table of the Makefile's targets from their ``## what it does`` comments."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    rows = [f"| `make {m['target']}` | {_cell(m['what'])} |" for m in MAKE_TARGET.finditer(makefile)]
    return "\n".join(["| target | what it does |", "|---|---|", *rows]) + "\n"


def _fenced(text: str) -> str:
    return f"```text\n{text.rstrip()}\n```\n"


def render(command: str) -> str:
    """The block's body for the command its marker names."""
    words = shlex.split(command)
    if words[:3] == ["python", "-m", "pipeline"]:
        return _fenced(f"$ {command}\n{_captured_help(pipeline_main, words[3:])}")
    if words[:1] == ["phishing-url-detector"]:
        return _fenced(f"$ {command}\n{_captured_help(client_main, words[1:])}")
    if words[:2] == ["dvc", "dag"]:
        return _dvc_dag(words[2:])
    if words == ["exit", "codes"]:
        return _exit_codes()
    if words == ["make", "targets"]:
        return _make_targets()
    raise ValueError(f"no generator for the block {command!r}")


def regenerate(text: str) -> str:
    """``text`` with every generated block's body replaced by the command's current output."""
    return BLOCK.sub(lambda m: m["open"] + render(m["command"]) + m["close"], text)


def stale_blocks(text: str) -> list[str]:
    """The commands whose block in ``text`` differs from what the command prints today."""
    return [m["command"] for m in BLOCK.finditer(text) if m["body"] != render(m["command"])]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/gen.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a block is stale")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ["COLUMNS"] = HELP_COLUMNS
    stale = 0
    for path in documents():
        text = path.read_text(encoding="utf-8")
        if args.check:
            for command in stale_blocks(text):
                log.error("%s: the block of `%s` is stale: run `python docs/gen.py`", path.relative_to(REPO), command)
                stale += 1
        elif (new := regenerate(text)) != text:
            path.write_text(new, encoding="utf-8")
            log.info("updated %s", path.relative_to(REPO))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
