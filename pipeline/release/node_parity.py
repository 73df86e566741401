"""The product's own runtime is part of the check: onnxruntime-node must score the shipped graph as
Python onnxruntime does.

A Node.js product loads the same ONNX file with onnxruntime-node, a separately built binary with its
own string-tensor marshalling. ``python -m pipeline node-parity`` scores the export's parity URLs
(a spread of ``data/prepared/test.parquet``) plus :data:`HOSTILE_URLS` with both runtimes, fed as
the Python client feeds them (``detector.prepare_url``: normalised, one ``[n, 1]`` string tensor per
batch), and refuses any label difference: at the manifest's threshold and in the graph's ``label``
output. onnxruntime-node comes from ``make onnxruntime-node`` (``$ONNXRUNTIME_NODE_DIR``).

A URL the client refuses reaches neither runtime; it is counted, not compared. That is how NUL is
handled: onnxruntime-node ends a string input at its first NUL (Python onnxruntime scores all of it),
so the client refuses any URL with a NUL (``prepare_url``, its one input rule), and this check
insists that it does: a NUL the client would score is a failure, as is any other label difference.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd

from phishing_url_detector import contract
from phishing_url_detector.detector import NUL, prepare_url
from pipeline import paths
from pipeline.common import ExitCode, PipelineError, read_json, sha256_file, terminal

log = logging.getLogger(__name__)

SCORER = Path(__file__).with_name("node_score.js")
NODE_DIR_ENV = "ONNXRUNTIME_NODE_DIR"
DEFAULT_NODE_DIR = Path(".venv/onnxruntime-node/node_modules")  # where `make onnxruntime-node` installs
MAKE_HINT = "run `make onnxruntime-node` (or point $ONNXRUNTIME_NODE_DIR at a node_modules holding it)"
# Batches: at most ROWS rows, and rows x longest URL (UTF-8 bytes) <= CELLS: the graph pads every row
# to its batch's longest URL, so a 100k-character URL must not pad 255 others (gigabytes of strings).
ROWS, CELLS = 256, 256 * 2048
MAX_URLS = 5000

# Strings a URL field can carry; JSON carries them to node (so no lone surrogates). The lists in
# tests/test_onnx_parity.py and tests/test_hostile_output.py are included (a test checks it). The ones
# with a NUL check that the client refuses them.
HOSTILE_URLS = (
    "", " ", " \t\n\r ", "a  b", "a\t\t\tb", "http://x.example/a   b", "line\nbreak", "a\u2028b\u2029c",
    "\x00", "\x00" * 8, "http://x.example/\x00nul\x00", "http://evil/\x00x", "\x7f\x80\x9f",
    "http://evil/\rlegitimate 0.0012 http://paypal.com/", "http://evil/\x1b[2K\x1b[1Glegitimate",
    "http://evil/\x9b2Klegitimate", "http://evil/\u202egpj.exe", "http://evil/\u2066x\u2069",
    "http://pay\u200bpal.com/\ufeff", "\ufeffhttp://bom.example/", "\uffff\ufffe", "\U0010ffff",
    "😀🎣" * 40, "http://\U0001f468\u200d\U0001f469\u200d\U0001f467.example/\U0001f3f3\ufe0f\u200d\U0001f308",
    "http://bücher.example/", "http://xn--bcher-kva.example/",
    "http://例え.jp/パス?q=検索", "http://中文.example/路径/文件.html", "http://пример.рф/",
    "http://e\u0301\u0301\u0301xample.com/", "http://x.example/" + "\u0300" * 1000,
    "ℌ𝔱𝔱𝔭://𝔭𝔞𝔶𝔭𝔞𝔩.𝔠𝔬𝔪/", "http://مثال.example/\u200fabc", "http://" + "a" * 100_000,
    "http://x.example/?" + "a=1&" * 5000, "http://x/" + "#" * 30, "#", "##", "&amp;&lt;", "&amp;amp;",
    "&#0;&#x110000;&#xd800;&#65533;", "http://x.example/%00%0d%0a%2e%2e%2f%ff%fe", "http://%77%77%77.example.com/",
    "javascript:alert(1)", "JaVaScRiPt:alert(document.cookie)", "data:text/html;base64,PHNjcmlwdD4=",
    "http://user:pass@paypal.com@evil.example/", "http://[::1]:80/", "http://0x7f.0x0.0x0.0x1/",
    "\\\\server\\share", "v1\n# heading\n\n<img src=x onerror=alert(1)>", "a|b|c", "<script>alert(1)</script>",
    "@team please merge #123", "x](javascript:alert(1)) ![i](http://t/p.png)", "``` code ` span",
)


class NodeParityError(PipelineError):
    """onnxruntime-node labels a URL differently from Python onnxruntime (or the client would score a
    URL they read differently): a Node.js product would see other verdicts than the ones the pipeline
    measured."""

    exit_code = ExitCode.VERIFICATION


@dataclass(frozen=True)
class Scores:
    """One runtime's result for the same inputs: P(phishing) [n] (float32 values), ``label`` [n] (the
    graph's own output), and which runtime it was (``"onnxruntime 1.32.0"``)."""

    p: np.ndarray
    label: np.ndarray
    engine: str


