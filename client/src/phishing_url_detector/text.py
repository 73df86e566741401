"""Untrusted text made visible: one rule for what a person must see, one function per medium here.

URLs, release fields, paths and log values are chosen by whoever sends them. A terminal obeys
control characters (``\\r`` returns to the start of the line, ``ESC [2K`` erases it, ``\\x9b`` is
a one-byte CSI), and bidi overrides / isolates and zero-width characters make text read other
than it is. :func:`visible` names every such character as ``\\xNN`` / ``\\uNNNN`` text, so the
reader sees it instead of its effect; :func:`terminal` applies it to a whole line. A CSV cell a
spreadsheet opens goes through :func:`csv_cell` (no formula runs). The training pipeline imports
these (markdown, plots, CSV reports), so each rule exists once.
"""
from __future__ import annotations

import re
import shlex
import unicodedata
from typing import TypeVar

__all__ = ["csv_cell", "csv_uncell", "shell_command", "terminal", "visible"]

# controls (C0, DEL, C1), format (bidi, zero-width, BOM), surrogates, private use, unassigned,
# and the line / paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_Cell = TypeVar("_Cell")


def visible(ch: str) -> str | None:
    """How a character that hides or acts is shown, or None when it shows as itself.

    ``\\x1b`` -> ``\\x1b`` (as four characters), ``\\u202e`` -> ``\\u202e``; a lone surrogate of
    ``surrogateescape`` (an undecodable input byte) is shown as the original byte, ``\\xff``."""
    code = ord(ch)
    if 0x20 <= code < 0x7F:  # printable ASCII: the common case, no lookup
        return None
    if unicodedata.category(ch) not in _HIDDEN:
        return None
    if 0xDC80 <= code <= 0xDCFF:
        code -= 0xDC00
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal(value: object, *, newlines: bool = False) -> str:
    """``value`` as text that prints as what it is: every control, bidi and invisible format
    character (``\\r``, ESC, ``\\x9b``, U+202E, U+2066, U+200B, NUL ...) becomes its escape, so
    no URL can erase, overwrite, recolour or reorder the line it is printed on. ``newlines=True``
    keeps ``\\n`` (for our own multi-line messages); ``\\r`` is always shown. The result is valid
    UTF-8 (lone surrogates are escaped too)."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n" and newlines:
            out.append(ch)
        else:
            shown = visible(ch)
            out.append(ch if shown is None else shown)
    return "".join(out)


def shell_command(*words: object) -> str:
    """A command a person may copy into a shell: each word made visible (:func:`terminal`), then
    quoted (``shlex.quote``), so a hostile value (``1.0.0 && curl ... | sh #``) stays one inert argument."""
    return " ".join(shlex.quote(terminal(word)) for word in words)


# -- CSV a person opens ------------------------------------------------------------------------------
# OWASP's formula starts, and the quote itself so that reading back is exact
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value: _Cell) -> _Cell | str:
    """A text cell a spreadsheet shows as text: one starting with ``=``, ``+``, ``-``, ``@``, tab or
    CR (a formula: ``=HYPERLINK(...)``, ``@SUM(1)``, ``-2+3+cmd|' /C calc'!A0``) gets a leading
    ``'``; so does one starting with ``'``, so :func:`csv_uncell` gives back exactly what was
    written. A number stays a number: a non-string, or a string that is only a number (``-2``,
    ``+1.5e3``), is left alone."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_uncell(value: _Cell) -> _Cell | str:
    """The inverse of :func:`csv_cell`."""
    return value[1:] if isinstance(value, str) and value.startswith("'") else value
