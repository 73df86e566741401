"""Registers the monitoring sub-commands (one entry in ``pipeline.cli.COMMAND_MODULES``)."""
from __future__ import annotations

from pipeline.monitoring import fetch_command, monitor_command, simulate_command


def register(subparsers) -> None:
    """``monitor``, ``simulate-traffic`` and ``fetch-logs``."""
    for module in (monitor_command, simulate_command, fetch_command):
        module.register(subparsers)
