"""``score --file IN --output OUT``: a URL file of any size, streamed, scored on every core, written atomically.

Why this shape:

- Constant memory. The input is read as a stream of records cut into fixed chunks of
  :data:`CHUNK_ROWS`; at most ``2 x workers`` chunks are in flight, and results are written in input
  order as they come back. Nothing holds the whole file, so 10M or 1G URLs need the same RSS.
- Every core. ``processes`` (the default, measured fastest: see benchmarks/RESULTS.md): a pool of
  worker processes, each loading the model the parent verified, re-checking its sha256 on the bytes it
  loads (:func:`detector.verified_bytes`), with one onnxruntime thread each. ``threads``: one session
  in this process, run by ``workers`` threads at once (onnxruntime releases the GIL). ``intra-op``: one
  session with ``workers`` onnxruntime intra-op threads.
- Same bits whatever the worker count. Chunks are cut by row count, never by timing, so every worker
  count feeds onnxruntime the same batches, and each batch runs on one onnxruntime thread: its parallel
  kernels (``intra-op``, or the Detector's default) sum in a thread-dependent order, which moves about
  15% of the scores by one float32 ulp. Scoring is :meth:`Detector.score`, the product's one path.
- Nothing dropped, nothing half-written. Each record keeps its input row number; a URL that cannot be
  scored becomes an ``error`` row with its reason. Output goes to ``OUT.partial`` and is renamed to
  ``OUT`` only when complete; Ctrl-C / SIGTERM stop the workers and remove the partial file.

Formats: input plain text (one URL per line), CSV (a header and a URL column) or Parquet, any of the
first two gzipped (seen by its magic bytes); output CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``).
Parquet needs pyarrow (``pip install 'phishing-url-detector[parquet]'``), imported only when used.
"""
from __future__ import annotations

import collections
import contextlib
import csv
import gzip
import io
import itertools
import os
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

from phishing_url_detector.errors import LoaderError
from phishing_url_detector.releases import VerifiedModel
from phishing_url_detector.strict_csv import (
    DEFAULT_MAX_FIELD_CHARS,
    Line,
    bounded_lines,
    read_lines,
)
from phishing_url_detector.text import csv_cell

if TYPE_CHECKING:  # imported when chunks are scored, not by `score --help`: see chunk_scorer
    from concurrent.futures import Executor, Future

    from phishing_url_detector.detector import Detector

CHUNK_ROWS = 16384  # a multiple of detector.BATCH, so onnxruntime sees full batches
MAX_LINE_BYTES = 1 << 20  # a longer text line (or CSV line, in characters) must not cost its size in RSS
MAX_URL_CHARS = DEFAULT_MAX_FIELD_CHARS  # a longer URL (or CSV field) is an error row, whatever the format
MAX_PARQUET_ROW_GROUP_BYTES = 512 << 20  # the URL column of one row group, uncompressed: what a read may hold
COLUMNS = ("row", "url", "score", "verdict", "model_version", "error")
INPUT_FORMATS = ("text", "csv", "parquet")
PARALLEL = ("processes", "threads", "intra-op")
DEFAULT_PARALLEL = "processes"
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_ROW_GROUP = 65536


# -- formats ------------------------------------------------------------------------------------------
def _base_name(path: str | os.PathLike[str]) -> str:
    name = Path(path).name.lower()
    return name.removesuffix(".gz")


def input_format(path: str | os.PathLike[str], override: str | None = None) -> str:
    """``text``, ``csv`` or ``parquet``: ``override``, else the extension (``.gz`` looked through)."""
    if override:
        return override
    name = _base_name(path)
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv" if name.endswith(".csv") else "text"


def output_format(path: str | os.PathLike[str]) -> str:
    """``csv`` or ``parquet`` from OUT's extension; anything else is refused before any work."""
    name = Path(path).name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise LoaderError(f"--output {path}: name it .csv, .csv.gz or .parquet (the format follows the extension)")


