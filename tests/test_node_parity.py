"""The product's own runtime: onnxruntime-node scores the graph exactly as Python onnxruntime does.

onnxruntime-node comes from ``make onnxruntime-node`` (a prerequisite of ``make test``), found
through ``$ONNXRUNTIME_NODE_DIR``, which the Makefile exports; without it these tests fail, they
do not skip.
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import test_hostile_output
import test_onnx_parity
from onnx import helper

from phishing_url_detector import contract
from phishing_url_detector import detector as client_detector
from pipeline import cli
from pipeline.common import ExitCode
from pipeline.release import node_parity as NP
from pipeline.release.node_parity import NodeParityError, Scores, compare

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"node-parity: [\d,]+ URLs \(\d+ hostile\): [\d,]+ compared, labels 100% equal, "
                     r"max \|ΔP\| \S+, onnxruntime-node \S+ vs onnxruntime \S+; refused by the client: "
                     r"\d+ with a NUL, \d+ other\n")
NUL_HOSTILE = [u for u in NP.HOSTILE_URLS if "\x00" in u]


def scores(p, label=None, engine="engine") -> Scores:
    p = np.asarray(p, dtype=np.float32)
    return Scores(p, NP.at_threshold(p, 0.5) if label is None else np.asarray(label, dtype=np.int64), engine)


# -- the comparison ------------------------------------------------------------------------------------
def test_equal_scores_pass_with_their_count():
    p = [0.1, 0.5, 0.9999]
    report = compare(["a", "b", "c"], scores(p), scores(p), 0.5)
    assert report["compared"] == 3 and report["label_agreement"] == 1.0 and report["max_abs_proba_diff"] == 0.0


def test_max_abs_dp_is_measured():
    a, b = scores([0.1, 0.7, 0.3]), scores([0.1, 0.7 + 3e-6, 0.3 - 1e-6])
    report = compare(["a", "b", "c"], a, b, 0.5)
    assert report["max_abs_proba_diff"] == pytest.approx(float(np.float32(0.7 + 3e-6)) - float(np.float32(0.7)))
    assert report["max_abs_proba_diff"] > 2e-6


def test_a_label_flip_at_the_threshold_is_refused_and_named_inertly():
    url = test_hostile_output.HOSTILE["erase"]
    python, node = scores([0.2, 0.51]), scores([0.2, 0.49], label=[0, 1], engine="onnxruntime-node 9")
    with pytest.raises(NodeParityError) as err:
        compare(["http://ok/", url], python, node, 0.5)
    message = str(err.value)
    assert err.value.exit_code == ExitCode.VERIFICATION
    assert "1 of 2 labels differ at the threshold" in message and "\\x1b[2K" in message and "\x1b" not in message
    assert "0.50999999" in message and "0.49000001" in message and "onnxruntime-node 9" in message


def test_the_threshold_is_applied_in_float32():
    """P = float32(threshold) is phishing in the graph, so it must be for the comparison too."""
    t = 0.8367116064938416
    same = float(np.float32(t))
    with pytest.raises(NodeParityError):
        compare(["u"], scores([same], label=[1]), scores([np.nextafter(np.float32(t), 0)], label=[1]), t)


def test_a_difference_in_the_graph_label_alone_is_refused():
    with pytest.raises(NodeParityError, match="graph's label output"):
        compare(["u", "v"], scores([0.3, 0.6], label=[0, 1]), scores([0.3, 0.6], label=[0, 0]), 0.5)


def test_the_client_refuses_every_nul_and_they_are_counted_not_compared():
    """The hostile strings with a NUL are refused by the client's one rule (prepare_url), so they
    reach neither runtime; a lone surrogate (refused too) is counted apart."""
    assert len(NUL_HOSTILE) == 4
    fed, refused = NP.client_inputs(["  http://ok/&amp;x  ", *NUL_HOSTILE, "http://bad/\udcff", None])
    assert fed == ["http://ok/&x"] and refused == {"nul": 4, "other": 2}
    for url in NUL_HOSTILE:
        assert "NUL character (U+0000)" in client_detector.prepare_url(url)[1]


def test_a_nul_the_client_would_score_is_refused(monkeypatch):
    """If the client's rule ever let a NUL through, the check stops before scoring anything."""
    monkeypatch.setattr(NP, "prepare_url", lambda url: (contract.normalise_url(url), None))
    with pytest.raises(NodeParityError, match="has a NUL character") as err:
        NP.client_inputs(["http://ok/", "http://evil/\x1b[2K\x00x"])
    assert err.value.exit_code == ExitCode.VERIFICATION
    assert "http://evil/\\x1b[2K\\x00x" in str(err.value) and "\x00" not in str(err.value)


