"""The exit codes of every command, the client's and the training repository's: written once here
(the bottom layer), so the workflows and the Makefile can be checked against them
(tests/test_exit_codes.py) and docs/cli.md's table is generated from them (docs/gen.py).

One value can mean different things to different commands; each meaning has its own name, an
alias of the first name with that value (``ExitCode.REFUSED is ExitCode.VERIFICATION``):

- 2: VERIFICATION, a model or an output failed a check (client ``fetch``/``score``/``verify``,
  ``pipeline reproduce``, ``pipeline node-parity``); REFUSED, the input was refused (the comment
  gate would not post the report, ``pipeline ingest`` would not take the file); USAGE, a command
  line that cannot run (what argparse returns too);
- 3: ALERT, ``pipeline monitor`` found drift; WORSE, ``pipeline report`` found the model worse.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1            # network, I/O or any other error a user can act on
    VERIFICATION = 2
    REFUSED = 2
    USAGE = 2
    ALERT = 3
    WORSE = 3
    PULL = 4             # `pipeline pull-data` / `report`: the PR's data could not be pulled
    INTERRUPTED = 130    # 128 + SIGINT, as a shell reports Ctrl-C