def require_pyarrow(why: str) -> Any:
    """The pyarrow module (untyped: Any), or a LoaderError saying how to get it: the client does not depend on it."""
    try:
        import pyarrow  # lazy: an optional extra ([parquet]), for Parquet files only
        import pyarrow.parquet  # lazy: as above
    except ImportError:
        raise LoaderError(f"{why} needs pyarrow: pip install 'phishing-url-detector[parquet]'") from None
    return pyarrow


# -- reading: (row, url, error) records -----------------------------------------------------------------
# A record is a tuple (row, url, error): row is the 1-based line (text) or data row (CSV, Parquet);
# url is None when error says why there is nothing to score (a plain tuple: there are millions).
Record = tuple[int, str | None, str | None]
ByteStream = IO[bytes] | gzip.GzipFile  # what open_input gives: the file or stdin, maybe gunzipped


@contextlib.contextmanager
def open_input(path: str) -> Iterator[ByteStream]:
    """``path`` ('-' = stdin) as a binary stream, gunzipped when it starts with the gzip magic."""
    try:
        raw = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise LoaderError(f"cannot read --file {path}: {exc.strerror}") from None
    # stdin's buffer when it is not a BufferedReader already (a pipe wrapper, a BytesIO) has readinto
    stream = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
    try:
        yield gzip.GzipFile(fileobj=stream, mode="rb") if stream.peek(2)[:2] == _GZIP_MAGIC else stream
    finally:
        if path != "-":
            raw.close()


