"""Untrusted text made visible: one rule for what a person must see, one function per medium here.

URLs, release fields, paths and log values are chosen by whoever sends them. A terminal obeys
control characters (``\\r`` returns to the start of the line, ``ESC [2K`` erases it, ``\\x9b`` is
a one-byte CSI), and bidi overrides / isolates and zero-width characters make text read other
than it is. :func:`visible` names every such character as ``\\xNN`` / ``\\uNNNN`` text, so the
reader sees it instead of its effect; :func:`terminal` applies it to a whole line. The
training pipeline imports these (markdown, plots), so the rule exists once.
"""
from __future__ import annotations

import unicodedata

__all__ = ["terminal", "visible"]

# controls (C0, DEL, C1), format (bidi, zero-width, BOM), surrogates, private use, unassigned,
# and the line / paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


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


def terminal(value, *, newlines: bool = False) -> str:
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
