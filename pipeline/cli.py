"""``python -m pipeline``: one entry point for the DVC stages and the tools around them."""
from __future__ import annotations

import argparse
import importlib
import sys

from pipeline.errors import PipelineError

# Each module exposes ``register(subparsers)`` which adds one sub-command whose
# handler is stored as ``func`` and returns an exit code.
COMMAND_MODULES = [
    "pipeline.stages.prepare",
    "pipeline.stages.train",
    "pipeline.stages.operating_point",
    "pipeline.stages.leave_one_source_out",
    "pipeline.stages.backtest",
    "pipeline.stages.evaluate",
    "pipeline.stages.export",
    "pipeline.training.ingest_command",  # ingest: a feed batch -> a DVC-tracked monthly shard (data PRs)
    "phishing_url_detector.cli",  # fetch, score, verify: the product-side client, same commands
    "pipeline.monitoring.commands",  # monitor, simulate-traffic, fetch-logs: label-free monitoring
    "pipeline.stages.model_card",  # model-card: render model_card/MODEL_CARD.md (DVC stage)
    "pipeline.release.build",  # release: build the versioned release directory the workflow uploads
    "pipeline.review.command",  # report, pull-data: the PR review comment (champion vs challenger)
]

DESCRIPTION = """\
Phishing-URL detector: a DVC pipeline from raw URLs to a parity-gated ONNX model.

Pipeline stages (normally run through `dvc repro`, which calls them in order):
  prepare -> train -> operating-point -> evaluate -> export -> model-card
  prepare -> leave-one-source-out -> evaluate;  prepare -> backtest
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
    try:
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
