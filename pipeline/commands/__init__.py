"""The CLI commands that are not DVC stages: one module per command (``python -m pipeline monitor`` is
``pipeline/commands/monitor.py``). Each is a thin shell over the pure functions of its area package."""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:func|data|class|mod|meth|attr):`~?([^`]+)`")


def help_text(docstring: str | None) -> str:
    """A module docstring as ``--help`` shows it: Sphinx markup (``x``, :func:`x`, a closing ``::``)
    read as plain text, so the same prose serves the code reader and the terminal."""
    text = _ROLE.sub(r"`\1`", docstring or "")
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return re.sub(r"(\S)::$", r"\1:", text, flags=re.MULTILINE)
