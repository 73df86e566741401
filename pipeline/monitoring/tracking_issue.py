"""Which open issue the monitor's alert job may edit: its label AND opened by the workflow's bot.

The alert job used to pick the first open issue whose title matched, so anyone who can open an
issue could open one with that title and receive (and bury) the alerts. A label is not enough on
its own either: triage rights can label any issue. So an issue qualifies only when it is open,
carries the monitor's label and was opened by ``github-actions[bot]`` (the identity of
``GITHUB_TOKEN``, which nobody else can post as); the title plays no part. Among several, the
newest (highest number) is updated; with none, the job opens a new one.

Reads the JSON of ``gh issue list --json number,title,state,author,labels`` (or the REST API's
issue objects) and prints the number, or nothing. Standard library only: the alert job runs
``python3 -m pipeline.monitoring.tracking_issue`` from a sparse checkout, nothing installed.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

BOT = "github-actions[bot]"


def author_is(issue: dict, bot: str) -> bool:
    """Whether ``issue`` was opened by ``bot`` ("name[bot]"), in any of the forms GitHub reports.

    REST: ``user.login == "name[bot]"``; ``gh`` CLI JSON: ``author.login == "app/name"``; GraphQL:
    ``author.login == "name"`` with ``is_bot``. "[bot]" and "app/" cannot be part of a user's login,
    so only the bare GraphQL form needs the bot flag.
    """
    name = bot.removesuffix("[bot]")
    who = issue.get("author") or issue.get("user") or {}
    login = str(who.get("login", ""))
    is_bot = who.get("is_bot") is True or who.get("type") == "Bot"
    return login in (bot, f"app/{name}") or (login == name and is_bot)


def has_label(issue: dict, label: str) -> bool:
    names = [entry.get("name") if isinstance(entry, dict) else entry for entry in issue.get("labels") or []]
    return label in names


def is_open(issue: dict) -> bool:
    return str(issue.get("state", "open")).lower() == "open"


def select(issues: list[dict], label: str, bot: str = BOT) -> int | None:
    """The number of the issue the job may edit, or None (open a new one)."""
    mine = [i for i in issues if is_open(i) and has_label(i, label) and author_is(i, bot)]
    for issue in issues:
        if issue not in mine:
            log.info("tracking issue: ignoring #%s (label %s: %s, opened by the bot: %s)", issue.get("number"),
                     label, has_label(issue, label), author_is(issue, bot))
    return max((int(i["number"]) for i in mine), default=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m pipeline.monitoring.tracking_issue", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("issues", type=Path, help="JSON list of issues (gh issue list --json ...)")
    parser.add_argument("--label", required=True, help="the monitor's label")
    parser.add_argument("--author", default=BOT, help=f"the bot that opens the issue (default {BOT})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        issues = json.loads(args.issues.read_text(encoding="utf-8"))
        if not isinstance(issues, list):
            raise TypeError("expected a JSON list of issues")
        number = select(issues, args.label, args.author)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("tracking issue: cannot read %s: %s", args.issues, exc)
        return 1
    if number is not None:
        print(number)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
