"""The alert job edits only its own issue: the monitor's label AND opened by github-actions[bot].

Sample issues in the shapes `gh issue list --json number,title,state,author,labels` and the REST
API return; the impostors carry the monitor's exact title.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.monitoring import tracking_issue as ti

REPO = Path(__file__).resolve().parents[1]
LABEL, TITLE = "monitoring-alert", "Monitoring alert: prediction log drift"
GH_BOT = {"id": "BOT_kgDOAAA", "is_bot": True, "login": "app/github-actions", "name": ""}


def gh_issue(number, login="app/github-actions", labels=(LABEL,), is_bot=None, state="OPEN", title=TITLE):
    author = {"id": "x", "is_bot": login.startswith("app/") if is_bot is None else is_bot, "login": login}
    return {"number": number, "title": title, "state": state, "author": author,
            "labels": [{"id": f"L{n}", "name": n, "description": "", "color": "ededed"} for n in labels]}


def test_only_an_open_issue_with_the_label_opened_by_the_bot_is_selected():
    issues = [gh_issue(9, login="mallory"),                          # right title and label, a user's
              gh_issue(8, labels=()),                                # the bot's, without the label
              gh_issue(7, login="github-actions", is_bot=False),     # a user named like the bot
              gh_issue(6, login="app/other-bot"),                    # another app
              gh_issue(5, state="CLOSED"),                           # closed
              gh_issue(3, title="renamed by a maintainer")]          # the bot's, with the label
    assert ti.select(issues, LABEL) == 3


def test_impostors_alone_mean_a_new_issue_and_are_logged(caplog):
    caplog.set_level("INFO")
    assert ti.select([gh_issue(9, login="mallory"), gh_issue(8, labels=("bug",))], LABEL) is None
    assert "ignoring #9" in caplog.text and "ignoring #8" in caplog.text


def test_the_newest_of_several_and_every_api_shape():
    rest = {"number": 12, "state": "open", "title": "x", "user": {"login": "github-actions[bot]", "type": "Bot"},
            "labels": [{"name": LABEL}]}
    graphql = {"number": 4, "author": {"login": "github-actions", "is_bot": True}, "labels": [LABEL]}
    assert ti.select([gh_issue(2), rest, graphql], LABEL) == 12
    assert ti.select([graphql], LABEL) == 4
    forged = dict(rest, user={"login": "github-actions", "type": "User"})
    assert ti.select([forged], LABEL) is None


@pytest.mark.parametrize("content, code, out", [
    (json.dumps([gh_issue(5, login="mallory"), gh_issue(4)]), 0, "4\n"),
    (json.dumps([gh_issue(5, login="mallory")]), 0, ""),
    ("[]", 0, ""),
    ('{"number": 1}', 1, ""),
    ("not json", 1, ""),
])
def test_the_command_prints_the_number_or_nothing_with_the_standard_library_alone(tmp_path, content, code, out):
    (tmp_path / "issues.json").write_text(content)
    result = subprocess.run([sys.executable, "-S", "-m", "pipeline.monitoring.tracking_issue", "--label", LABEL,
                             str(tmp_path / "issues.json")], cwd=REPO, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (code, out), result.stderr
    if code:
        assert "tracking issue: cannot read" in result.stderr
