"""``python -m pipeline simulate-traffic``: a realistic prediction log for demos.

Replays dated PhishTank URLs mixed with held-out legitimate URLs through the
released ONNX model (and optionally a second version, which enters by hard
switch, canary or shadow), and writes a log ``monitor`` can read.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from phishing_url_detector.contract import MODEL_FILE
from pipeline.monitoring import config, simulate

DEFAULTS = {
    "phish": "data/raw/phishtank_dated.csv.gz",
    "legit": "data/prepared/test.parquet",
    "model": f"dist/{MODEL_FILE}",
    "manifest": "dist/manifest.json",
    "out": "build/simulated-traffic/predictions.csv.gz",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate-traffic", help="build a realistic prediction log by replaying URLs through the model",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for key, default in DEFAULTS.items():
        parser.add_argument(f"--{key}", default=default, help=f"default: {default}")
    parser.add_argument("--version", help="version A (default: the manifest's version, else 1.0.0)")
    parser.add_argument("--threshold", type=float, help="version A threshold (default: manifest)")
    parser.add_argument("--model-b", help="ONNX model of version B (default: the same model)")
    parser.add_argument("--manifest-b", help="manifest of version B (default: --manifest)")
    parser.add_argument("--version-b", help="second model version; enables a rollout")
    parser.add_argument("--threshold-b", type=float,
                        help="version B threshold (default: its manifest's)")
    parser.add_argument("--switch", help="ISO day from which version B takes all traffic")
    parser.add_argument("--rollout", choices=simulate.ROLLOUTS, help="how version B enters")
    for name, kind in (("start", str), ("months", int), ("rows-per-day", int),
                       ("prevalence", float), ("seed", int), ("label-share", float),
                       ("overlap-days", int), ("canary-share", float)):
        parser.add_argument(f"--{name}", type=kind, help="default: params monitor.simulate")
    parser.add_argument("--params", default=str(config.PARAMS_FILE), help="params file")
    parser.set_defaults(func=run)


def _manifest(path: str | None) -> dict:
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else {}


def traffic_config(args: argparse.Namespace, version_a: str) -> simulate.TrafficConfig:
    """params monitor.simulate, overridden by the flags that were given."""
    fields = {f.name for f in dataclasses.fields(simulate.TrafficConfig)}
    settings = {k: v for k, v in (config.load(args.params).simulate or {}).items() if k in fields}
    for field in ("start", "months", "rows_per_day", "prevalence", "seed", "label_share",
                  "overlap_days", "canary_share", "rollout", "switch"):
        value = getattr(args, field)
        if value is not None:
            settings[field] = value
    settings.update(version_a=version_a, version_b=args.version_b)
    if settings.get("start") is not None:
        settings["start"] = str(settings["start"])
    if settings.get("switch") is not None:
        settings["switch"] = str(settings["switch"])
    return simulate.TrafficConfig(**settings)


def run(args: argparse.Namespace) -> int:
    try:
        manifest_a = _manifest(args.manifest)
        version_a = args.version or str(manifest_a.get("version") or manifest_a.get("model_version")
                                        or "1.0.0")
        threshold_a = args.threshold if args.threshold is not None else manifest_a.get("threshold")
        if threshold_a is None:
            raise ValueError(f"no threshold: {args.manifest} has none and --threshold is not set")
        scorers = {version_a: simulate.OnnxScorer(args.model)}
        thresholds = {version_a: float(threshold_a)}
        if args.version_b:
            if args.version_b == version_a:
                raise ValueError("--version-b must differ from version A")
            manifest_b = _manifest(args.manifest_b or args.manifest)
            threshold_b = args.threshold_b if args.threshold_b is not None else manifest_b.get("threshold")
            if threshold_b is None:
                raise ValueError("no threshold for version B: give --threshold-b or --manifest-b")
            scorers[args.version_b] = (simulate.OnnxScorer(args.model_b) if args.model_b
                                       else scorers[version_a])
            thresholds[args.version_b] = float(threshold_b)
        cfg = traffic_config(args, version_a)
        log = simulate.simulate_traffic(simulate.load_phish(args.phish),
                                        simulate.load_legit(args.legit), scorers, thresholds, cfg)
        path = simulate.write_log(log, args.out)
    except (OSError, ValueError) as exc:
        print(f"simulate-traffic: error: {exc}", file=sys.stderr)
        return 1
    per_version = log.groupby("model_version")["verdict"].agg(["size", "mean"])
    summary = ", ".join(f"{v}: {int(r['size'])} rows, {r['mean']:.1%} flagged"
                        for v, r in per_version.iterrows())
    print(f"simulate-traffic: wrote {len(log)} rows "
          f"({log['timestamp'].min():%Y-%m-%d} to {log['timestamp'].max():%Y-%m-%d}; {summary}) "
          f"to {path}")
    return 0