def test_a_long_url_is_shown_cut():
    assert NP.shown("http://" + "a" * 100_000).endswith("… (100,007 characters)")


def test_batches_keep_padding_bounded_and_cover_every_url():
    urls = ["x" * 10] * 600 + ["http://" + "a" * 100_000, "", "é" * 3000]
    batches = NP.batches(urls)
    assert sorted(i for b in batches for i in b) == list(range(len(urls)))
    for batch in batches:
        longest = max(len(urls[i].encode()) for i in batch)
        assert len(batch) <= NP.ROWS and (len(batch) == 1 or len(batch) * longest <= NP.CELLS)
    assert len(next(b for b in batches if 600 in b)) <= NP.CELLS // 100_000


def test_the_hostile_strings_of_the_other_tests_are_all_checked():
    others = set(test_onnx_parity.HOSTILE) | set(test_hostile_output.HOSTILE.values())
    assert others <= set(NP.HOSTILE_URLS), others - set(NP.HOSTILE_URLS)
    json.dumps(NP.HOSTILE_URLS)  # all of them can reach node
    assert all(not any("\ud800" <= ch <= "\udfff" for ch in u) for u in NP.HOSTILE_URLS)


# -- real node, real onnxruntime-node ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def node_dir() -> Path:
    where = os.environ.get(NP.NODE_DIR_ENV)
    if not where or not (Path(where) / "onnxruntime-node" / "package.json").is_file():
        pytest.fail(f"onnxruntime-node not found (${NP.NODE_DIR_ENV}={where!r}): run `make test`, or "
                    f"`make onnxruntime-node` and export {NP.NODE_DIR_ENV}={REPO}/{NP.DEFAULT_NODE_DIR}")
    return NP.node_modules(where)


