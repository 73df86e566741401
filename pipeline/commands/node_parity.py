"""``python -m pipeline node-parity``: score the ONNX file with onnxruntime-node and Python onnxruntime,
refuse any label difference (:mod:`pipeline.release.node_parity`; its docstring is the command's help)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline import paths
from pipeline.commands import help_text
from pipeline.common import ExitCode, PipelineError, terminal, write_json
from pipeline.release import node_parity
from pipeline.release.node_parity import (
    DEFAULT_NODE_DIR,
    MAX_URLS,
    NODE_DIR_ENV,
    check,
    manifest_threshold,
    parity_urls,
    summary,
)


def run(args: argparse.Namespace) -> int:
    onnx_path = Path(args.onnx)
    if not onnx_path.is_file():
        raise PipelineError(f"node-parity: {terminal(onnx_path)} not found (`make run` exports it)")
    threshold = args.threshold if args.threshold is not None else manifest_threshold(Path(args.manifest), onnx_path)
    report = check(onnx_path, parity_urls(Path(args.urls), args.max_urls), threshold, args.node_modules)
    if args.out:
        write_json(args.out, report)
    print(summary(report))
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("node-parity", help="score the ONNX with onnxruntime-node and Python onnxruntime; "
                              "refuse any label difference", description=help_text(node_parity.__doc__),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", default=str(paths.ONNX), metavar="PATH", help="the graph (default: %(default)s)")
    p.add_argument("--manifest", default=str(paths.MANIFEST), metavar="PATH",
                   help="its manifest, for the threshold (default: %(default)s)")
    p.add_argument("--threshold", type=float, help="use this threshold instead of the manifest's")
    p.add_argument("--urls", default=str(paths.TEST), metavar="PARQUET",
                   help="URLs to score, column 'url' (default: %(default)s, as the export's parity gate)")
    p.add_argument("--max-urls", type=int, default=MAX_URLS, metavar="N",
                   help="at most N of them, evenly spread (default: %(default)s; 0 = hostile strings only)")
    p.add_argument("--node-modules", metavar="DIR",
                   help=f"node_modules holding onnxruntime-node (default: ${NODE_DIR_ENV}, else {DEFAULT_NODE_DIR})")
    p.add_argument("--out", metavar="JSON", help="also write the report here")
    p.set_defaults(func=run)
