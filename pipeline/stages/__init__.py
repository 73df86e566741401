"""DVC stages: thin shells that read inputs and params, call pure code, write outputs."""
from __future__ import annotations

from pipeline import determinism
from pipeline.common import ExitCode, load_params


def add_stage_command(subparsers, name: str, help_text: str, description: str, run) -> None:
    """Expose a stage as ``python -m pipeline NAME``: read params.yaml, run it, exit 0."""

    def handler(args) -> int:
        determinism.verify()  # the bytes must not depend on this machine's CPU or environment
        run(load_params())
        return ExitCode.OK

    subparsers.add_parser(name, help=help_text, description=description).set_defaults(func=handler)
