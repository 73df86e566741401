"""``python -m pipeline``: one entry point for the DVC stages and the tools around them."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes ``register(subparsers)`` which adds one sub-command whose
# handler is stored as ``func`` and returns an exit code.
COMMAND_MODULES = [
    "pipeline.stages.prepare",
    "pipeline.stages.train",
    "pipeline.stages.operating_point",
    "pipeline.stages.evaluate",
    "pipeline.stages.export",
]

DESCRIPTION = """\
Phishing-URL detector: a DVC pipeline from raw URLs to a parity-gated ONNX model.

Pipeline stages (normally run through `dvc repro`, which calls them in order):
  prepare -> train -> operating-point -> evaluate -> export
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
