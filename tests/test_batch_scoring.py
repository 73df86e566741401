"""``score --file IN --output OUT`` (phishing_url_detector.batch) with a small real ensemble exported to ONNX.

Every format must give exactly what :meth:`Detector.score` gives for the same URLs, keep every input
row (with its number, or its error), write nothing half-done, and give the same bytes for any worker
count. Sizes are small (chunks of a few hundred rows) so that many chunks pass through the pool fast.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phishing_url_detector import batch, cli
from phishing_url_detector.detector import Detector
from phishing_url_detector.errors import LoaderError, VerificationError
from phishing_url_detector.releases import VerifiedModel
from phishing_url_detector.text import csv_uncell

CHUNK = 300  # rows per chunk: a 1,000-URL file is four chunks
HOSTILE = ["=HYPERLINK(\"http://evil.tk\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)",
           "'quoted", "http://a.tk/\"quote\",comma", "\thttp://tab.tk/", "http://ok.example/=x",
           "http://\u202egnp.tk/", "http://a.tk/\x1b[2K"]


@pytest.fixture(scope="module")
def model(small_onnx, tmp_path_factory) -> VerifiedModel:
    path = tmp_path_factory.mktemp("model") / "phishing-url-detector.onnx"
    path.write_bytes(small_onnx)
    return VerifiedModel(path, hashlib.sha256(small_onnx).hexdigest(), {"version": "1.2.3"}, "test")


@pytest.fixture(scope="module")
def detector(model) -> Detector:
    """One onnxruntime thread, as the batch scorer runs each batch (more threads move the last bit)."""
    return Detector(model, intra_op_threads=1)


@pytest.fixture(scope="module")
def urls(sample_frame) -> list[str]:
    return sample_frame["url"].sample(n=1000, random_state=0).tolist() + HOSTILE


def read_csv_output(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return [{k: csv_uncell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def read_output(path: Path) -> list[dict]:
    """Rows of either output format, scores as Python floats (None when absent)."""
    if path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = [{**r, "row": int(r["row"]), "score": float(r["score"]) if r["score"] else None,
                 "error": r["error"] or None} for r in read_csv_output(path)]
    return rows


def write_input(path: Path, urls: list[str], fmt: str) -> Path:
    if fmt == "text":
        path.write_text("".join(u + "\n" for u in urls), encoding="utf-8")
    elif fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([["id", "link"], *[[i, u] for i, u in enumerate(urls)]])
    else:
        pq.write_table(pa.table({"id": list(range(len(urls))), "link": urls}), path, row_group_size=128)
    return path


def run(model, src, out, **kwargs) -> batch.Summary:
    kwargs.setdefault("chunk_rows", CHUNK)
    kwargs.setdefault("workers", 1)
    return batch.score_file(model, str(src), out, **kwargs)


# -- the same results as Detector.score ----------------------------------------------------------------
@pytest.mark.parametrize("fmt,name,out", [("text", "in.txt", "out.csv"), ("csv", "in.csv", "out.parquet"),
                                          ("parquet", "in.parquet", "out.csv")])
def test_every_format_scores_as_detector_score(tmp_path, model, detector, urls, fmt, name, out):
    src = write_input(tmp_path / name, urls, fmt)
    summary = run(model, src, tmp_path / out, url_column="url" if fmt == "text" else "link")
    assert (summary.input_format, summary.rows, summary.errors) == (fmt, len(urls), 0)
    rows = read_output(tmp_path / out)
    expected = detector.score(urls)
    assert [r["row"] for r in rows] == list(range(1, len(urls) + 1))
    assert [r["url"] for r in rows] == urls  # hostile ones included, read back exactly
    assert [r["score"] for r in rows] == [e.p_phishing for e in expected]  # the same float32, bit for bit
    assert [r["verdict"] for r in rows] == [e.verdict for e in expected]
    assert {r["model_version"] for r in rows} == {"1.2.3"} and {r["error"] for r in rows} == {None}
    assert {"phishing", "legitimate"} <= {r["verdict"] for r in rows}


def test_gzipped_inputs_are_looked_through_and_csv_gz_output(tmp_path, model, detector, urls):
    plain = write_input(tmp_path / "in.csv", urls, "csv")
    gz = tmp_path / "urls.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    named_txt = tmp_path / "urls.txt"  # gzip is seen by its magic bytes, whatever the name
    named_txt.write_bytes(gzip.compress("".join(u + "\n" for u in urls).encode()))
    run(model, gz, tmp_path / "a.csv.gz", url_column="link")
    run(model, named_txt, tmp_path / "b.csv")
    a, b = read_output(tmp_path / "a.csv.gz"), read_output(tmp_path / "b.csv")
    with gzip.open(tmp_path / "a.csv.gz") as fh:
        assert fh.read(4) == b"row,"
    assert a == b and [r["score"] for r in a] == [e.p_phishing for e in detector.score(urls)]


# -- rows kept, numbered, with their errors --------------------------------------------------------------
def test_text_rows_are_line_numbers_and_bad_lines_are_error_rows(tmp_path, model, monkeypatch):
    monkeypatch.setattr(batch, "MAX_LINE_BYTES", 64)
    src = tmp_path / "in.txt"
    src.write_bytes(b"\xef\xbb\xbfhttp://bom.example/\r\n\n   \nhttp://b.example/\n\xff\xfe/bad\n"
                    + b"http://long.example/" + b"x" * 200 + b"\nhttp://after.example/")
    summary = run(model, src, tmp_path / "out.csv", chunk_rows=2)
    rows = read_output(tmp_path / "out.csv")
    assert [r["row"] for r in rows] == [1, 4, 5, 6, 7]  # blank lines 2, 3 skipped; numbers not reused
    assert [r["url"] for r in rows][:3] == ["http://bom.example/", "http://b.example/", "\\xff\\xfe/bad"]
    assert rows[4]["url"] == "http://after.example/" and rows[4]["score"] is not None
    assert rows[2]["verdict"] == "error" and "not valid UTF-8" in rows[2]["error"] and rows[2]["score"] is None
    assert rows[3]["verdict"] == "error" and "line longer than 64 bytes" in rows[3]["error"]
    assert "http://long.example/" in rows[3]["error"] and summary.errors == 2


def test_csv_and_parquet_bad_rows_are_error_rows(tmp_path, model):
    src = tmp_path / "in.csv"
    src.write_text('label,url\n0,http://a.example/\n1,\n1\n1,"http://multi\nline.example/"\n0,http://e.example/\n',
                   encoding="utf-8")
    run(model, src, tmp_path / "a.csv")
    a = read_output(tmp_path / "a.csv")
    assert [r["row"] for r in a] == [1, 2, 3, 4, 5, 6]  # data rows: row n is line n + 1, one record per line
    assert (a[1]["verdict"], a[1]["error"], a[1]["score"]) == ("error", "empty 'url' field", None)
    assert (a[2]["verdict"], a[2]["error"]) == ("error", "row has 1 fields, no 'url' field")
    assert a[3]["verdict"] == "error" and a[3]["error"].startswith("unbalanced quote: field 2 opens a quote")
    assert a[4]["verdict"] == "error" and a[4]["error"].startswith("stray quote: field 1")  # the line it ran into
    assert a[5]["url"] == "http://e.example/" and a[5]["score"] is not None
    pq.write_table(pa.table({"url": ["http://a.example/", None, "http://c.example/"]}), tmp_path / "n.parquet")
    run(model, tmp_path / "n.parquet", tmp_path / "c.parquet")
    rows = read_output(tmp_path / "c.parquet")
    assert [(r["row"], r["verdict"], r["error"]) for r in rows][1] == (2, "error", "null 'url'")
    assert rows[0]["score"] is not None and rows[2]["score"] is not None


# -- issue 19: strict parsing (findings 4, 5, 6) -----------------------------------------------------------
def test_a_stray_quote_costs_its_row_not_the_thousand_after_it(capsys, tmp_path, model, urls):
    """Finding 4: csv folded 1,000 URLs into one field after an unbalanced quote on row 2 ("scored 2 rows")."""
    good = [u for u in urls if '"' not in u and "," not in u][:1001]
    src = tmp_path / "in.csv"
    src.write_text("url\n" + good[0] + "\n" + 'http://stray.example/"login\n' + "".join(u + "\n" for u in good[1:]),
                   encoding="utf-8")
    out = tmp_path / "out.csv"
    code = cli.main(["score", "--allow-unverified", "--model", str(model.onnx_path), "--file", str(src),
                     "--output", str(out), "--workers", "1"])
    stdout, stderr = capsys.readouterr()
    assert code == 1 and stdout.startswith("scored 1,002 rows (1 errors)"), stdout + stderr
    rows = read_output(out)
    assert [r["row"] for r in rows] == list(range(1, 1003))
    assert rows[1]["verdict"] == "error" and rows[1]["error"].startswith("stray quote: field 1")
    assert [r["url"] for r in rows if r["error"] is None] == good
    assert all(r["score"] is not None for r in rows if r["error"] is None)


@pytest.mark.parametrize("fmt", ["csv", "text", "parquet"])
def test_one_200_kb_cell_is_an_error_row_and_the_batch_goes_on(tmp_path, model, fmt):
    """Finding 5: csv's field limit (131,072) stopped the whole batch with no output; a URL over
    MAX_URL_CHARS is an error row in every format (the same cap as a CSV field)."""
    name = {"csv": "in.csv", "text": "in.txt", "parquet": "in.parquet"}[fmt]
    urls = ["http://a.example/", "http://big.example/" + "x" * 200_000, "http://c.example/"]
    src = write_input(tmp_path / name, urls, fmt)
    summary = run(model, src, tmp_path / "out.csv", url_column="url" if fmt == "text" else "link")
    rows = read_output(tmp_path / "out.csv")
    assert (summary.rows, summary.errors) == (3, 1) and [r["row"] for r in rows] == [1, 2, 3]
    reason = rows[1]["error"]
    assert rows[1]["verdict"] == "error" and "200,019 characters, over the cap of 65,536" in reason, reason
    assert rows[0]["score"] is not None and rows[2]["url"] == "http://c.example/" and rows[2]["score"] is not None


def test_a_parquet_row_group_over_the_cap_is_refused_from_its_metadata(tmp_path, model, monkeypatch):
    """Finding 6: only the on-disk size bounded a Parquet file. The URL column's uncompressed size per row
    group (metadata) is checked before any page is read; a file of small row groups streams at any total."""
    src = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"url": [f"http://a.example/{i}/" + "a" * 2000 for i in range(200)]}), src,
                   row_group_size=100, compression="zstd")
    meta = pq.ParquetFile(src).metadata
    size = meta.row_group(0).column(0).total_uncompressed_size
    assert src.stat().st_size < 50_000 < size  # small on disk, large once decompressed
    monkeypatch.setattr(batch, "MAX_PARQUET_ROW_GROUP_BYTES", 50_000)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda *a, **k: pytest.fail("read before the check"))
    with pytest.raises(LoaderError) as caught:
        run(model, src, tmp_path / "out.csv")
    assert str(caught.value).startswith(f"{src}: row group 1 of 2 holds {size:,} bytes of 'url' uncompressed "
                                        "(from the file's metadata), over the cap of 50,000")
    monkeypatch.undo()
    largest = max(meta.row_group(g).column(0).total_uncompressed_size for g in range(2))
    monkeypatch.setattr(batch, "MAX_PARQUET_ROW_GROUP_BYTES", largest)  # each group fits; the file is twice that
    assert run(model, src, tmp_path / "out.csv").rows == 200


def test_parquet_invalid_utf8_is_an_error_row_not_a_traceback(tmp_path, model):
    """Parquet strings are not validated on write: to_pylist raised UnicodeDecodeError and lost the batch."""
    offsets = pa.py_buffer(pa.array([0, 17, 22, 39], pa.int32()).buffers()[1])
    data = pa.py_buffer(b"http://a.example/\xff\xfe/x/http://c.example/")
    column = pa.Array.from_buffers(pa.string(), 3, [None, offsets, data])
    pq.write_table(pa.table({"url": column}), tmp_path / "bad.parquet")
    summary = run(model, tmp_path / "bad.parquet", tmp_path / "out.csv")
    rows = read_output(tmp_path / "out.csv")
    assert (summary.rows, summary.errors) == (3, 1)
    assert rows[1]["url"] == "\\xff\\xfe/x/" and "not valid UTF-8" in rows[1]["error"]
    assert rows[0]["score"] is not None and rows[2]["score"] is not None


def test_a_corrupt_parquet_row_group_costs_its_rows_with_the_reason(tmp_path, model):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"url": [f"http://h{i}.example/{'p' * 50}" for i in range(300)]}), src,
                   row_group_size=100, compression="snappy", use_dictionary=False)
    meta = pq.ParquetFile(src).metadata.row_group(1).column(0)
    data = bytearray(src.read_bytes())
    start = meta.data_page_offset + 40  # inside the second row group's compressed page
    data[start:start + 200] = b"\xff" * 200
    src.write_bytes(bytes(data))
    summary = run(model, src, tmp_path / "out.csv")
    rows = read_output(tmp_path / "out.csv")
    assert summary.rows == 300 and [r["row"] for r in rows] == list(range(1, 301))
    assert {r["error"] is None for r in rows[:100] + rows[200:]} == {True}
    assert all(r["error"].startswith("row group 2 cannot be read: ") for r in rows[100:200]), rows[100]["error"]


def test_a_truncated_gzip_stops_with_the_file_named_not_a_traceback(capsys, tmp_path, model, urls):
    src = tmp_path / "in.csv.gz"
    plain = write_input(tmp_path / "in.csv", urls, "csv").read_bytes()
    src.write_bytes(gzip.compress(plain)[:-2000])
    code = cli.main(["score", "--allow-unverified", "--model", str(model.onnx_path), "--file", str(src),
                     "--url-column", "link", "--output", str(tmp_path / "out.csv"), "--workers", "1"])
    _, stderr = capsys.readouterr()
    assert code == 1 and f"\nerror: {src}: cannot read on after row " in stderr, stderr
    assert "Traceback" not in stderr
    assert not list(tmp_path.glob("out.csv*"))


@pytest.mark.parametrize("fmt,name,out", [("text", "in.txt", "out.csv"), ("csv", "in.csv", "out.parquet"),
                                          ("parquet", "in.parquet", "out.csv")])
def test_a_url_with_a_nul_is_an_error_row_and_the_others_are_scored(tmp_path, model, detector, fmt, name, out):
    """Runtimes disagree on a NUL (onnxruntime-node ends the string there): the client refuses it per
    URL, as detector.prepare_url says, in every format; the URL is kept as given."""
    urls = ["http://a.example/login", "http://evil/\x00x", "http://b.example/", "\x00", "http://c.example/"]
    src = write_input(tmp_path / name, urls, fmt)
    summary = run(model, src, tmp_path / out, url_column="url" if fmt == "text" else "link", chunk_rows=2)
    rows = read_output(tmp_path / out)
    assert (summary.rows, summary.errors) == (5, 2)
    assert [r["row"] for r in rows] == [1, 2, 3, 4, 5] and [r["url"] for r in rows] == urls
    for i, position in ((1, 12), (3, 0)):
        assert (rows[i]["verdict"], rows[i]["score"]) == ("error", None)
        assert rows[i]["error"].startswith(f"contains a NUL character (U+0000) at position {position}: ")
        assert "onnxruntime-node ends the string there" in rows[i]["error"]
    scored = [rows[i] for i in (0, 2, 4)]
    expected = detector.score([urls[i] for i in (0, 2, 4)])
    assert [r["score"] for r in scored] == [e.p_phishing for e in expected] and {r["error"] for r in scored} == {None}


def test_input_problems_are_clear_errors_before_any_output(tmp_path, model):
    src = write_input(tmp_path / "in.csv", ["http://a.example/"], "csv")
    with pytest.raises(LoaderError, match=r"in\.csv: no 'url' column in the header \(columns: 'id', 'link'\)"):
        run(model, src, tmp_path / "out.csv")
    pq.write_table(pa.table({"url": [1, 2]}), tmp_path / "ints.parquet")
    with pytest.raises(LoaderError, match="column 'url' is int64, expected strings"):
        run(model, tmp_path / "ints.parquet", tmp_path / "out.csv")
    with pytest.raises(LoaderError, match=r"name it \.csv, \.csv\.gz or \.parquet"):
        run(model, src, tmp_path / "out.json")
    with pytest.raises(LoaderError, match="cannot read --file"):
        run(model, tmp_path / "missing.txt", tmp_path / "out.csv")
    with pytest.raises(LoaderError, match="is the input file"):
        run(model, src, src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "ints.parquet"]


def test_missing_pyarrow_is_a_clear_error(tmp_path, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    src = write_input(tmp_path / "in.txt", ["http://a.example/"], "text")
    extra = r"pip install 'phishing-url-detector\[parquet\]'"
    with pytest.raises(LoaderError, match=r"writing Parquet needs pyarrow: " + extra):
        run(model, src, tmp_path / "out.parquet")
    with pytest.raises(LoaderError, match=r"reading Parquet needs pyarrow: " + extra):
        run(model, tmp_path / "in.parquet", tmp_path / "out.csv")
    assert not list(tmp_path.glob("out.parquet*"))
    run(model, src, tmp_path / "out.csv")  # CSV needs nothing extra
    assert read_output(tmp_path / "out.csv")[0]["url"] == "http://a.example/"


# -- hostile URLs in the CSV output ----------------------------------------------------------------------
def test_csv_output_cells_cannot_run_as_formulas(tmp_path, model):
    src = write_input(tmp_path / "in.csv", HOSTILE, "csv")
    run(model, src, tmp_path / "out.csv", url_column="link")
    with open(tmp_path / "out.csv", encoding="utf-8", newline="") as fh:
        raw = list(csv.DictReader(fh))
    formula = ("=", "+", "-", "@", "\t", "\r")
    assert not [r["url"] for r in raw if r["url"].startswith(formula)]
    assert [r["url"] for r in raw][:5] == ["'" + u for u in HOSTILE[:5]]
    assert [csv_uncell(r["url"]) for r in raw] == HOSTILE  # and read back exactly


# -- atomic output -------------------------------------------------------------------------------------
def test_a_failure_midway_leaves_no_output_and_keeps_an_old_one(tmp_path, model, urls):
    plain = write_input(tmp_path / "in.csv", urls[:700], "csv").read_bytes()
    src = tmp_path / "in.csv.gz"
    src.write_bytes(gzip.compress(plain)[:-100])  # the stream breaks after two chunks were written
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    with pytest.raises(LoaderError, match=r"in\.csv\.gz: cannot read on after row 6\d\d: "):
        run(model, src, out, url_column="link", workers=2)
    assert out.read_text() == "previous results\n"
    assert not (tmp_path / "out.csv.partial").exists()


def test_a_worker_refuses_a_model_changed_after_verification(tmp_path, model):
    stale = VerifiedModel(model.onnx_path, "0" * 64, model.manifest, "test")
    src = write_input(tmp_path / "in.txt", ["http://a.example/"] * 10, "text")
    with pytest.raises(VerificationError, match="does not match the verified 0000"):
        run(model=stale, src=src, out=tmp_path / "out.csv", workers=2)
    assert not list(tmp_path.glob("out.csv*"))


@pytest.mark.slow  # the CLI in a subprocess, with its worker processes
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_workers_and_leaves_no_output(tmp_path, model, sig, code):
    """A FIFO that never ends: the run is mid-stream, with worker processes up, when the signal comes."""
    import psutil

    fifo = tmp_path / "in.txt"
    os.mkfifo(fifo)
    out = tmp_path / "out.parquet"
    # Ctrl-C's default disposition, as in a terminal: under a shell that runs the tests in the background
    # (`.ci/run &`), children start with SIGINT ignored and Python then never raises KeyboardInterrupt.
    # A handled signal is reset to its default in a child at exec (an ignored one stays ignored), so the
    # child starts as from a terminal; no preexec_fn, which is unsafe with onnxruntime's threads here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "phishing_url_detector", "score", "--allow-unverified",
                                 "--model", str(model.onnx_path), "--file", str(fifo), "--output", str(out),
                                 "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    writer = open(fifo, "w")  # noqa: SIM115 (held open: the input never ends)
    try:
        writer.write("http://a.example/login\n" * (batch.CHUNK_ROWS + 10))
        writer.flush()
        deadline = time.monotonic() + 60
        while len(psutil.Process(proc.pid).children(recursive=True)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) >= 2
        time.sleep(1)  # the first chunk is in the workers' hands
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        writer.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "workers stopped, no output written" in err
    assert not list(tmp_path.glob("out.parquet*"))
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


# -- the same bits whatever the parallelism --------------------------------------------------------------
@pytest.mark.slow  # process pools: worker processes, like the CLI's subprocess tests
def test_worker_counts_and_modes_give_identical_bytes(tmp_path, model, urls):
    src = write_input(tmp_path / "in.txt", urls * 3, "text")
    outputs = {}
    for workers, parallel in ((1, "processes"), (2, "processes"), (3, "processes"), (2, "threads")):
        out = tmp_path / f"out-{workers}-{parallel}.csv"
        summary = run(model, src, out, workers=workers, parallel=parallel)
        assert summary.rows == 3 * len(urls) and summary.workers == workers
        outputs[(workers, parallel)] = out.read_bytes()
    assert len(set(outputs.values())) == 1, "scores differ between worker counts"
    for w in (1, 2):
        run(model, src, tmp_path / f"p{w}.parquet", workers=w)
    assert pq.read_table(tmp_path / "p1.parquet").equals(pq.read_table(tmp_path / "p2.parquet"))


def test_intra_op_threads_move_scores_by_an_ulp_at_most(tmp_path, model, urls):
    """Why the default runs each batch on one onnxruntime thread: its parallel kernels change the last bit."""
    src = write_input(tmp_path / "in.txt", urls, "text")
    run(model, src, tmp_path / "one.parquet", workers=1)
    run(model, src, tmp_path / "intra.parquet", workers=2, parallel="intra-op")
    one, intra = (pq.read_table(tmp_path / n).column("score").to_pylist() for n in ("one.parquet", "intra.parquet"))
    assert max(abs(a - b) for a, b in zip(one, intra)) <= 2.4e-7  # 2 float32 ulps near 1.0


# -- the command line ------------------------------------------------------------------------------------
def test_cli_writes_the_file_and_keeps_plain_scoring(capsys, tmp_path, model, detector):
    src = write_input(tmp_path / "in.txt", ["http://a.example/", "http://login.paypal.example.tk/"], "text")
    out = tmp_path / "out.csv"
    code = cli.main(["score", "--allow-unverified", "--model", str(model.onnx_path), "--file", str(src),
                     "--output", str(out), "--workers", "1"])
    stdout, _ = capsys.readouterr()
    assert code == 0 and stdout.startswith("scored 2 rows (0 errors)") and str(out) in stdout
    assert [r["url"] for r in read_output(out)] == ["http://a.example/", "http://login.paypal.example.tk/"]
    code = cli.main(["score", "--allow-unverified", "--model", str(model.onnx_path), "--file", str(src)])
    stdout, _ = capsys.readouterr()
    assert code == 0 and len(stdout.splitlines()) == 2 and "http://a.example/" in stdout.splitlines()[0]
    code = cli.main(["score", "--allow-unverified", "--model", str(model.onnx_path), "--file", str(src),
                     "--workers", "2"])
    _, err = capsys.readouterr()
    assert code == 2 and "--workers only apply with --output" in err


def test_plain_score_refuses_a_url_over_the_cap_as_output_does(capsys, model):
    """The same URL, the same outcome, whichever way it comes in: a URL over MAX_URL_CHARS is an error
    for ``score URL`` too (it cost ~0.2 s of onnxruntime per 70,000 characters), the others are scored."""
    big = "http://big.example/" + "x" * batch.MAX_URL_CHARS
    code = cli.main(["score", "--allow-unverified", "--model", str(model.onnx_path), "--json",
                     "http://a.example/", big, "http://c.example/"])
    results = json.loads(capsys.readouterr().out)["results"]
    assert code == 1 and [r["url"] for r in results] == ["http://a.example/", big, "http://c.example/"]
    assert results[1]["error"] == f"URL is {len(big):,} characters, over the cap of 65,536"
    assert "p_phishing" in results[0] and "p_phishing" in results[2]
