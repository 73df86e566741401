"""``python -m pipeline monitor``: label-free monitoring of the prediction log.

Reads the log, compares each model version's flagged ratio and score distribution
per window with its reference windows, and writes report.md, monitor.json and
rejects.csv. A version whose rows carry no verdict is judged at its release's
threshold (``--release-dir``, then params monitor.releases, then the client's
fetch cache). Exit code 0 means no alert, 3 means an alert fired (the scheduled
workflow opens or updates its tracking issue on 3), 1 means it could not run.

A release gives a threshold only once its provenance is checked against the
release workflow of ``--repo`` ($PHISHING_MODEL_REPO, params monitor.repo);
``--allow-unverified`` skips that with a warning on every run, and the report
says the thresholds were unverified.

The log is read by an engine that streams it (``--engine duckdb``, embedded, the default)
or by Spark (``--engine spark --master URL``) for logs beyond one machine; both run the
same SQL (``sql``) and give identical outputs.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline import paths
from pipeline.commands import help_text
from pipeline.common import ExitCode, terminal
from pipeline.monitoring import analysis, config, logs, render, thresholds, windows
from pipeline.monitoring.engine_spark import LOCAL_MASTER

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "monitor", help="compare flagged ratio and scores across windows and model versions",
        description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", help="prediction log file or directory "
                        "(default: params monitor.logs.path)")
    parser.add_argument("--window", help="window length: 1D, 7D, 1M, 6h... (default: params)")
    ref = parser.add_mutually_exclusive_group()
    ref.add_argument("--reference", metavar="START..END",
                     help="time reference: the windows overlapping START..END (ISO dates, END "
                          "inclusive when a date; either side may be empty); default: params "
                          "monitor.reference, else each version's first windows")
    ref.add_argument("--reference-version", metavar="V",
                     help="baseline model version for version-vs-version comparisons "
                          "(default: the oldest version in each window)")
    parser.add_argument("--out", help=f"output directory (default: {paths.MONITORING})")
    parser.add_argument("--release-dir", action="append", dest="release_dirs", metavar="DIR",
                        help="a verified model release directory giving its version's threshold "
                             "for rows without a verdict (repeatable; wins over params "
                             "monitor.releases, which wins over the client's fetch cache)")
    parser.add_argument("--repo", metavar="OWNER/NAME",
                        help="repository whose release workflow (on main) must have signed every release "
                             "a threshold is read from, and whose fetch-cache entries are used (default: "
                             "$PHISHING_MODEL_REPO, else params monitor.repo)")
    parser.add_argument("--trusted-root", metavar="FILE",
                        help="sigstore trusted_root.json for the provenance bundles (default: "
                             "$PHISHING_MODEL_TRUSTED_ROOT, else the Sigstore public-good root)")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="use release thresholds WITHOUT checking their provenance (local development "
                             "builds only); warns on every run and the report says so")
    parser.add_argument("--threshold", type=float,
                        help="last resort: threshold for rows without a verdict whose version "
                             "no release covers")
    parser.add_argument("--params", default=str(config.PARAMS_FILE),
                        help="params file: its monitor keys over the repository's params.yaml")
    parser.add_argument("--engine", choices=logs.ENGINES, default=logs.ENGINES[0],
                        help="what scans the log: duckdb (embedded, streaming; default) or spark")
    parser.add_argument("--master", default=LOCAL_MASTER,
                        help="Spark master URL for --engine spark: local[N], spark://HOST:7077, yarn, "
                             "k8s://https://HOST (default: %(default)s)")
    parser.add_argument("--max-rejects", type=_count, default=logs.REJECT_CAP, metavar="N",
                        help="rejected rows written to rejects.csv (all are counted; default: %(default)s)")
    parser.set_defaults(func=run)


def _count(text: str) -> int:
    """A row count of 0 or more (argparse type)."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return int(text)


def trust(args: argparse.Namespace, params: config.MonitorParams) -> thresholds.Trust:
    """Whose releases give thresholds; ``--allow-unverified`` is warned about on every run."""
    chosen = thresholds.trust_for(args.repo, params.repo, args.trusted_root, args.allow_unverified)
    if chosen.allow_unverified:
        logger.warning("monitor: warning: --allow-unverified: the provenance of release thresholds is NOT "
                       "checked; whoever can write a release directory or the fetch cache can silence the "
                       "alerts (local development builds only)")
    return chosen


def read_log(args: argparse.Namespace, params: config.MonitorParams, out: Path,
             resolver: thresholds.Resolver) -> logs.PredictionLog:
    """The log's counts and capped rejects; ``resolver`` gives (and records) the thresholds of the
    rows without a verdict."""
    engine = logs.open_engine(args.engine, args.master)
    try:
        return logs.load(args.log or params.log_path, exclude=[out], caps=params.log_caps(),
                         window=windows.parse_window(params.window), engine=engine, resolve=resolver,
                         reject_cap=args.max_rejects, with_rows=False)
    finally:
        engine.close()


def run(args: argparse.Namespace) -> int:
    try:
        params = config.load(args.params).replace(window=args.window)
        window = windows.parse_window(params.window)
        reference = windows.reference_range(args.reference, params.reference_start, params.reference_end)
        out = Path(args.out) if args.out else paths.MONITORING
        trusted = trust(args, params)
        resolver = thresholds.Resolver(thresholds.named_releases(args.release_dirs or (), params.releases, trusted),
                                       default=args.threshold, trust=trusted)
        log = read_log(args, params, out, resolver)
        cells = analysis.cells_from_aggregates(log.aggregates, window)
        analysed = analysis.analyse_cells(cells, params, reference_range=reference,
                                          reference_version=args.reference_version)
        result = analysis.monitor_result(analysed, log.summary(), resolver.records(), trusted.as_dict(),
                                         resolver.data_months())
    except (OSError, ValueError, ImportError) as exc:
        print(f"monitor: error: {terminal(exc, newlines=True)}", file=sys.stderr)
        return ExitCode.ERROR
    render.write_all(out, log, result, cells)
    inp = result["input"]
    print(f"monitor: {inp['rows_valid']} valid rows, {inp['rows_rejected']} rejected, "
          f"{len(result['comparisons'])} comparisons, {result['alerts']} alert(s); outputs in {terminal(out)}")
    if not inp["rows_valid"]:
        print("monitor: error: no valid rows in the log", file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.ALERT if result["alert"] else ExitCode.OK
