"""Reading untrusted, possibly compressed files with a ceiling on what they may expand to.

A 300 KB ``.csv.gz`` can expand to gigabytes. Every reader of files a pull
request or a production system hands us (``ingest`` batches, ``monitor`` logs)
opens them through :func:`open_capped`, which decompresses as a stream and
stops at the cap, so nothing is ever inflated into memory before the limit is
checked. The error says which file, which cap, which param raises it and how
much was read, because the fix is either "raise the param" or "this file is
hostile", and a person has to decide which.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
from dataclasses import dataclass
from pathlib import Path

from pipeline.common import PipelineError

DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 16


class LimitExceeded(PipelineError, ValueError):
    """A file is larger (decompressed) or longer than a configured cap allows."""


@dataclass(frozen=True)
class Caps:
    """Ceilings for one file: decompressed bytes and lines, each with the param that sets it, and
    (for readers that parse fields: the monitor's staging) the characters one field may hold."""

    max_bytes: int
    max_rows: int
    bytes_param: str
    rows_param: str
    max_field_chars: int = 1 << 16
    field_param: str = "max_field_chars"

    def __post_init__(self):
        for value, param in ((self.max_bytes, self.bytes_param), (self.max_rows, self.rows_param),
                             (self.max_field_chars, self.field_param)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise PipelineError(f"params {param}: expected a positive integer, got {value!r}")


class CountingReader(io.RawIOBase):
    """A binary stream over ``inner`` that counts bytes and newlines as they pass
    and raises :class:`LimitExceeded` the moment either passes its cap.

    ``header_lines`` lines (a CSV header) are not counted as rows.
    """

    def __init__(self, inner, caps: Caps, name: str, header_lines: int = 0):
        super().__init__()
        self._inner, self._caps, self._name = inner, caps, name
        self._header = header_lines
        self.bytes_read = 0
        self.lines_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(min(len(buffer), CHUNK))  # small steps: the cap is checked often
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        self.lines_read += data.count(b"\n")
        self._check()
        return n

    @property
    def rows_read(self) -> int:
        return max(0, self.lines_read - self._header)

    def _check(self) -> None:
        caps = self._caps
        if self.bytes_read > caps.max_bytes:
            raise LimitExceeded(
                f"{self._name}: more than {caps.max_bytes:,} bytes after decompression "
                f"(cap params {caps.bytes_param}; read {self.bytes_read:,} bytes, {self.rows_read:,} rows "
                f"so far); raise {caps.bytes_param} if the file is genuine")
        if self.rows_read > caps.max_rows:
            raise LimitExceeded(
                f"{self._name}: more than {caps.max_rows:,} rows (cap params {caps.rows_param}; read "
                f"{self.rows_read:,} rows, {self.bytes_read:,} bytes so far); raise {caps.rows_param} "
                "if the file is genuine")

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def _raw_opener(path: Path, sniff_gzip: bool):
    opener = DECOMPRESSORS.get(path.suffix.lower())
    if opener is None and sniff_gzip:
        with open(path, "rb") as fh:
            opener = gzip.open if fh.read(2) == GZIP_MAGIC else None
    return opener or open


def open_capped(path: Path | str, caps: Caps, *, header_lines: int = 0,
                sniff_gzip: bool = False) -> io.BufferedReader:
    """``path`` as a buffered binary stream of its decompressed bytes, stopped at ``caps``.

    Compression is chosen by suffix (``.gz``, ``.bz2``, ``.xz``); ``sniff_gzip``
    also recognises gzip by its magic bytes (an ``ingest`` batch may be named
    ``.csv`` yet be gzipped).
    """
    path = Path(path)
    if path.suffix.lower() == ".zst":  # pragma: no cover - needs the optional zstandard package
        import zstandard  # lazy: an optional package, needed for .zst files only
        inner = zstandard.open(path, "rb")
    else:
        inner = _raw_opener(path, sniff_gzip)(path, "rb")
    return io.BufferedReader(CountingReader(inner, caps, str(path), header_lines), buffer_size=1 << 16)


def read_capped(path: Path | str, caps: Caps, *, header_lines: int = 0, sniff_gzip: bool = False) -> bytes:
    """All decompressed bytes of ``path``, refusing (before holding more than the cap) a file above ``caps``."""
    with open_capped(path, caps, header_lines=header_lines, sniff_gzip=sniff_gzip) as fh:
        return fh.read()


def check_capped(path: Path | str, caps: Caps, *, header_lines: int = 0,
                 sniff_gzip: bool = False) -> tuple[int, int]:
    """Stream ``path`` to the end without keeping it: ``(decompressed bytes, rows)``, or
    :class:`LimitExceeded` as soon as a cap is passed. For readers that take a path."""
    with open_capped(path, caps, header_lines=header_lines, sniff_gzip=sniff_gzip) as fh:
        while fh.read(1 << 20):
            pass
        counter = fh.raw
        assert isinstance(counter, CountingReader)
        return counter.bytes_read, counter.rows_read
