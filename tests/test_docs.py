"""The README and the docs site stay short, buildable and true: the site builds with
``mkdocs build --strict``, every relative link resolves, and every block a command prints (the stage
graph from dvc.yaml, ``--help``, the exit codes, the make targets) equals what it prints today."""
from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO
from markdown.extensions.toc import slugify

BIN = Path(sys.executable).parent
README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("*.md"))
# [text](target) and [label]: target; code is stripped first, so `](` inside code is no link.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(?P<target>\S+)", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`+[^`\n]*`+")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$", re.MULTILINE)


@functools.cache
def load_gen() -> ModuleType:
    """docs/gen.py, the generator of the docs' command-output blocks (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("docs_gen", REPO / "docs" / "gen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prose(text: str) -> str:
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchors(path: Path) -> set[str]:
    """The heading ids of a page, as mkdocs' toc extension makes them."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slugify(m["title"].replace("`", ""), "-") for m in HEADING.finditer(text)}


def shown(path: Path) -> str:
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def broken_links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    targets = [m["target"] for m in INLINE_LINK.finditer(text)] + [m["target"] for m in REFERENCE_LINK.finditer(text)]
    broken = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not a file of this repository
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no file {shown(linked)})")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {shown(linked)})")
    return broken


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(path):
    assert not broken_links(path), f"{shown(path)}: broken links {broken_links(path)}"


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A `code` heading\n", encoding="utf-8")
    page.write_text("[ok](other.md#a-code-heading) `[skip](nowhere.md)` [bad](missing.md) [worse](other.md#nope)\n",
                    encoding="utf-8")
    assert [b.split(" ")[0] for b in broken_links(page)] == ["missing.md", "other.md#nope"]


def test_the_site_builds_strictly(tmp_path):
    """--strict: a link to a missing page or anchor, or a missing README snippet, fails the build."""
    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    testing = (tmp_path / "site" / "testing" / "index.html").read_text(encoding="utf-8")
    assert "make test-fast" in testing and "--8&lt;--" not in testing  # the README's tier table, included


def generated_blocks() -> list[object]:
    """One case per generated block; --help blocks import every command module, so they are slow."""
    gen = load_gen()
    cases: list[object] = []
    for path in [README, *PAGES]:
        for match in gen.BLOCK.finditer(path.read_text(encoding="utf-8")):
            marks = [pytest.mark.slow] if "--help" in match["command"] else []
            cases.append(pytest.param(path, match["command"], match["body"], marks=marks,
                                      id=f"{path.name}: {match['command']}"))
    return cases


@pytest.mark.parametrize("path, command, body", generated_blocks())
def test_generated_block_equals_what_the_command_prints(path, command, body, monkeypatch):
    """The stage graph (`dvc dag --md`, read from dvc.yaml), every --help, the exit codes and the make
    targets, each as its command prints it today; `python docs/gen.py` rewrites them all."""
    monkeypatch.setenv("COLUMNS", load_gen().HELP_COLUMNS)
    assert body == load_gen().render(command), f"{shown(path)}: `{command}` is stale: run `.venv/bin/python docs/gen.py`"


def test_the_generated_blocks_are_there():
    """The stage graph is shown only as `dvc dag` prints it, and the CLI reference holds the real --help."""
    gen = load_gen()
    commands = {path.name: [m["command"] for m in gen.BLOCK.finditer(path.read_text(encoding="utf-8"))]
                for path in PAGES}
    assert "dvc dag --md" in commands["pipeline.md"]
    assert {"python -m pipeline --help", "exit codes"} <= set(commands["cli.md"])
    assert "make targets" in commands["getting-started.md"]


def test_a_stale_block_is_found():
    gen = load_gen()
    table = gen.render("exit codes")
    current = f"<!-- generated: exit codes -->\n{table}<!-- end generated -->\n"
    assert gen.stale_blocks(current) == []
    assert gen.stale_blocks(current.replace("| 3 |", "| 5 |")) == ["exit codes"]
    assert gen.regenerate(current.replace("| 3 |", "| 5 |")) == current


def test_readme_is_a_five_minute_read_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    quick_start = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines() if line.startswith("make ")]
    assert commands == ["make run", "make test"]
    ci_run = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci_run[-1] == "make test", "CI runs the README's test command"


def test_the_test_tiers_durations_live_only_in_the_readme():
    """The lead updates the measured numbers in one spot; docs/testing.md includes that README section."""
    tiers = README.read_text(encoding="utf-8").split("[start:test-tiers]", 1)[1].split("[end:test-tiers]", 1)[0]
    counts = re.findall(r"\| (\d{3,}) \|", tiers)
    assert len(counts) == 2, tiers
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not [c for c in counts if re.search(rf"\b{c} tests\b|\| {c} \|", text)], page.name
    assert '--8<-- "README.md:test-tiers"' in (REPO / "docs" / "testing.md").read_text(encoding="utf-8")


def test_every_module_the_docs_name_exists():
    """Modules move (issue 20 moved many): a page that names `pipeline/x.py` or `python -m pipeline.x` follows."""
    missing = []
    for path in [README, *PAGES]:
        text = path.read_text(encoding="utf-8")
        named = set(re.findall(r"`((?:pipeline|client|benchmarks|tests|docs)/[\w/]+\.py)`", text))
        named |= {m.replace(".", "/") + ".py" for m in re.findall(r"python3? -m (pipeline\.[\w.]+)", text)}
        missing += [f"{shown(path)}: {name}" for name in sorted(named) if not (REPO / name).is_file()]
    assert not missing, missing


def test_the_readme_layout_names_every_pipeline_package():
    layout = README.read_text(encoding="utf-8").split("## Layout", 1)[1].split("## ", 1)[0]
    packages = sorted(p.parent.name for p in (REPO / "pipeline").glob("*/__init__.py"))
    assert packages and not [p for p in packages if f"  {p}/ " not in layout], packages