# -- the comparison (pure) -------------------------------------------------------------------------
def at_threshold(p: np.ndarray, threshold: float) -> np.ndarray:
    """The graph's own rule (``float32(P) >= float32(threshold)``), so a flip is a real one."""
    return (np.asarray(p, dtype=np.float32) >= np.float32(threshold)).astype(np.int64)


def compare(urls: list[str], python: Scores, node: Scores, threshold: float) -> dict:
    """Refuse any label difference (at ``threshold`` or in the graph's output); else the summary."""
    for name, a, b in (("at the threshold", at_threshold(python.p, threshold), at_threshold(node.p, threshold)),
                       ("in the graph's label output", python.label, node.label)):
        differ = np.flatnonzero(np.asarray(a) != np.asarray(b))
        if len(differ):
            i = int(differ[0])
            raise NodeParityError(
                f"node-parity: {len(differ)} of {len(urls)} labels differ {name} (threshold {threshold:.9g}); "
                f"first: {shown(urls[i])}: P(phishing) {python.p[i]:.9g} label {int(a[i])} in {python.engine}, "
                f"{node.p[i]:.9g} label {int(b[i])} in {node.engine}")
    diff = np.abs(np.asarray(python.p, dtype=np.float64) - np.asarray(node.p, dtype=np.float64))
    return {"compared": len(urls), "label_agreement": 1.0, "threshold": threshold,
            "max_abs_proba_diff": float(diff.max()) if len(diff) else 0.0,
            "python": python.engine, "node": node.engine}


def shown(url: str, limit: int = 200) -> str:
    """A URL for a one-line message: escaped, and cut (a hostile one may be 100k characters)."""
    return terminal(url[:limit]) + (f"… ({len(url):,} characters)" if len(url) > limit else "")


def batches(urls: list[str], rows: int = ROWS, cells: int = CELLS) -> list[list[int]]:
    """Indexes in length order, cut so that padding stays bounded; node_score.js cuts the same way
    (so that both runtimes see the very same tensors)."""
    size = [len(u.encode("utf-8")) for u in urls]
    out: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(urls)), key=lambda j: (size[j], j)):
        if current and (len(current) >= rows or (len(current) + 1) * max(size[i], 1) > cells):
            out.append(current)
            current = []
        current.append(i)
    return out + [current] if current else out


