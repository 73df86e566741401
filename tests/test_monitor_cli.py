"""``python -m pipeline monitor``: exit codes, the five outputs, rejects, flags.

Thresholds of released versions are tested in test_monitor_releases.py."""
from __future__ import annotations

from pathlib import Path

import monitor_synthetic as ms
import pandas as pd
import pytest
from monitor_synthetic import run_cli, strict_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OUTPUTS = ("monitor.json", "report.md", "ratio.png", "scores.png", "rejects.csv")


@pytest.fixture(autouse=True)
def empty_fetch_cache(tmp_path, monkeypatch):
    """The client's fetch cache, empty: a developer's own cache never changes a test."""
    monkeypatch.setenv("PHISHING_MODEL_CACHE", str(tmp_path / "fetch-cache"))


@pytest.fixture
def params(tmp_path) -> Path:
    """A params file with the repository's alerting defaults and no release directories."""
    path = tmp_path / "params.yaml"
    path.write_text("monitor:\n  releases: []\n  window: 7D\n")
    return path


def test_cli_registers_the_monitoring_commands():
    from pipeline import cli
    from pipeline.commands import fetch_logs, monitor, simulate_traffic
    for name, module in (("monitor", monitor), ("simulate-traffic", simulate_traffic), ("fetch-logs", fetch_logs)):
        assert cli.build_parser(name).parse_args([name]).func is module.run


def test_alert_exits_3_and_writes_every_output(tmp_path, params):
    log = ms.to_csv_log(ms.synthetic_log(1, windows=12, shift=0.05, shift_from=9), tmp_path / "log.csv")
    out = tmp_path / "out"
    assert run_cli("monitor", "--log", log, "--out", out, "--params", params) == 3
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    for name in ("ratio.png", "scores.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    result = strict_json(out / "monitor.json")
    assert result["alert"] is True and result["alerts"] >= 1
    assert result["input"]["rows_valid"] == 12 * 2000 and result["input"]["rows_rejected"] == 0
    window = result["windows"][-1]
    assert {"rows", "flagged_ratio", "ratio_ci_low", "ratio_ci_high", "score_quantiles"} <= set(window)
    alert = next(c for c in result["comparisons"] if c["alert"])
    ratio = alert["tests"]["ratio"]
    assert ratio["test"] == "two-proportion z test"
    assert {"statistic", "p_value", "p_adjusted", "effect_size"} <= set(ratio)
    assert set(alert["tests"]) == {"ratio", "scores_ks", "scores_psi"}
    report = (out / "report.md").read_text()
    assert report.startswith("# Prediction monitoring: ALERT")
    sections = [line for line in report.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Alerts"
    alerts_block = report.split("## Alerts", 1)[1].split("\n## ", 1)[0]
    assert "| time | 2024-03-04 | `1.0.0` |" in alerts_block  # the first shifted week


def test_stable_log_exits_0_and_never_reads_its_own_outputs(tmp_path, params):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    ms.to_csv_log(ms.synthetic_log(2, windows=10), logdir / "log.csv")
    out = logdir / "monitoring"  # outputs inside the log directory
    for _ in range(2):
        assert run_cli("monitor", "--log", logdir, "--out", out, "--params", params) == 0
        result = strict_json(out / "monitor.json")
        assert result["input"]["files"] == [str(logdir / "log.csv")]
        assert result["alert"] is False and result["input"]["rows_read"] == 10 * 2000
    assert (out / "report.md").read_text().startswith("# Prediction monitoring: no alert")


def test_malformed_rows_are_counted_and_kept_in_the_rejects_file(tmp_path, params):
    rows = ms.synthetic_log(3, windows=6, rows_per_window=800)
    good = ms.to_csv_log(rows, tmp_path / "log.csv")
    with open(good, "a") as fh:
        fh.write("not-a-time,1.0.0,0.5,0,\n")  # timestamp,model_version,score,verdict,label
        fh.write("2024-01-03T00:00:00Z,,0.5,0,\n")
        fh.write("2024-01-03T00:00:00Z,1.0.0,-0.2,0,\n")
        fh.write("2024-01-03T00:00:00Z,1.0.0,0.5,0,,one-too-many\n")
    out = tmp_path / "out"
    assert run_cli("monitor", "--log", good, "--out", out, "--params", params) == 0
    rejects = pd.read_csv(out / "rejects.csv")
    assert len(rejects) == 4
    assert sorted(rejects["reason"]) == sorted(["unparseable timestamp", "missing model_version",
                                                "score outside [0,1]", "wrong number of CSV fields"])
    assert "not-a-time" in rejects["timestamp"].astype(str).tolist()
    result = strict_json(out / "monitor.json")
    assert result["input"]["rows_rejected"] == 4
    assert result["input"]["rows_valid"] == len(rows)
    assert result["input"]["rows_read"] == len(rows) + 4
    report = (out / "report.md").read_text()
    assert "**4 rejected**" in report and "## Rejected rows" in report


def test_reference_flags_and_params(tmp_path, params):
    log = ms.to_csv_log(ms.synthetic_log(5, windows=10, rows_per_window=700), tmp_path / "log.csv")
    out = tmp_path / "out"
    assert run_cli("monitor", "--log", log, "--out", out, "--params", params,
                   "--reference", "2024-01-08..2024-01-21", "--window", "1M") == 0
    result = strict_json(out / "monitor.json")
    assert result["window"] == "1M"
    assert result["reference"]["range"] == ["2024-01-08T00:00:00+00:00", "2024-01-22T00:00:00+00:00"]
    with pytest.raises(SystemExit) as exc:  # the two kinds of reference exclude each other
        run_cli("monitor", "--log", log, "--reference", "2024-01-01..2024-01-07",
                "--reference-version", "1.0.0")
    assert exc.value.code == 2
    strict = tmp_path / "strict.yaml"
    strict.write_text("monitor:\n  alert:\n    min_rows: 100000\n")
    shifted = ms.to_csv_log(ms.synthetic_log(6, windows=10, shift=0.1, shift_from=6), tmp_path / "s.csv")
    assert run_cli("monitor", "--log", shifted, "--out", out, "--params", strict) == 0
    assert "insufficient data" in (out / "report.md").read_text()


def test_errors_exit_1(tmp_path, params, capsys):
    assert run_cli("monitor", "--log", tmp_path / "missing", "--out", tmp_path / "o",
                   "--params", params) == 1
    assert "prediction log not found" in capsys.readouterr().err
    log = ms.to_csv_log(ms.synthetic_log(7, windows=2, rows_per_window=10), tmp_path / "log.csv")
    assert run_cli("monitor", "--log", log, "--window", "weekly", "--params", params) == 1


def test_fetch_logs_uses_dvc(tmp_path, capsys):
    from pipeline.monitoring.fetch import dvc_command
    assert dvc_command("data/monitoring/predictions")[-2:] == ["pull", "data/monitoring/predictions"]
    assert dvc_command("data/monitoring/predictions", "s3://bucket/predictions/")[-3:] == [
        "--force", "s3://bucket/predictions/", "data/monitoring/predictions"]
    path = tmp_path / "p.yaml"
    path.write_text("monitor:\n  logs:\n    path: logs/here\n    url: gs://b/x\n")
    assert run_cli("fetch-logs", "--params", path, "--dry-run") == 0
    assert "get-url --force gs://b/x logs/here" in capsys.readouterr().out
