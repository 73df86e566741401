"""Stage `model-card`: render model_card/MODEL_CARD.md from the pipeline's outputs (nothing is scored).

Reads metrics.json (which carries the leave-one-source-out table),
reports/data_report.json, reports/operating_point.json, reports/parity.json,
reports/backtest.json, dist/manifest.json and params.yaml; fills
model_card/template.md. The card says "Version: assigned at release": the
release command stamps the version into the copy it ships.

``--check`` writes nothing and exits 1, with a diff, when the committed card is
not what the committed outputs render to (CI's stale-card check).
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from pipeline.common import ExitCode, terminal
from pipeline.release.card.render import CARD, render_card


def run(root: Path = Path("."), check: bool = False) -> int:
    card = render_card(root)
    target = Path(root) / CARD
    if check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current == card:
            print(f"model-card: {target} is up to date")
            return ExitCode.OK
        diff = difflib.unified_diff(current.splitlines(True), card.splitlines(True),
                                    f"{CARD} (committed)", f"{CARD} (rendered from the outputs)")
        sys.stdout.writelines(terminal(line, newlines=True) for line in diff)
        print(f"model-card: {target} is stale; run `dvc repro model-card` and commit it", file=sys.stderr)
        return ExitCode.ERROR
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(card, encoding="utf-8")
    print(f"model-card: wrote {target} ({len(card.splitlines())} lines)")
    return ExitCode.OK


def register(subparsers) -> None:
    p = subparsers.add_parser("model-card", help="render model_card/MODEL_CARD.md from the outputs (DVC stage)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 (with a diff) if the committed card is stale")
    p.set_defaults(func=lambda args: run(check=args.check))