def _shown(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def too_long(url: str) -> str | None:
    """Why ``url`` is not scored for its length (the same cap as a CSV field), or None."""
    if len(url) > MAX_URL_CHARS:
        return f"URL is {len(url):,} characters, over the cap of {MAX_URL_CHARS:,}"
    return None


def text_records(stream: ByteStream) -> Iterator[Record]:
    """One URL per line, as the plain ``score --file`` reads them: UTF-8 (a BOM skipped, undecodable
    bytes kept as surrogates, so the URL becomes an error row, not a crash), ``\\r\\n`` or ``\\n``,
    blank lines skipped (their numbers are not reused); a line over the caps is an error row."""
    for row, (line, over_cap) in enumerate(bounded_lines(stream, MAX_LINE_BYTES, (b"\n",)), 1):
        if over_cap:
            head = line[:200].decode("utf-8", "surrogateescape")
            yield row, None, f"line longer than {MAX_LINE_BYTES:,} bytes (starts {_shown(head, 100)!r})"
            continue
        text = line.decode("utf-8", "surrogateescape").rstrip("\n").rstrip("\r")
        if row == 1:
            text = text.removeprefix("\ufeff")
        if text.strip():
            error = too_long(text)
            yield (row, None, error) if error else (row, text, None)


def csv_records(stream: ByteStream, source: str, url_column: str = "url") -> Iterator[Record]:
    """A CSV with a header: the ``url_column`` cell of each data row (row n is line n + 1: a record is
    one line, :mod:`strict_csv`). A broken line (an unbalanced or stray quote, an embedded newline, a
    field over :data:`MAX_URL_CHARS`, a line over :data:`MAX_LINE_BYTES` characters), an empty cell or
    a short row is an error row with its reason. The header is checked now; an unreadable one stops here."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    lines = read_lines(text, max_line_chars=MAX_LINE_BYTES, max_field_chars=MAX_URL_CHARS)
    header = next(lines, None)
    if header is None:
        raise LoaderError(f"{source}: empty CSV, expected a header with a {url_column!r} column")
    if header.fields is None:  # a Line has fields, or the error that stopped them
        raise LoaderError(f"{source}: unreadable CSV header (line 1): {header.error}")
    if url_column not in header.fields:
        raise LoaderError(f"{source}: no {url_column!r} column in the header (columns: "
                          f"{', '.join(repr(_shown(h, 40)) for h in header.fields[:20])}); pass --url-column")
    return _csv_rows(lines, header.fields.index(url_column), url_column)


def _csv_rows(lines: Iterator[Line], index: int, url_column: str) -> Iterator[Record]:
    for line in lines:
        row = line.number - 1
        if line.fields is None:  # a broken line: its error says why
            yield row, None, line.error
        elif index >= len(line.fields):
            yield row, None, f"row has {len(line.fields)} fields, no {url_column!r} field"
        elif not line.fields[index].strip():
            yield row, None, f"empty {url_column!r} field"
        else:
            yield row, line.fields[index], None


def parquet_records(path: str, url_column: str = "url", batch_rows: int = CHUNK_ROWS,
                    max_row_group_bytes: int | None = None) -> Iterator[Record]:
    """The ``url_column`` of a Parquet file, read one record batch at a time; a null is an error row.
    The schema, and the uncompressed size of the column in every row group (from the file's metadata,
    at most ``max_row_group_bytes``, default :data:`MAX_PARQUET_ROW_GROUP_BYTES`), are checked now,
    before anything is decompressed."""
    pa = require_pyarrow("reading Parquet")
    if path == "-" or _base_name(path) != Path(path).name.lower():
        raise LoaderError(f"--file {path}: Parquet is read from a seekable, uncompressed file (it compresses "
                          "its own pages); not stdin, not gzipped")
    try:
        reader = pa.parquet.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise LoaderError(f"cannot read Parquet --file {path}: {exc}") from None
    schema = reader.schema_arrow
    if url_column not in schema.names:
        raise LoaderError(f"{path}: no {url_column!r} column (columns: {', '.join(schema.names[:20])}); "
                          "pass --url-column")
    if schema.names.count(url_column) > 1:
        raise LoaderError(f"{path}: {schema.names.count(url_column)} columns are named {url_column!r}")
    kind = schema.field(url_column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise LoaderError(f"{path}: column {url_column!r} is {kind}, expected strings")
    check_parquet_size(reader.metadata, path, url_column,
                       MAX_PARQUET_ROW_GROUP_BYTES if max_row_group_bytes is None else max_row_group_bytes)
    return _parquet_rows(reader, url_column, batch_rows)


def check_parquet_size(metadata: Any, path: str, url_column: str, cap: int) -> None:
    """Refuse a row group whose ``url_column`` decompresses to more than ``cap`` bytes, by its
    metadata: a read holds up to one row group's column (its dictionary, a page), so a few MB on disk
    must not become GBs in memory. The whole file may be larger: it is streamed."""
    leaves = [j for j in range(metadata.num_columns) if metadata.schema.column(j).path == url_column]
    for group in range(metadata.num_row_groups):
        size = sum(metadata.row_group(group).column(j).total_uncompressed_size for j in leaves)
        if size > cap:
            raise LoaderError(f"{path}: row group {group + 1:,} of {metadata.num_row_groups:,} holds {size:,} bytes "
                              f"of {url_column!r} uncompressed (from the file's metadata), over the cap of {cap:,}; "
                              "write it with smaller row groups (pyarrow.parquet.write_table(row_group_size=...))")


def _parquet_rows(reader: Any, url_column: str, batch_rows: int) -> Iterator[Record]:
    """Row group by row group: one that cannot be decoded makes its unread rows error rows (the
    metadata gives their count), and reading goes on with the next."""
    pa = require_pyarrow("reading Parquet")
    row = 0
    for group in range(reader.metadata.num_row_groups):
        expected, done = reader.metadata.row_group(group).num_rows, 0
        why = f"row group {group + 1:,} ended before its {expected:,} rows"
        try:
            for batch in reader.iter_batches(batch_size=batch_rows, row_groups=[group], columns=[url_column]):
                for url in _texts(batch.column(0), pa):
                    row, done = row + 1, done + 1
                    if url is None:
                        yield row, None, f"null {url_column!r}"
                    else:
                        error = too_long(url)
                        yield (row, None, error) if error else (row, url, None)
        except (OSError, ValueError, pa.ArrowException) as exc:
            why = f"row group {group + 1:,} cannot be read: {exc}"
        for _ in range(expected - done):
            row += 1
            yield row, None, why


def _texts(column: Any, pa: Any) -> list[str | None]:
    """A string column as Python text; invalid UTF-8 kept as surrogates (an error row, not a crash)."""
    try:
        texts: list[str | None] = column.to_pylist()
        return texts
    except UnicodeDecodeError:
        binary = pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()
        return [None if b is None else b.decode("utf-8", "surrogateescape") for b in column.cast(binary).to_pylist()]


def _read_guard(records: Iterator[Record], source: str) -> Iterator[Record]:
    """A stream that breaks while being read (a truncated or corrupt gzip) stops the run with the file named."""
    row = 0
    try:
        for record in records:
            row = record[0]
            yield record
    except (OSError, EOFError, zlib.error) as exc:
        raise LoaderError(f"{source}: cannot read on after row {row:,}: {exc}") from None


def read_records(path: str, fmt: str, url_column: str, stack: contextlib.ExitStack) -> Iterator[Record]:
    """The records of ``path`` in format ``fmt``; files stay open until ``stack`` closes."""
    if fmt == "parquet":
        return parquet_records(path, url_column)
    stream = stack.enter_context(open_input(path))
    source = "stdin" if path == "-" else path
    try:
        records = csv_records(stream, source, url_column) if fmt == "csv" else text_records(stream)
    except (OSError, EOFError, zlib.error) as exc:
        raise LoaderError(f"{source}: cannot read it: {exc}") from None
    return _read_guard(records, source)


def chunked(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """Fixed-size chunks in input order: the cut depends on row count only, never on the worker count."""
    records = iter(records)
    while chunk := list(itertools.islice(records, size)):
        yield chunk


# -- scoring: in this process, or in a pool of worker processes ----------------------------------------
Scored = tuple[list[float | None], list[str], list[str | None]]  # scores, verdicts, errors: aligned with the URLs
ChunkScorer = Callable[[Iterable[list[Record]]], Iterator[tuple[list[Record], Scored]]]


def score_urls(detector: Detector, urls: list[str]) -> Scored:
    """:meth:`Detector.score` as three columns (cheap to send between processes)."""
    results = detector.score(urls)
    return ([r.p_phishing for r in results], [r.verdict for r in results], [r.error for r in results])


@dataclass
class _Worker:
    """A worker process's model, or why its initializer could not load it."""

    detector: Detector | None = None
    error: LoaderError | None = None


_WORKER = _Worker()


def _init_worker(model: VerifiedModel) -> None:
    """Load the verified model in a worker: Detector re-hashes the bytes it hands to onnxruntime."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    # lazy: numpy and onnxruntime, which `score --help` does not need (it imports this module)
    from phishing_url_detector.detector import Detector

    try:
        _WORKER.detector = Detector(model, intra_op_threads=1)
    except LoaderError as exc:  # reported with the first chunk: a failing initializer only breaks the pool
        _WORKER.error = exc


def _score_in_worker(urls: list[str]) -> Scored:
    if _WORKER.detector is None:
        raise _WORKER.error or LoaderError("no model in this worker process: its initializer did not run")
    return score_urls(_WORKER.detector, urls)


def _to_score(chunk: list[Record]) -> list[str]:
    """The URLs of the chunk's records that have one (the others are error rows already)."""
    return [url for _, url, _error in chunk if url is not None]


def _in_order(submit: Callable[[list[str]], Future[Scored]], chunks: Iterable[list[Record]],
              in_flight: int) -> Iterator[tuple[list[Record], Scored]]:
    """Submit chunks with at most ``in_flight`` outstanding; yield (chunk, scored) in input order."""
    pending: collections.deque[tuple[list[Record], Future[Scored]]] = collections.deque()
    for chunk in chunks:
        pending.append((chunk, submit(_to_score(chunk))))
        if len(pending) >= in_flight:
            done, future = pending.popleft()
            yield done, future.result()
    while pending:
        done, future = pending.popleft()
        yield done, future.result()


@contextlib.contextmanager
def chunk_scorer(model: VerifiedModel, workers: int, parallel: str) -> Iterator[ChunkScorer]:
    """A function chunks -> (chunk, scored) in input order, on ``workers`` processes or threads.

    Every mode but ``intra-op`` runs each chunk on one onnxruntime thread, so the bits are the same for
    any ``workers``; onnxruntime's own parallel kernels (``intra-op``) sum in a thread-dependent order."""
    # lazy: `score --help` imports this module; the pools cost it ~8 ms with multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    # lazy: numpy and onnxruntime, only when scoring
    from phishing_url_detector.detector import Detector

    if workers == 1 or parallel == "intra-op":
        detector = Detector(model, intra_op_threads=workers)
        yield lambda chunks: ((c, score_urls(detector, _to_score(c))) for c in chunks)
        return
    pool: Executor
    if parallel == "threads":  # one session, run concurrently: onnxruntime releases the GIL while it runs
        detector = Detector(model, intra_op_threads=1)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="score")

        def submit(urls: list[str]) -> Future[Scored]:
            return pool.submit(score_urls, detector, urls)
    else:  # spawn: a fresh interpreter per worker (no forked onnxruntime or lock state), the same on every OS
        import multiprocessing  # lazy: as concurrent.futures above

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(model,))

        def submit(urls: list[str]) -> Future[Scored]:
            return pool.submit(_score_in_worker, urls)
    try:
        yield lambda chunks: _in_order(submit, chunks, 2 * workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # running chunks finish; queued ones are dropped


# -- writing ------------------------------------------------------------------------------------------
def storable(url: str) -> str:
    """``url`` as valid UTF-8 text: undecodable input bytes (kept as surrogates) shown as ``\\xNN``."""
    try:
        url.encode("utf-8")
        return url
    except UnicodeEncodeError:
        pass
    try:
        return url.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return url.encode("utf-8", "backslashreplace").decode("ascii")


@dataclass
class Columns:
    """One chunk's output, column by column, in input order."""

    row: list[int] = field(default_factory=list)
    url: list[str] = field(default_factory=list)
    score: list[float | None] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)
    error: list[str | None] = field(default_factory=list)


