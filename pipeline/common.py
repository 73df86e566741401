"""Small infrastructure, written once: errors and exit codes, params, JSON, hashing, markdown.

Everything a person reads in markdown (the PR comment, the model card, the monitor report)
takes data through :func:`md_cell`, and every table through :func:`md_table`; a missing value
is always :data:`MISSING`.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import yaml
from phishing_url_detector.digests import sha256_file  # re-exported: one SHA-256 helper

from pipeline import paths

MISSING = "—"

# -- errors and exit codes ----------------------------------------------------------------------
EXIT_OK, EXIT_ERROR, EXIT_VERIFICATION = 0, 1, 2


class PipelineError(Exception):
    """A failure with a message that says what to fix; the CLI prints it as one line."""

    exit_code = EXIT_ERROR


def exit_code(exc: BaseException) -> int | None:
    """The exit code for an error a user can act on; None for a bug (let its traceback show).

    Our errors (PipelineError here, LoaderError in the client) carry their ``exit_code``."""
    if isinstance(exc, Exception) and isinstance(getattr(exc, "exit_code", None), int):
        return exc.exit_code
    if isinstance(exc, OSError):
        return EXIT_ERROR
    return None


# -- params and JSON -------------------------------------------------------------------------------
def load_params(path: Path | str = paths.PARAMS) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def json_bytes(payload) -> bytes:
    """Sorted keys, 2-space indent, a trailing newline: equal content gives equal bytes."""
    return (json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_json(path: Path | str, payload) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json_bytes(payload))


def read_json(path: Path | str):
    return json.loads(Path(path).read_text(encoding="utf-8"))


# -- markdown ----------------------------------------------------------------------------------------
_SHOWN_AS = {"\\": "\\\\", "`": "\\x60", "|": "\\|"}
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, format (bidi, zero-width), separators ...


def _visible(ch: str) -> str:
    if ch in _SHOWN_AS:
        return _SHOWN_AS[ch]
    if unicodedata.category(ch) in _INVISIBLE:
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return ch


def md_cell(value, limit: int | None = None) -> str:
    """Untrusted text as an inert markdown table cell: one code span, shown as it is.

    Inside a code span nothing is markup, so ``<script>``, ``&amp;``, ``*``, ``_``, ``[x](y)``,
    ``@user``, ``#1`` and bare URLs stay text (no HTML, link, mention or autolink). Only what
    could end the span or the row, or hide from the reader, is rewritten, visibly and
    unambiguously: ``\\`` -> ``\\\\``, a backtick -> ``\\x60``, ``|`` -> ``\\|`` (GFM tables turn it
    back into ``|``), control and format characters (newline, ESC, U+202E, zero-width ...)
    -> ``\\xNN`` / ``\\uNNNN``. At most ``limit`` characters are shown (counted after
    rewriting, so the cell's size is bounded); a cut text is followed by ``…``.
    """
    if value is None:
        return MISSING
    text = str(value)
    if not text:
        return "*(empty)*"
    pieces, size = [], 0
    for ch in text:
        piece = _visible(ch)
        if limit is not None and size + len(piece) > limit:
            break
        pieces.append(piece)
        size += len(piece)
    cut = "…" if len(pieces) < len(text) else ""
    return "`" + "".join(pieces) + "`" + cut if pieces else cut


def md_table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    """A GFM table; cells are already formatted (numbers) or passed through :func:`md_cell` (text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_VERIFICATION", "MISSING", "PipelineError", "exit_code", "json_bytes", "load_params",
           "md_cell", "md_table", "read_json", "sha256_file", "write_json"]
