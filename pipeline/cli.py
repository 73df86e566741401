"""``python -m pipeline``: one entry point for the DVC stages and the tools around them.

Only the module of the command being run is imported, so ``python -m pipeline score`` loads the
product client and nothing of training, review or monitoring. Diagnostics go through
``logging`` (``--verbose`` / ``--quiet``); a command's own result lines go to stdout.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pipeline import stage_graph
from pipeline.common import exit_code, terminal

# command -> the module whose ``register(subparsers)`` adds it: pipeline/stages/<command>.py for a DVC stage,
# pipeline/commands/<command>.py for the rest (tests/test_codebase.py keeps it so), the client's cli.py for its own.
COMMANDS = {
    # the main job (`make run`): restore stored outputs, reproduce the rest, verify, store
    "run": "pipeline.commands.run",
    "store": "pipeline.commands.store",
    # training: the DVC stages, in pipeline order, and data PRs
    "prepare": "pipeline.stages.prepare",
    "train": "pipeline.stages.train",
    "final-fit": "pipeline.stages.final_fit",
    "operating-point": "pipeline.stages.operating_point",
    "leave-one-source-out": "pipeline.stages.leave_one_source_out",
    "backtest": "pipeline.stages.backtest",
    "evaluate": "pipeline.stages.evaluate",
    "export": "pipeline.stages.export",
    "manifest": "pipeline.stages.manifest",
    "model-card": "pipeline.stages.model_card",
    "ingest": "pipeline.commands.ingest",
    "reproduce": "pipeline.commands.reproduce",  # re-train a commit from scratch, compare with its outputs
    # release and review
    "release": "pipeline.commands.release",
    "node-parity": "pipeline.commands.node_parity",
    "report": "pipeline.commands.report",
    "pull-data": "pipeline.commands.pull_data",
    # product side: the client's own commands
    "fetch": "phishing_url_detector.cli",
    "score": "phishing_url_detector.cli",
    "verify": "phishing_url_detector.cli",
    # monitoring
    "monitor": "pipeline.commands.monitor",
    "simulate-traffic": "pipeline.commands.simulate_traffic",
    "fetch-logs": "pipeline.commands.fetch_logs",
}

DESCRIPTION = """\
Phishing-URL detector: a DVC pipeline from raw URLs to a parity-gated ONNX model.
"""
STAGES_HEADING = """
Pipeline stages, as dvc.yaml declares them, each with the stages whose outputs it reads
(`dvc repro` runs a stage after those; `dvc dag` draws the graph):
"""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command``'s module registered, or every module and the stage graph (for ``--help``).

    Only the full parser reads dvc.yaml (~50 ms): running a command, a stage or ``score`` does not."""
    module = COMMANDS.get(command or "")
    full = module is None
    description = DESCRIPTION + STAGES_HEADING + stage_graph.describe(stage_graph.read_graph()) if full else DESCRIPTION
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true", help="show debug diagnostics")
    noise.add_argument("-q", "--quiet", action="store_true", help="show warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = [module] if module else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser


def _command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


# Commands whose outputs are pipeline bytes: they run under pipeline/determinism.py's pinned environment.
PINNED_PACKAGE = "pipeline.stages."


def pins_environment(argv: list[str]) -> bool:
    """True for the DVC stages (``python -m pipeline train`` ...), whose bytes must not depend on the machine."""
    return COMMANDS.get(_command(argv) or "", "").startswith(PINNED_PACKAGE)


class TerminalFormatter(logging.Formatter):
    """Log records' arguments (URLs, versions, paths, release fields) through :func:`terminal`, so
    that no logged value can erase, overwrite or reorder a line; our own format strings stay."""

    @staticmethod
    def _shown(value):
        return value if isinstance(value, (int, float)) else terminal(value)

    def format(self, record: logging.LogRecord) -> str:
        if record.args:
            record = logging.makeLogRecord(record.__dict__)  # a copy: other handlers see the original
            if isinstance(record.args, dict):
                record.args = {k: self._shown(v) for k, v in record.args.items()}
            elif record.args is not None:
                record.args = tuple(self._shown(v) for v in record.args)
        return super().format(record)


def configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TerminalFormatter("%(message)s" if level == logging.INFO else "%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command(argv)).parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:  # one line for errors a user can act on, a traceback for bugs
        code = exit_code(exc)
        if code is None:
            raise
        print(f"error: {terminal(exc, newlines=True)}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