def merge(chunk: list[Record], scored: Scored) -> Columns:
    """The chunk's records with the scores of the ones that were scored, as output columns."""
    out = Columns()
    results = zip(*scored)
    for row, url, error in chunk:
        out.row.append(row)
        if url is not None:  # scored (see _to_score): its result is the next one
            score, verdict, error = next(results)
        else:
            score, verdict = None, "error"
        out.url.append(storable(url if url is not None else ""))
        out.score.append(score)
        out.verdict.append(verdict)
        out.error.append(error)
    return out


class CsvSink:
    """RFC 4180 CSV through :func:`csv_cell` (a URL cannot run as a spreadsheet formula); exact scores."""

    def __init__(self, path: Path, version: str, gzipped: bool) -> None:
        raw = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._raw = raw
        binary = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if gzipped else raw
        self._file = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(COLUMNS)
        self._version = csv_cell(version)

    def write(self, cols: Columns) -> None:
        self._writer.writerows(
            (row, csv_cell(url), "" if score is None else repr(score), verdict, self._version,
             "" if error is None else csv_cell(error))
            for row, url, score, verdict, error in zip(cols.row, cols.url, cols.score, cols.verdict, cols.error))

    def close(self) -> None:
        self._file.close()
        self._raw.close()


class ParquetSink:
    """Parquet, row groups of about :data:`_PARQUET_ROW_GROUP` rows; ``score`` is the model's float32."""

    def __init__(self, path: Path, version: str) -> None:
        self._pa = pa = require_pyarrow("writing Parquet")
        self._schema = pa.schema([("row", pa.int64()), ("url", pa.string()), ("score", pa.float32()),
                                  ("verdict", pa.string()), ("model_version", pa.string()), ("error", pa.string())])
        self._writer = pa.parquet.ParquetWriter(str(path), self._schema)
        self._buffer: list[Any] = []  # pyarrow tables, one per chunk, until a row group is full
        self._version, self._rows = version, 0

    def write(self, cols: Columns) -> None:
        pa = self._pa
        n = len(cols.row)
        self._buffer.append(pa.table([pa.array(cols.row, pa.int64()), pa.array(cols.url, pa.string()),
                                      pa.array(cols.score, pa.float32()), pa.array(cols.verdict, pa.string()),
                                      pa.array([self._version] * n, pa.string()), pa.array(cols.error, pa.string())],
                                     schema=self._schema))
        self._rows += n
        if self._rows >= _PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(self._pa.concat_tables(self._buffer))
        self._buffer, self._rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def open_sink(path: Path, final: Path, version: str) -> CsvSink | ParquetSink:
    if output_format(final) == "parquet":
        return ParquetSink(path, version)
    return CsvSink(path, version, gzipped=final.name.lower().endswith(".gz"))


