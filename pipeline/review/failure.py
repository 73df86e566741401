"""How a review that cannot finish says so: a report.md in place of the comment, and a GitHub annotation."""
from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline.common import terminal

REPORTS = ("report.md", "summary.md")  # the comment and the job summary: both explain the failure


def annotate(kind: str, title: str, message: str = "") -> None:
    """A GitHub workflow command: text through :func:`terminal` (no newline, CR or ESC can start
    another command), then GitHub's own escapes (``%``, and ``:`` / ``,`` in a property)."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        data = terminal(message or title).replace("%", "%25")
        prop = terminal(title).replace("%", "%25").replace(":", "%3A").replace(",", "%2C")
        print(f"::{kind} title={prop}::{data}", flush=True)


def fenced(text: str) -> str:
    """Text as a fenced code block that no line of it can close (the fence outruns any backtick run)."""
    text = terminal(text, newlines=True)
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, run + 1)
    return f"{fence}\n{text}\n{fence}"


def failed_review(error: str) -> str:
    """The comment of a review that stopped with ``error``."""
    return f"### ⚠️ The model review could not be completed\n\n{fenced(error)}\n"


def write_failure(out: Path, markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in REPORTS:
        (out / name).write_text(markdown, encoding="utf-8")
