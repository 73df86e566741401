"""CSV read one physical line at a time: a broken line is one error row, never a merged or lost batch.

Python's ``csv`` module (and most CSV readers) lets a quoted field run across line ends. In a file
from outside, one stray ``"`` then folds every following line into a single field: 1,002 URLs become
two rows, with no error. Here a record is exactly one line, so the damage stays on the line that
carries it:

- a quoted field that is not closed on its line (an unbalanced quote, or a field with an embedded
  newline) is an error row;
- a quote inside an unquoted field, or anything but the delimiter after a closing quote, is an error
  row (RFC 4180 allows quotes only around a whole field, doubled inside it);
- a field over ``max_field_chars`` or a line over ``max_line_chars`` is an error row, read past in
  bounded memory, never a ``field larger than field limit`` traceback.

Rows are numbered by physical line (the header is line 1), so the number a report gives is the line a
person opens the file at. Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (universal newlines, as
``readline`` of a stream opened with ``newline=""`` splits them).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol, TypeVar

__all__ = ["DEFAULT_MAX_FIELD_CHARS", "DEFAULT_MAX_LINE_CHARS", "Line", "LineSource", "RowError", "bounded_lines",
           "read_lines", "split_fields"]

DEFAULT_MAX_LINE_CHARS = 1 << 20   # a longer line is not a row of URLs; it must not cost its size in RSS
DEFAULT_MAX_FIELD_CHARS = 1 << 16  # far above any URL a browser sends (about 2 KB to 64 KB)
_SHOWN = 100


class RowError(ValueError):
    """Why one line is not a CSV row (the message names the field and what was expected)."""


@dataclass(frozen=True)
class Line:
    """One physical line: its fields, or why it has none. ``text`` is the line (cut to a bounded
    prefix when it was too long), for a reject file."""

    number: int
    fields: list[str] | None
    error: str | None
    text: str


def _quoted(line: str, start: int, field: int) -> tuple[str, int]:
    """The quoted field opening at ``start``: (its value, the index after its closing quote)."""
    parts, position = [], start + 1
    while True:
        close = line.find('"', position)
        if close < 0:
            raise RowError(f"unbalanced quote: field {field} opens a quote at character {start + 1} that is not "
                           "closed on its line (a stray quote, or a field with an embedded newline)")
        parts.append(line[position:close])
        if line.startswith('"', close + 1):
            parts.append('"')
            position = close + 2
            continue
        return "".join(parts), close + 1


def split_fields(line: str, delimiter: str = ",", max_field_chars: int = DEFAULT_MAX_FIELD_CHARS) -> list[str]:
    """The fields of one line (no line end in it), or :class:`RowError` saying which field is wrong."""
    fields = line.split(delimiter) if '"' not in line else _split_quoted(line, delimiter)
    for number, value in enumerate(fields, 1):
        if len(value) > max_field_chars:
            raise RowError(f"field {number} is {len(value):,} characters, over the cap of {max_field_chars:,}")
    return fields


def _split_quoted(line: str, delimiter: str) -> list[str]:
    fields: list[str] = []
    position = 0
    while True:
        number = len(fields) + 1
        if line.startswith('"', position):
            value, position = _quoted(line, position, number)
            if position < len(line) and not line.startswith(delimiter, position):
                raise RowError(f"stray quote: field {number} has {line[position:position + 20]!r} after its closing "
                               f"quote, expected {delimiter!r} or the end of the line")
        else:
            end = line.find(delimiter, position)
            value = line[position:] if end < 0 else line[position:end]
            if '"' in value:
                raise RowError(f"stray quote: field {number} ({value[:_SHOWN]!r}) holds a quote but is not quoted "
                               "(quote the whole field and double the quote inside it)")
            position = len(line) if end < 0 else end
        fields.append(value)
        if position >= len(line):
            return fields
        position += len(delimiter)
        if position == len(line):  # a trailing delimiter: one more, empty field
            fields.append("")
            return fields


_Chars = TypeVar("_Chars", str, bytes)
_Chars_co = TypeVar("_Chars_co", str, bytes, covariant=True)


class LineSource(Protocol[_Chars_co]):
    """A text or binary stream, as far as :func:`bounded_lines` reads it."""

    def readline(self, size: int, /) -> _Chars_co: ...


class _CrlfKept:
    """``stream.readline(size)``, except that the ``\\n`` of a ``\\r\\n`` the size limit cut in two is
    not taken for a blank line of its own (``\\r`` then ``\\n`` is one line end, never two)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream, self._cut_after_cr = stream, False

    def readline(self, size: int) -> str:
        line = self._stream.readline(size)
        if self._cut_after_cr and line == "\n":
            line = self._stream.readline(size)
        self._cut_after_cr = len(line) == size and line.endswith("\r")
        return line


def bounded_lines(stream: LineSource[_Chars], max_chars: int,
                  line_ends: tuple[_Chars, ...]) -> Iterator[tuple[_Chars, bool]]:
    """Each line of ``stream`` as read (its end kept), and whether it is over ``max_chars`` characters
    (bytes, for a binary stream) before its end: then only its first ``max_chars + 1`` are given and
    the rest is read past, so a line costs about ``max_chars`` of memory whatever its length.
    Every bounded line reader uses it: CSV (:func:`read_lines`), URL lists (``batch``), JSON lines."""
    while line := stream.readline(max_chars + 1):
        too_long = len(line) > max_chars and not line.endswith(line_ends)
        if too_long:
            while (rest := stream.readline(max_chars)) and not rest.endswith(line_ends):
                pass
        yield line, too_long


def read_lines(stream: IO[str], *, delimiter: str = ",", max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
               max_field_chars: int = DEFAULT_MAX_FIELD_CHARS, first_line: int = 1) -> Iterator[Line]:
    """Every line of a text stream (opened with ``newline=""``) as a :class:`Line`, in order.

    A blank line has ``fields == []``; what a blank line means is the caller's rule."""
    lines = bounded_lines(_CrlfKept(stream), max_line_chars, ("\n", "\r"))  # a lone \r ends a line too
    for number, (line, too_long) in enumerate(lines, first_line):
        if too_long:
            yield Line(number, None, f"line longer than {max_line_chars:,} characters", line[:_SHOWN])
            continue
        text = line.removesuffix("\n").removesuffix("\r")
        if not text:
            yield Line(number, [], None, text)
            continue
        try:
            yield Line(number, split_fields(text, delimiter, max_field_chars), None, text)
        except RowError as exc:
            yield Line(number, None, str(exc), text[:max_field_chars])