# -- the whole run ------------------------------------------------------------------------------------
class Stopped(Exception):
    """SIGTERM: stop the way Ctrl-C does (workers stopped, no output left behind)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.exit_code = 128 + signum


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Stopped` in the main thread while the run lasts (Ctrl-C already raises)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> NoReturn:
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class Summary:
    """What a run did, for the command line's last line (and its --json)."""

    input: str
    output: str
    input_format: str
    rows: int = 0
    errors: int = 0
    workers: int = 1
    parallel: str = DEFAULT_PARALLEL
    seconds: float = 0.0


def check_paths(source: str, output: Path) -> None:
    """Refuse an output name, a missing directory or a missing pyarrow before any work starts."""
    if output_format(output) == "parquet":
        require_pyarrow("writing Parquet")
    if source != "-" and Path(source).resolve() == output.resolve():
        raise LoaderError(f"--output {output} is the input file")
    if not output.parent.is_dir():
        raise LoaderError(f"--output {output}: directory {output.parent} does not exist")


def score_file(model: VerifiedModel, source: str, output: str | os.PathLike[str], *, url_column: str = "url",
               fmt: str | None = None, workers: int | None = None, parallel: str = DEFAULT_PARALLEL,
               chunk_rows: int = CHUNK_ROWS, progress: Callable[[Summary], None] | None = None) -> Summary:
    """Score every record of ``source`` into ``output`` (written as ``output.partial``, renamed when
    complete; removed on any failure or interrupt)."""
    output = Path(output)
    check_paths(source, output)
    workers = workers or default_workers()
    summary = Summary(source, str(output), input_format(source, fmt), workers=workers,
                      parallel=parallel if workers > 1 else "single")
    partial = output.with_name(output.name + ".partial")
    started, last = time.perf_counter(), time.perf_counter()
    try:
        with stop_on_sigterm(), contextlib.ExitStack() as stack:
            records = read_records(source, summary.input_format, url_column, stack)
            score_chunks = stack.enter_context(chunk_scorer(model, summary.workers, parallel))
            sink = open_sink(partial, output, model.version or "")
            try:
                for chunk, scored in score_chunks(chunked(records, chunk_rows)):
                    cols = merge(chunk, scored)
                    sink.write(cols)
                    summary.rows += len(cols.row)
                    summary.errors += sum(e is not None for e in cols.error)
                    if progress and time.perf_counter() - last >= 10:
                        last = time.perf_counter()
                        summary.seconds = last - started
                        progress(summary)
            finally:
                sink.close()
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    summary.seconds = time.perf_counter() - started
    return summary
