"""One list of exit codes (phishing_url_detector.exit_codes.ExitCode): every place that restates a
code, the workflows, the Makefile and the modules that run without the client, must say the same."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from phishing_url_detector.errors import LoaderError, VerificationError
from phishing_url_detector.exit_codes import ExitCode
from pipeline.common import PipelineError
from pipeline.review import comment

REPO = Path(__file__).resolve().parent.parent

# (file, pattern whose groups are exit codes, the code each group means). Each pattern must match.
RESTATED = [
    (".github/workflows/monitor.yml", r'^\s*(\d+)\) echo "alert=false"', [ExitCode.OK]),
    (".github/workflows/monitor.yml", r'^\s*(\d+)\) echo "alert=true"', [ExitCode.ALERT]),
    (".github/workflows/review.yml", r'if \[ "\$rc" != (\d+) \] && \[ "\$rc" != (\d+) \]; then exit "\$rc"',
     [ExitCode.OK, ExitCode.WORSE]),
    (".github/workflows/review.yml", r'pull-data .*\|\| rc=\$\?\n\s*if \[ "\$rc" != (\d+) \]; then', [ExitCode.OK]),
    (".github/workflows/review.yml", r"steps\.report\.outputs\.exit-code == '(\d+)'", [ExitCode.WORSE]),
    ("Makefile", r"pipeline monitor .*\[ \$\$rc -eq (\d+) \] \|\| \[ \$\$rc -eq (\d+) \]",
     [ExitCode.OK, ExitCode.ALERT]),
]
# Any exit-code comparison in those files; each must be one that RESTATED checks.
ANY_CODE = re.compile(r"""rc -eq \d+|"\$rc" != \d+|exit-code == '\d+'|^\s*\d+\) echo""", re.MULTILINE)


@pytest.mark.parametrize("path, pattern, meanings", RESTATED, ids=lambda v: str(v)[:40])
def test_workflow_and_makefile_literals_match_the_enum(path, pattern, meanings):
    matches = list(re.finditer(pattern, (REPO / path).read_text(encoding="utf-8"), re.MULTILINE))
    assert matches, f"{path}: no line matches {pattern!r}; update RESTATED with the new wording"
    for match in matches:
        assert [int(code) for code in match.groups()] == [int(m) for m in meanings], \
            f"{path}: {match.group(0)!r} restates {[m.name for m in meanings]} with other values"


def test_every_restated_exit_code_is_checked():
    for path in sorted({path for path, _, _ in RESTATED}):
        text = (REPO / path).read_text(encoding="utf-8")
        checked = [(m.start(), m.end()) for p, pattern, _ in RESTATED if p == path
                   for m in re.finditer(pattern, text, re.MULTILINE)]
        unchecked = [m.group(0) for m in ANY_CODE.finditer(text)
                     if not any(lo <= m.start() < hi for lo, hi in checked)]
        assert not unchecked, f"{path}: exit codes {unchecked} are not checked against ExitCode"


def test_meanings_that_share_a_value_are_aliases():
    assert ExitCode.REFUSED is ExitCode.VERIFICATION is ExitCode.USAGE and ExitCode.VERIFICATION == 2
    assert ExitCode.WORSE is ExitCode.ALERT and ExitCode.ALERT == 3 and ExitCode.PULL == 4
    assert (ExitCode.OK, ExitCode.ERROR, ExitCode.INTERRUPTED) == (0, 1, 130)


def test_errors_carry_codes_from_the_enum_and_standalone_modules_restate_them():
    assert LoaderError("x").exit_code is ExitCode.ERROR and PipelineError("x").exit_code is ExitCode.ERROR
    assert VerificationError("x").exit_code is ExitCode.VERIFICATION
    # pipeline/review/comment.py runs without the client installed, so it restates its one code
    assert comment.EXIT_REFUSED == ExitCode.REFUSED


def test_no_module_defines_its_own_exit_codes():
    """Codes are named in exit_codes.py only (comment.py's restatement is checked above)."""
    definition = re.compile(r"^\s*(EXIT_[A-Z_]+(\s*,\s*EXIT_[A-Z_]+)*)\s*=", re.MULTILINE)
    found = {str(p.relative_to(REPO)): m.group(1)
             for root in ("pipeline", "client/src", "benchmarks") for p in sorted((REPO / root).rglob("*.py"))
             for m in definition.finditer(p.read_text(encoding="utf-8"))}
    assert found == {"pipeline/review/comment.py": "EXIT_REFUSED"}