# -- the two runtimes ------------------------------------------------------------------------------
def python_scores(onnx_path: Path, urls: list[str], rows: int = ROWS, cells: int = CELLS) -> Scores:
    """Python onnxruntime, with the client's session settings (CPU, quiet), on one thread."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    p, label = np.zeros(len(urls), dtype=np.float32), np.zeros(len(urls), dtype=np.int64)
    for batch in batches(urls, rows, cells):
        feed = np.array([urls[i] for i in batch], dtype=object).reshape(-1, 1)
        out_label, proba = sess.run([contract.LABEL_OUTPUT, contract.PROBA_OUTPUT], {contract.INPUT_NAME: feed})
        p[batch], label[batch] = proba[:, 1], out_label
    return Scores(p, label, f"onnxruntime {ort.__version__}")


def node_modules(explicit: str | os.PathLike | None = None) -> Path:
    """Where onnxruntime-node is: ``explicit``, else $ONNXRUNTIME_NODE_DIR, else the Makefile's place;
    a missing node or package is an error that says what to run."""
    if shutil.which("node") is None:
        raise PipelineError(f"node-parity: `node` (Node.js) is not on PATH: install it, then {MAKE_HINT}")
    where = Path(explicit or os.environ.get(NODE_DIR_ENV) or DEFAULT_NODE_DIR)
    if not (where / "onnxruntime-node" / "package.json").is_file():
        raise PipelineError(f"node-parity: onnxruntime-node is not installed in {terminal(where)}: {MAKE_HINT}")
    return where


def node_scores(onnx_path: Path, urls: list[str], node_dir: Path, rows: int = ROWS, cells: int = CELLS,
                timeout: float = 1800) -> Scores:
    """onnxruntime-node in a ``node`` subprocess (pipeline/release/node_score.js), same inputs and batches."""
    with tempfile.TemporaryDirectory(prefix="node-parity-") as tmp:
        request, result = Path(tmp) / "urls.json", Path(tmp) / "scores.json"
        request.write_text(json.dumps(urls, ensure_ascii=False), encoding="utf-8")
        command = ["node", str(SCORER), str(onnx_path), str(request), str(result), "--rows", str(rows),
                   "--cells", str(cells), "--input", contract.INPUT_NAME, "--label", contract.LABEL_OUTPUT,
                   "--proba", contract.PROBA_OUTPUT]
        run = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, NODE_DIR_ENV: str(Path(node_dir).resolve())})
        if run.returncode != 0:
            raise PipelineError(f"node-parity: node_score.js failed ({run.returncode}): "
                                f"{terminal(run.stderr.strip()[-2000:])}")
        out = json.loads(result.read_text(encoding="utf-8"))
    p, label = np.asarray(out["p_phishing"], dtype=np.float64), np.asarray(out["label"], dtype=np.int64)
    if p.shape != (len(urls),) or label.shape != (len(urls),):
        raise PipelineError(f"node-parity: node_score.js returned {p.shape[0]} scores for {len(urls)} URLs")
    return Scores(p, label, f"onnxruntime-node {out['onnxruntime_node']}")


# -- the check -------------------------------------------------------------------------------------
REFUSAL_KINDS = ("nul", "other")


def client_inputs(urls) -> tuple[list[str], dict[str, int]]:
    """The URLs the client scores, as it feeds them (:func:`prepare_url`), and how many it refuses:
    ``nul`` (a NUL character) and ``other`` (lone surrogates, non-strings). A URL with a NUL must be
    refused, whatever else is wrong with it: else :class:`NodeParityError` (the runtimes read it
    differently, so no comparison of the two could pass or mean anything)."""
    fed: list[str] = []
    refused = dict.fromkeys(REFUSAL_KINDS, 0)
    for url in urls:
        text, error = prepare_url(url)
        has_nul = (isinstance(url, str) and NUL in url) or (text is not None and NUL in text)
        if has_nul and error is None:
            raise NodeParityError(f"node-parity: the client scores {shown(url)}, which has a NUL character: "
                                  "onnxruntime-node ends the string there, Python onnxruntime does not; "
                                  "phishing_url_detector.detector.prepare_url must refuse it")
        if text is not None:  # the client scores it (error is None)
            fed.append(text)
        else:
            refused["nul" if has_nul else "other"] += 1
    if refused["other"]:
        log.warning("node-parity: %d URLs left out: the client refuses them (not valid UTF-8 text, or not "
                    "text)", refused["other"])
    return fed, refused


def parity_urls(path: Path = paths.TEST, max_urls: int = MAX_URLS) -> list[str]:
    """Up to ``max_urls`` of the export parity gate's URLs (the test split), evenly spread over it."""
    if max_urls <= 0:
        return []
    if not Path(path).is_file():
        raise PipelineError(f"node-parity: {terminal(path)} not found: `dvc pull` / `make run` first, or pass "
                            "--urls, or --max-urls 0 for the hostile strings alone")
    urls = pd.read_parquet(path, columns=["url"])["url"].tolist()
    picks = np.unique(np.linspace(0, len(urls) - 1, num=min(max_urls, len(urls))).round().astype(int))
    return [urls[i] for i in picks] if urls else []


def check(onnx_path: Path, urls: list[str], threshold: float, node_dir: Path | None = None,
          hostile=HOSTILE_URLS) -> dict:
    """Both runtimes on what the client scores of ``urls`` + ``hostile``; the summary, or
    :class:`NodeParityError`."""
    node_dir = node_modules(node_dir)
    everything = list(urls) + list(hostile)
    inputs, refused = client_inputs(everything)
    started = time.perf_counter()
    python = python_scores(onnx_path, inputs)
    middle = time.perf_counter()
    node = node_scores(onnx_path, inputs, node_dir)
    seconds = {"python": round(middle - started, 3), "node": round(time.perf_counter() - middle, 3)}
    log.debug("node-parity: scored %d inputs in %.1f s (python) and %.1f s (node)", len(inputs),
              seconds["python"], seconds["node"])
    report = compare(inputs, python, node, threshold)
    return {**report, "urls": len(everything), "compared": len(inputs), "hostile": len(hostile),
            "refused_by_client": refused, "onnx_sha256": sha256_file(onnx_path), "seconds": seconds}


def manifest_threshold(manifest_path: Path, onnx_path: Path) -> float:
    """The operating threshold of the manifest that describes ``onnx_path`` (its sha256 must match)."""
    manifest = read_json(manifest_path)
    want, have = (manifest.get("model") or {}).get("sha256"), sha256_file(onnx_path)
    if want != have:
        raise PipelineError(f"node-parity: {terminal(manifest_path)} describes sha256 {terminal(want)}, "
                            f"{terminal(onnx_path)} is {have}: pass its manifest, or --threshold")
    return float(manifest["threshold"])


def summary(report: dict) -> str:
    """The one line a person reads."""
    refused = report["refused_by_client"]
    return (f"node-parity: {report['urls']:,} URLs ({report['hostile']} hostile): {report['compared']:,} compared, "
            f"labels 100% equal, max |ΔP| {report['max_abs_proba_diff']:.3g}, {report['node']} vs "
            f"{report['python']}; refused by the client: {refused['nul']} with a NUL, {refused['other']} other")
