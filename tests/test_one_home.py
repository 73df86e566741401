"""Facts written once (issue 20): the release tag and version order (phishing_url_detector.versions),
the repository from $PHISHING_MODEL_REPO (releases.configured_repo), the monitor's Monday window origin."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from phishing_url_detector import versions
from phishing_url_detector.releases import REPO_ENV, configured_repo
from pipeline.monitoring import analysis, sql, thresholds, windows

REPO = Path(__file__).resolve().parent.parent
CODE = [p for root in ("client/src", "pipeline", "benchmarks") for p in sorted((REPO / root).rglob("*.py"))]


def _code_strings(path: Path) -> list[str]:
    """The string constants of a module, docstrings left out (prose may name a tag)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _where(predicate) -> dict[str, list[str]]:
    found = {str(p.relative_to(REPO)): [s for s in _code_strings(p) if predicate(s)] for p in CODE}
    return {path: strings for path, strings in found.items() if strings}


def test_the_release_tag_is_spelled_in_one_module():
    """A tag built from a version (``"model-v" + v``), matched (a regex) or listed (the git glob)."""
    spelled = _where(lambda s: s.endswith("model-v") or "model-v(" in s or s == "model-v*")
    assert spelled == {"client/src/phishing_url_detector/versions.py": ["model-v"]}


def test_one_version_order_for_the_monitor_and_its_thresholds():
    assert analysis.version_key is thresholds.version_key is versions.version_key


@pytest.mark.parametrize("mixed, ordered", [
    (["1.10.0", "1.9.0", "10.0.0", "2.0.0"], ["1.9.0", "1.10.0", "2.0.0", "10.0.0"]),
    (["1.10.0", "1.9.0", "1.9.0-rc1", "2.0.0"], ["1.9.0", "1.9.0-rc1", "1.10.0", "2.0.0"]),
    (["legacy", "2.0.0", "1.0.0"], ["1.0.0", "2.0.0", "legacy"]),
    (["2.0", "01.0.0", "1.0.0+build", "1.0.0"], ["1.0.0", "1.0.0+build", "01.0.0", "2.0"]),
    # a superscript is a digit to str.isdigit but not to int(): text, not a crash
    (["1.\u00b2.0", "1.2.0"], ["1.2.0", "1.\u00b2.0"]),
])
def test_version_key_orders_releases_numerically_and_anything_else_after(mixed, ordered):
    assert sorted(mixed, key=versions.version_key) == ordered


def test_version_key_agrees_with_the_order_of_release_tags():
    tags = [f"model-v{a}.{b}.{c}" for a in (0, 1, 10) for b in (0, 2, 11) for c in (0, 9, 10)]
    by_tag = sorted(tags, key=versions.parse_tag)
    assert sorted(tags, key=lambda t: versions.version_key(t.removeprefix(versions.TAG_PREFIX))) == by_tag
    assert [versions.tag_of(str(versions.parse_tag(t))) for t in by_tag] == by_tag


def test_configured_repo_is_flag_then_environment_then_fallback(monkeypatch):
    monkeypatch.setenv(REPO_ENV, "env/repo")
    assert configured_repo("flag/repo", "params/repo") == "flag/repo"
    assert configured_repo(None, "params/repo") == "env/repo"
    monkeypatch.setenv(REPO_ENV, "")
    assert configured_repo(None, "params/repo") == "params/repo"
    monkeypatch.delenv(REPO_ENV)
    assert configured_repo() is None and thresholds.trust_for(params_repo="params/repo").repo == "params/repo"


def test_only_configured_repo_reads_the_variable():
    reads = re.compile(r"environ.*(REPO_ENV|PHISHING_MODEL_REPO)|getenv\(.*(REPO_ENV|PHISHING_MODEL_REPO)")
    found = sorted(str(p.relative_to(REPO)) for p in CODE if reads.search(p.read_text(encoding="utf-8")))
    assert found == ["client/src/phishing_url_detector/releases.py"]


def test_the_monday_window_origin_is_one_constant():
    assert sql.ORIGIN_US is windows.ORIGIN_US
    assert windows.ORIGIN.value // 1000 == windows.ORIGIN_US and windows.ORIGIN.day_name() == "Monday"
    assert _where(lambda s: "1970-01-05" in s) == {}