@pytest.fixture(scope="module")
def onnx_file(small_onnx, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("node-parity") / "model.onnx"
    path.write_bytes(small_onnx)
    return path


def edited(onnx_file: Path, edit) -> Path:
    onx = onnx.load(onnx_file)
    edit(onx.graph)
    path = onnx_file.with_name(f"{edit.__name__}.onnx")
    path.write_bytes(onx.SerializeToString())
    return path


def sqrt_probabilities(graph) -> None:
    """P -> sqrt(P) in the output only; the graph's label still reads the true P."""
    raw = "probabilities_raw"
    for node in graph.node:
        node.input[:] = [raw if i == contract.PROBA_OUTPUT else i for i in node.input]
        node.output[:] = [raw if o == contract.PROBA_OUTPUT else o for o in node.output]
    graph.node.append(helper.make_node("Sqrt", [raw], [contract.PROBA_OUTPUT], name="perturb"))


def threshold_0_9(graph) -> None:
    node = next(n for n in graph.node if n.name == "decision_threshold")
    node.attribute[0].t.CopyFrom(helper.make_tensor("t", onnx.TensorProto.FLOAT, [], [0.9]))


@pytest.mark.slow
def test_the_installed_onnxruntime_node_is_the_locked_one(node_dir):
    tool = REPO / "requirements" / "npm" / "onnxruntime-node" / "package.json"
    pin = json.loads(tool.read_text())["dependencies"]["onnxruntime-node"]
    installed = json.loads((node_dir / "onnxruntime-node" / "package.json").read_text())["version"]
    assert installed == pin, f"{node_dir} holds onnxruntime-node {installed}, {tool.relative_to(REPO)} pins {pin}: rerun make"


@pytest.mark.slow
def test_node_scores_the_graph_as_python_does(onnx_file, sample_frame, node_dir):
    """1,500 sample URLs and every hostile string: the same labels, the same float32 P (measured: 0)."""
    urls = sample_frame["url"].tolist()[:1500]
    assert not any("\x00" in u for u in urls)
    report = NP.check(onnx_file, urls, 0.5, node_dir)
    assert report["urls"] == len(urls) + len(NP.HOSTILE_URLS) and report["hostile"] == len(NP.HOSTILE_URLS)
    assert report["refused_by_client"] == {"nul": len(NUL_HOSTILE), "other": 0}
    assert report["compared"] == report["urls"] - len(NUL_HOSTILE) and report["label_agreement"] == 1.0
    assert report["max_abs_proba_diff"] <= 1e-6
    assert report["node"] == "onnxruntime-node 1.31.1" and "nul_cut" not in report


@pytest.mark.slow
def test_onnxruntime_node_cuts_a_string_at_its_first_nul(onnx_file, node_dir):
    """Why the client refuses a URL with a NUL (detector.prepare_url), pinned: when this fails,
    onnxruntime-node keeps NULs, and the client could score them again."""
    urls = ["http://evil/\x00x", "http://evil/", "a\x00b", "a"]
    node = NP.node_scores(onnx_file, urls, node_dir)
    python = NP.python_scores(onnx_file, urls)
    assert node.p[0] == node.p[1] and node.p[2] == node.p[3]
    assert python.p[0] != python.p[1] and python.p[2] != python.p[3]


@pytest.mark.slow
def test_the_nul_cut_is_not_tolerated_by_the_comparison(onnx_file, node_dir):
    """Fed to both runtimes anyway, a NUL URL whose cut changes its label is refused like any other:
    the comparison has no NUL allowance left (the client refusing it is what keeps the check green)."""
    urls = ["http://ok.example/", "http://evil/\x00x"]
    python, node = NP.python_scores(onnx_file, urls), NP.node_scores(onnx_file, urls, node_dir)
    threshold = float((python.p[1] + node.p[1]) / 2)  # between the two: the cut flips the label
    with pytest.raises(NodeParityError, match="1 of 2 labels differ at the threshold") as err:
        compare(urls, python, node, threshold)
    assert "http://evil/\\x00x" in str(err.value) and "\x00" not in str(err.value)


@pytest.mark.parametrize("edit, refusal", [(sqrt_probabilities, "at the threshold"),
                                           (threshold_0_9, "in the graph's label output")])
@pytest.mark.slow
def test_a_different_model_in_node_is_refused(onnx_file, sample_frame, node_dir, edit, refusal):
    urls = sample_frame["url"].tolist()[:400]
    python = NP.python_scores(onnx_file, urls)
    node = NP.node_scores(edited(onnx_file, edit), urls, node_dir)
    with pytest.raises(NodeParityError, match=refusal):
        compare(urls, python, node, 0.5)


# -- the command -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parquet(sample_frame, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("node-parity-urls") / "test.parquet"
    pd.DataFrame({"url": sample_frame["url"][:2000]}).to_parquet(path)
    return path


@pytest.fixture
def root_logging():
    """cli.main installs its handler on the root logger: put the previous ones back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.slow
def test_command_prints_one_line_and_writes_the_report(onnx_file, parquet, node_dir, tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline", "node-parity", "--onnx", str(onnx_file),
                             "--threshold", "0.5", "--urls", str(parquet), "--max-urls", "300",
                             "--out", str(tmp_path / "report.json")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert SUMMARY.fullmatch(result.stdout) and result.stdout.count("\n") == 1, result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["urls"] == 300 + len(NP.HOSTILE_URLS) and report["label_agreement"] == 1.0
    assert report["refused_by_client"] == {"nul": len(NUL_HOSTILE), "other": 0}
    assert report["compared"] == report["urls"] - len(NUL_HOSTILE)
    assert f"{report['compared']:,} compared" in result.stdout and f"{len(NUL_HOSTILE)} with a NUL" in result.stdout


@pytest.mark.slow
def test_command_exits_2_on_a_label_difference(onnx_file, parquet, node_dir, monkeypatch, capsys, root_logging):
    real = NP.node_scores
    monkeypatch.setattr(NP, "node_scores", lambda path, *a, **k: real(edited(path, sqrt_probabilities), *a, **k))
    code = cli.main(["node-parity", "--onnx", str(onnx_file), "--threshold", "0.5", "--urls", str(parquet),
                     "--max-urls", "300"])
    assert code == ExitCode.VERIFICATION and "labels differ at the threshold" in capsys.readouterr().err


@pytest.mark.slow
def test_command_exits_2_when_the_client_would_score_a_nul(onnx_file, node_dir, monkeypatch, capsys,
                                                          root_logging):
    monkeypatch.setattr(NP, "prepare_url", lambda url: (contract.normalise_url(url), None))
    code = cli.main(["node-parity", "--onnx", str(onnx_file), "--threshold", "0.5", "--max-urls", "0"])
    err = capsys.readouterr().err
    assert code == ExitCode.VERIFICATION and "has a NUL character" in err and "\\x00" in err and "\x00" not in err


def test_command_says_what_to_run_without_onnxruntime_node(onnx_file, tmp_path, capsys, root_logging):
    code = cli.main(["node-parity", "--onnx", str(onnx_file), "--threshold", "0.5", "--max-urls", "0",
                     "--node-modules", str(tmp_path)])
    assert code == 1 and "make onnxruntime-node" in capsys.readouterr().err
