"""Small infrastructure, written once: errors and exit codes, params, JSON, hashing, and output a
person reads.

Untrusted text (URLs, log values, model versions, params) reaches a person through one function
per medium: the terminal through :func:`terminal` (the client's, re-exported), markdown (the PR
comment, the model card, the monitor report and issue body) through :func:`md_cell` and every
table through :func:`md_table`, a CSV someone opens through :func:`write_csv` (read back with
:func:`read_csv`), a plot's text through :func:`plot_text`. A missing value is always
:data:`MISSING`.
"""
from __future__ import annotations

import json
from pathlib import Path

from phishing_url_detector.digests import (  # re-exported: one helper per digest
    md5_file,
    sha256_file,
)
from phishing_url_detector.exit_codes import (
    ExitCode,  # re-exported: the one list of exit codes
)
from phishing_url_detector.text import (  # re-exported: one rule each
    csv_cell,
    csv_uncell,
    terminal,
    visible,
)
from pipeline import paths

MISSING = "—"

# -- errors and exit codes ----------------------------------------------------------------------
class PipelineError(Exception):
    """A failure with a message that says what to fix; the CLI prints it as one line."""

    exit_code = ExitCode.ERROR


def exit_code(exc: BaseException) -> int | None:
    """The exit code for an error a user can act on; None for a bug (let its traceback show).

    Our errors (PipelineError here, LoaderError in the client) carry their ``exit_code``."""
    code = getattr(exc, "exit_code", None)
    if isinstance(exc, Exception) and isinstance(code, int):
        return code
    if isinstance(exc, OSError):
        return ExitCode.ERROR
    return None


# -- params and JSON -------------------------------------------------------------------------------
def load_params(path: Path | str = paths.PARAMS) -> dict:
    import yaml  # lazy: `python -m pipeline score` and --help read no params

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
_CODE_SHOWN_AS = {"\\": "\\\\", "`": "\\x60", "|": "\\|"}
_TEXT_SHOWN_AS = {"<": "&lt;", ">": "&gt;", "&": "&amp;",
                  "@": "@\u200b",       # no @-mention: the zero-width space ends the name
                  "#": "\\#\u200b"}     # no #123 reference, no heading
_MARKUP = frozenset("!#$()*+-<=>@[\\]_`{|}~&")  # what can start emphasis, links, HTML, math, lists ...


def _md_piece(ch: str, code: bool) -> str:
    shown = visible(ch)
    if code:
        return _CODE_SHOWN_AS.get(ch) or (shown if shown is not None else ch)
    if shown is not None:  # "\x1b" as text: its backslash escaped for markdown
        return "\\" + shown
    if ch in _TEXT_SHOWN_AS:
        return _TEXT_SHOWN_AS[ch]
    return "\\" + ch if ch in _MARKUP else ch


def md_cell(value, limit: int | None = None, *, code: bool = True) -> str:
    """Untrusted text as inert markdown: the one function for every value a person reads in
    the PR comment, the model card, the monitor report and its issue body.

    ``code=True`` (tables, URLs): one code span, shown as it is. Inside a code span nothing is
    markup, so ``<script>``, ``&amp;``, ``*``, ``_``, ``[x](y)``, ``![``, ``@user``, ``#1`` and bare
    URLs stay text (no HTML, link, image, mention or autolink). Only what could end the span
    or the row, or hide from the reader, is rewritten, visibly and unambiguously: ``\\`` ->
    ``\\\\``, a backtick -> ``\\x60``, ``|`` -> ``\\|`` (GFM tables turn it back into ``|``),
    control and format characters (newline, ESC, U+202E, zero-width ...) -> ``\\xNN`` /
    ``\\uNNNN`` (:func:`phishing_url_detector.text.visible`, the terminal's rule).

    ``code=False`` (prose that embeds a value): every ASCII punctuation character that can start
    markup is backslash-escaped (no emphasis, link, image, table pipe, math, list or code span;
    ``.``, ``,``, ``'``, ``:`` and ``/`` stay as they are), ``<``, ``>`` and
    ``&`` become entities (inert in HTML blocks too), ``@`` and ``#`` are followed by a
    zero-width space (no mention, no issue reference), and invisible characters are shown as
    in code spans.

    At most ``limit`` characters are shown (counted after rewriting, so the cell's size is
    bounded); a cut text is followed by ``…``.
    """
    if value is None:
        return MISSING
    text = str(value)
    if not text:
        return "*(empty)*"
    pieces, size = [], 0
    for ch in text:
        piece = _md_piece(ch, code)
        if limit is not None and size + len(piece) > limit:
            break
        pieces.append(piece)
        size += len(piece)
    cut = "…" if len(pieces) < len(text) else ""
    if not code:
        return "".join(pieces) + cut
    return "`" + "".join(pieces) + "`" + cut if pieces else cut


def md_table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    """A GFM table; cells are already formatted (numbers) or passed through :func:`md_cell` (text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- CSV a person opens (cells through csv_cell, the client's rule) ---------------------------------
def write_csv(frame, path: Path | str, **kwargs) -> None:
    """Every CSV a person may open is written here: its text cells through :func:`csv_cell`;
    numeric columns stay numbers."""
    import pandas as pd  # lazy: pandas takes ~0.3 s to import; the client's commands load this module without it

    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_object_dtype(out[column]) or pd.api.types.is_string_dtype(out[column]):
            # objects, not pandas' inferred str: text read from bytes that are not UTF-8 holds surrogate
            # escapes, which that type refuses (kwargs ``errors`` decides how they are written)
            out[column] = pd.Series([csv_cell(v) for v in out[column]], index=out.index, dtype=object)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, **kwargs)


def read_csv(path: Path | str, **kwargs):
    """A CSV written by :func:`write_csv`, read back exactly: every column as text (a URL "NA"
    stays "NA"), the protecting ``'`` removed."""
    import pandas as pd  # lazy: as in write_csv

    frame = pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
    for column in frame.columns:
        frame[column] = frame[column].map(csv_uncell)
    return frame


# -- plot labels -------------------------------------------------------------------------------------
def plot_text(value, limit: int = 80) -> str:
    """External text (a model version, a source name, a month) for a matplotlib title, label, tick
    label or legend entry: hidden characters shown as escapes (one line), ``$`` escaped so that
    mathtext never parses it (``$\\x$`` raises at draw time otherwise), at most ``limit``
    characters."""
    text = terminal(value)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text.replace("$", r"\$")


__all__ = [
    "MISSING",
    "ExitCode",
    "PipelineError",
    "csv_cell",
    "csv_uncell",
    "exit_code",
    "json_bytes",
    "load_params",
    "md5_file",
    "md_cell",
    "md_table",
    "plot_text",
    "read_csv",
    "read_json",
    "sha256_file",
    "terminal",
    "visible",
    "write_csv",
    "write_json",
]
