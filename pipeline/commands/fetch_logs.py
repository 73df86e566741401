"""``python -m pipeline fetch-logs``: bring the prediction log configured in params into place.

The product ships its logs either to an artifact location (``monitor.logs.url``:
s3://, gs://, azure://, https://...) or into the DVC-tracked directory
``monitor.logs.path``. Both are fetched with DVC so that one set of remote
credentials serves the pipeline and the monitoring.
"""
from __future__ import annotations

import argparse
import subprocess

from phishing_url_detector.text import shell_command
from pipeline.commands import help_text
from pipeline.common import ExitCode
from pipeline.monitoring import config
from pipeline.monitoring.fetch import dvc_command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fetch-logs", help="fetch the prediction log (params monitor.logs) with DVC",
        description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(config.PARAMS_FILE), help="params file")
    parser.add_argument("--path", help="where the log goes (default: params monitor.logs.path)")
    parser.add_argument("--url", help="artifact location to copy from (default: params monitor.logs.url)")
    parser.add_argument("--dry-run", action="store_true", help="print the command only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = config.load(args.params)
    command = dvc_command(args.path or params.log_path, args.url or params.log_url)
    print("fetch-logs:", shell_command(*command))  # each word escaped, then quoted: safe to paste
    if args.dry_run:
        return ExitCode.OK
    return subprocess.run(command, check=False).returncode
