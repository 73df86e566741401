"""Time the PR review job (review.yml) on the full data, step by step, as CI runs it.

A scratch clone of ``--repo`` at ``--base`` gets one commit on a branch that changes a training
param (the costly kind of PR), then runs the job's own steps with the clone's code:
``pull-data``, ``dvc repro``, ``report --base``, from an empty DVC cache (a runner whose cache
was evicted, a fork, or act). Run it once on the commit before a change and once after, on the
same machine, and compare the totals::

    python benchmarks/review_job.py --repo . --base c96eab9 --python /tmp/before/.venv/bin/python
    python benchmarks/review_job.py --repo . --base main

Prints one JSON document (and writes it to ``--out``): seconds per step, and what each side's
`dvc repro` did per stage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline import paths

STAGE_LINE = re.compile(r"^(Running stage|Stage) '([^']+)'(.*)$", re.MULTILINE)


def sh(args, cwd: Path, env: dict, log: Path | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = round(time.perf_counter() - started, 1)
    text = result.stdout + result.stderr
    if log:
        log.write_text(text)
    if result.returncode not in (0, 3):  # 3 = the review found a regression: still a finished job
        raise SystemExit(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{text[-4000:]}")
    return seconds, text


def stage_summary(text: str) -> dict:
    return {m.group(2): ("ran" if m.group(1) == "Running stage" else m.group(3).strip(" ,-"))
            for m in STAGE_LINE.finditer(text)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=Path("."))
    ap.add_argument("--base", default="main", help="the commit the PR branches from")
    ap.add_argument("--python", default=sys.executable, help="the interpreter of a venv that has the project")
    ap.add_argument("--author-stores", action="store_true",
                    help="the PR's author ran `make run` (outputs pushed into dvc-store/) and committed them")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="review-job-"))
    clone = work / "clone"
    bin_dir = Path(args.python).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "clone", "-q", str(args.repo.resolve()), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", "-B", "main", args.base], cwd=clone, check=True)
    params = clone / "params.yaml"
    params.write_text(params.read_text().replace("    C: 4.0", "    C: 3.0", 1))
    subprocess.run(["git", "checkout", "-q", "-b", "pr"], cwd=clone, check=True)
    if args.author_stores:  # the author's laptop: not CI time
        subprocess.run([args.python, "-m", "pipeline", "run"], cwd=clone, env=env, check=True, capture_output=True)
        subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
        subprocess.run(["git", "clean", "-fdxq"], cwd=clone, check=True)  # CI starts from a fresh checkout
    subprocess.run(["git", "-c", "user.email=b@example.invalid", "-c", "user.name=bench", "commit", "-qam",
                    "PR: logistic_regression.C 3.0"], cwd=clone, check=True)
    out = clone / paths.REVIEW
    out.mkdir(parents=True)
    py = args.python
    steps = {}
    steps["pull-data"], _ = sh([py, "-m", "pipeline", "pull-data", "--base", "main", "--out", out], clone, env)
    steps["dvc repro (PR)"], repro_log = sh(["dvc", "repro"], clone, env, out / "repro.log")
    steps["report --base main"], _ = sh(
        [py, "-m", "pipeline", "report", "--base", "main", "--out", out, "--head-name", "pr",
         "--repro-log", out / "repro.log", "--repro-seconds", str(steps["dvc repro (PR)"])], clone, env)
    base_log = out / "base-repro.log"
    result = {"author_stored_outputs": args.author_stores, "base_commit": subprocess.run(["git", "rev-parse", "--short", "main"], cwd=clone, text=True,
                                            capture_output=True).stdout.strip(),
              "steps_seconds": steps, "total_seconds": round(sum(steps.values()), 1),
              "pr_stages": stage_summary(repro_log),
              "base_stages": stage_summary(base_log.read_text()) if base_log.is_file() else {},
              "load_average": os.getloadavg()}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
