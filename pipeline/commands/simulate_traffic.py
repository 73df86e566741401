"""``python -m pipeline simulate-traffic``: a realistic prediction log for demos.

Replays dated PhishTank URLs mixed with held-out legitimate URLs through the
released ONNX model (and optionally a second version, which enters by hard
switch, canary or shadow), and writes a log ``monitor`` can read. Each model
is loaded with the product client's ``Detector.from_path``: verified against
the SHA256SUMS / manifest.json beside it, which also give its version and
threshold (a release's ``phishing-url-detector-X.Y.Z.onnx`` works as it is).

Provenance is not checked (``allow_unverified``, with the client's warning on every run): this is a
demo on synthetic traffic, run on local development builds (``dist/`` or a ``pipeline release --out``
directory, which only the publish job attests), and its scores never reach a user.
"""
from __future__ import annotations

import argparse
import sys

from phishing_url_detector.detector import Detector
from phishing_url_detector.errors import LoaderError
from pipeline import paths
from pipeline.commands import help_text
from pipeline.common import ExitCode, terminal
from pipeline.monitoring import config, simulate
from pipeline.monitoring.simulate import Scorer

INPUTS = {"legit": paths.TEST, "model": paths.ONNX, "out": paths.SIMULATED_TRAFFIC}  # flag -> default
SHAPE = (("start", str), ("months", int), ("rows-per-day", int), ("prevalence", float), ("seed", int),
         ("label-share", float), ("overlap-days", int), ("canary-share", float))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate-traffic", help="build a realistic prediction log by replaying URLs through the model",
        description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phish", help="default: params monitor.simulate.phish")
    for key, default in INPUTS.items():
        parser.add_argument(f"--{key}", default=str(default), help=f"default: {default}")
    parser.add_argument("--version", help=f"version A (default: the model's manifest's, else {simulate.UNVERSIONED})")
    parser.add_argument("--threshold", type=float, help="version A threshold (default: manifest)")
    parser.add_argument("--model-b", help="ONNX model of version B (default: the same model)")
    parser.add_argument("--version-b", help="second model version; enables a rollout")
    parser.add_argument("--threshold-b", type=float,
                        help="version B threshold (default: its model's manifest's)")
    parser.add_argument("--switch", help="ISO day from which version B takes all traffic")
    parser.add_argument("--rollout", choices=simulate.ROLLOUTS, help="how version B enters")
    parser.add_argument("--no-verdict", action="store_true",
                        help="log scores only, no verdict column (the monitor then needs each "
                             "version's release threshold)")
    for name, kind in SHAPE:
        parser.add_argument(f"--{name}", type=kind, help="default: params monitor.simulate")
    parser.add_argument("--params", default=str(config.PARAMS_FILE),
                        help="params file: its monitor keys over the repository's params.yaml")
    parser.set_defaults(func=run)


def traffic_config(args: argparse.Namespace, params: config.MonitorParams, version_a: str) -> simulate.TrafficConfig:
    """params monitor.simulate, overridden by the flags that were given."""
    given = {name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name, _ in SHAPE}
    return simulate.traffic_config(params.simulate, version_a, args.version_b, args.switch,
                                   rollout=args.rollout, **given)


def models(args: argparse.Namespace) -> tuple[dict[str, Scorer], dict[str, float], str]:
    """({version: scorer}, {version: threshold}, version A) from the verified model(s)."""
    detector_a = Detector.from_path(args.model, allow_unverified=True)
    version_a = args.version or detector_a.model.version or simulate.UNVERSIONED
    scorer_a = simulate.detector_scorer(detector_a)
    scorers = {version_a: scorer_a}
    thresholds = {version_a: simulate.version_threshold(args.threshold, detector_a, "version A")}
    if args.version_b:
        if args.version_b == version_a:
            raise ValueError("--version-b must differ from version A")
        detector_b = Detector.from_path(args.model_b, allow_unverified=True) if args.model_b else detector_a
        scorers[args.version_b] = simulate.detector_scorer(detector_b) if args.model_b else scorer_a
        thresholds[args.version_b] = simulate.version_threshold(args.threshold_b, detector_b, "version B")
    return scorers, thresholds, version_a


def run(args: argparse.Namespace) -> int:
    try:
        scorers, thresholds, version_a = models(args)
        params = config.load(args.params)
        phish = simulate.load_phish(args.phish or simulate.phish_file(params.simulate))
        log = simulate.simulate_traffic(phish, simulate.load_legit(args.legit),
                                        scorers, None if args.no_verdict else thresholds,
                                        traffic_config(args, params, version_a))
        path = simulate.write_log(log, args.out)
    except (OSError, ValueError, LoaderError) as exc:
        print(f"simulate-traffic: error: {terminal(exc, newlines=True)}", file=sys.stderr)
        return ExitCode.ERROR
    print(f"simulate-traffic: wrote {len(log)} rows ({log['timestamp'].min():%Y-%m-%d} to "
          f"{log['timestamp'].max():%Y-%m-%d}; {simulate.flagged_summary(log, thresholds)}) to {path}")
    return ExitCode.OK
