"""Replay a feed's months through the real loop: ingest, run, commit, review, one data change per month.

For each publisher file, in order, in a scratch clone of this repository:

1. ``python -m pipeline ingest --feed NAME FILE``   the publisher's file as shipped, through the feed definition;
2. ``python -m pipeline run``                       dvc pull, dvc repro of what changed, MD5 check, dvc push;
3. ``git commit``                                   the shard pointer, params.yaml, dvc.yaml, dvc.lock, outputs;
4. ``python -m pipeline report --base <previous>``  the review comment CI would post on that pull request;
5. the *following* month's URLs (the next publisher file, converted by the same definition) scored by the
   released model before and after the change, at each release's threshold, with the product's client
   (``phishing_url_detector.Detector``): recall on the month the model has not seen yet.

The scratch clone's branch ends with one commit per month; ``--apply`` fetches it into this repository as a
branch to merge. Results: ``benchmarks/results-feed-replay.json``, ``benchmarks/RESULTS-feed-replay.md``,
``benchmarks/feed_replay.png``, and every review comment under ``<workdir>/reviews/``.

Resumable: a month already in `<workdir>/results.json` is not replayed again.

    python benchmarks/feed_replay.py --feed jpcert ../shared/data/feeds/jpcert/2023*.csv
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "client" / "src"))

from phishing_url_detector import Detector
from phishing_url_detector.contract import normalise_url
from pipeline import paths
from pipeline.common import load_params, md_table, write_json
from pipeline.formatting import count, is_missing, num
from pipeline.training.feeds import convert, feed_definition
from pipeline.training.validation import parse_raw_csv, row_problem

log = logging.getLogger("feed_replay")
RESULTS, TABLE, PLOT = "results-feed-replay.json", "RESULTS-feed-replay.md", "feed_replay.png"
INGEST_LINE = {
    "publisher_rows": re.compile(r"feed '[^']+': ([\d,]+) publisher rows"),
    "repeats_in_batch": re.compile(r"repeats of an earlier row of this batch: ([\d,]+) rows"),
    "already_in_repository": re.compile(r"already in the repository with the same label: ([\d,]+) rows"),
    "problems": re.compile(r"rows with problems .*: ([\d,]+)$", re.MULTILINE),
    "label_conflicts": re.compile(r"label conflicts with the repository .*: ([\d,]+)$", re.MULTILINE),
    "undated": re.compile(r"blank date \(kept undated\): ([\d,]+) rows"),
}


def sh(cmd: list[str], cwd: Path, log_to: Path | None = None, ok: tuple[int, ...] = (0,)) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if log_to:
        log_to.write_text(result.stdout + result.stderr)
    log.info("%s (%.0fs)", " ".join(cmd[:4]), time.perf_counter() - started)
    if result.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}"
                           f"{result.stderr[-3000:]}")
    return result.stdout


def month_of(path: Path) -> str:
    stem = re.sub(r"\D", "", path.stem)
    return f"{stem[:4]}-{stem[4:6]}"


def ingest_counts(stdout: str) -> dict:
    return {key: int(m.group(1).replace(",", "")) if (m := pattern.search(stdout)) else 0
            for key, pattern in INGEST_LINE.items()}


def snapshot(tree: Path, dest: Path) -> Path:
    """The release artefacts (ONNX file and manifest) as they are now, to score with later."""
    dest.mkdir(parents=True, exist_ok=True)
    for artefact in (paths.ONNX, paths.MANIFEST):
        shutil.copy2(tree / artefact, dest / artefact.name)
    return dest


def recall_on(model_dir: Path, urls: list[str]) -> dict:
    """The product's client on ``urls`` (all phishing): share flagged at the release threshold."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a local build is unverified by design; the warning is expected
        detector = Detector.from_path(model_dir / paths.ONNX.name, allow_unverified=True)
    scores = [s for s in detector.score(urls) if s.error is None]
    flagged = sum(s.label == 1 for s in scores)
    return {"rows": len(scores), "recall": flagged / len(scores) if scores else None,
            "threshold": detector.threshold}


def feed_urls(path: Path, feed, max_length: int) -> list[str]:
    """The month's distinct URLs that ``prepare`` would accept, read through the feed definition."""
    text = convert(path.read_text(encoding="utf-8", errors="surrogateescape"), feed, str(path)).csv_text
    batch = parse_raw_csv(io.BytesIO(text.encode("utf-8", errors="surrogateescape")), path, feed.source, "date")
    usable = [normalise_url(url) for url, label, bad, day in zip(batch["url"], batch["label"], batch["malformed"],
                                                                 batch["first_seen"])
              if row_problem(url, label, bad, max_length, day) is None]
    return sorted(set(usable))


def review_facts(review_dir: Path) -> dict:
    review = json.loads((review_dir / "review.json").read_text())
    released = review.get("released") or {}
    return {"verdict": review["verdict"]["outcome"],
            "findings": [{k: f.get(k) for k in ("name", "direction", "value", "ci_low", "ci_high")}
                         for f in review["verdict"]["findings"]],
            "verdict_scope_rows": (review.get("verdict_scope") or {}).get("rows"),
            "held_out_test": {k: review["pr"]["metrics"][k]["value"] for k in ("roc_auc", "recall", "fpr")},
            "released_before": released.get("base"), "released_after": released.get("pr"),
            "newest_future": ((review.get("future") or {}).get("pr") or {}).get("newest")}


def replay_month(tree: Path, work: Path, feed_name: str, path: Path, following: Path | None, feed,
                 max_length: int) -> dict:
    month = month_of(path)
    before = sh(["git", "rev-parse", "HEAD"], tree).strip()
    before_model = snapshot(tree, work / "models" / f"before-{month}")
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    started = time.perf_counter()
    out = sh([sys.executable, "-m", "pipeline", "ingest", "--feed", feed_name, str(path)], tree,
             logs / f"{month}-ingest.log")
    counts = ingest_counts(out)
    sh([sys.executable, "-m", "pipeline", "run"], tree, logs / f"{month}-run.log")
    run_facts = json.loads((tree / paths.RUN_FACTS).read_text())
    sh(["git", "add", "-A", "."], tree)
    sh(["git", "commit", "-q", "-m", f"data: {feed_name} {month} (ingest --feed {feed_name} {path.name})"], tree)
    # Exit 3 is a "worse" verdict: the check fails on the pull request, and a person decides (the
    # accept-regression label). The replay records the verdict and merges the month, as fresh data
    # are merged even when they move the held-out numbers; the table says which months needed it.
    sh([sys.executable, "-m", "pipeline", "report", "--base", before], tree, logs / f"{month}-report.log", ok=(0, 3))
    (work / "reviews").mkdir(exist_ok=True)
    shutil.copy2(tree / paths.REVIEW / "report.md", work / "reviews" / f"{month}.md")
    entry = {"month": month, "file": path.name, "commit": sh(["git", "rev-parse", "HEAD"], tree).strip(),
             "base": before, **counts, "repro_seconds": run_facts.get("repro_seconds"),
             "re_ran": run_facts.get("re_ran"), "seconds": round(time.perf_counter() - started, 1),
             "review": review_facts(tree / paths.REVIEW)}
    data_report = json.loads((tree / paths.DATA_REPORT).read_text())
    entry["quarantined_in_source"] = data_report["sources"].get(feed.source, {}).get("classes", {}).get(
        "phishing", {}).get("quarantined")
    if following is not None:
        urls = feed_urls(following, feed, max_length)
        after_model = snapshot(tree, work / "models" / f"after-{month}")
        entry["following_month"] = {"month": month_of(following), "urls": len(urls),
                                    "before": recall_on(before_model, urls), "after": recall_on(after_model, urls)}
    return entry


def source_counts(tree: Path, commit: str, source: str) -> dict:
    """Clean and quarantined rows of ``source`` in the data report committed at ``commit``."""
    report = json.loads(sh(["git", "show", f"{commit}:{paths.DATA_REPORT}"], tree))
    entry = report["sources"].get(source, {})
    quarantined: dict[str, int] = {}
    counts = [cls.get("quarantined", {}) for cls in entry.get("classes", {}).values()]
    for reasons in [*counts, entry.get("unlabelled_quarantined", {})]:  # a malformed row has no usable label
        for reason, n in reasons.items():
            quarantined[reason] = quarantined.get(reason, 0) + n
    return {"clean": entry.get("clean_rows", 0), "quarantined": quarantined}


def with_row_deltas(tree: Path, entries: list[dict], source: str) -> list[dict]:
    """Each month's clean rows added and rows quarantined, by reason: its data report minus the one before."""
    out = []
    for entry in entries:
        before, after = source_counts(tree, entry["base"], source), source_counts(tree, entry["commit"], source)
        reasons = sorted(set(before["quarantined"]) | set(after["quarantined"]))
        delta = {r: after["quarantined"].get(r, 0) - before["quarantined"].get(r, 0) for r in reasons}
        out.append({**entry, "clean_rows_added": after["clean"] - before["clean"],
                    "quarantined_added": {r: n for r, n in delta.items() if n}})
    return out


def plot(entries: list[dict], path: Path) -> None:
    # lazy: the backend must be chosen before pyplot is imported, and only the plot needs matplotlib
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [e for e in entries if e.get("following_month")]
    if not rows:
        return
    x = [e["following_month"]["month"] for e in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(x, [e["following_month"]["before"]["recall"] for e in rows], "o--", label="before the month's data")
    ax.plot(x, [e["following_month"]["after"]["recall"] for e in rows], "o-", label="after (the released model)")
    ax.set_ylabel("recall at the release threshold")
    ax.set_xlabel("month scored (the one after the data change)")
    ax.set_title("JPCERT/CC 2023 replay: recall on the month the model has not seen yet")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(entries: list[dict]) -> str:
    header = ["month", "publisher rows", "rows added (clean)", "quarantined (by reason)", "undated",
              "repeats (batch)", "already in repo", "label conflicts", "verdict", "next month", "recall before",
              "recall after", "seconds"]
    rows = []
    for e in entries:
        f = e.get("following_month") or {}
        quarantined = ", ".join(f"{reason} {count(n)}" for reason, n in e.get("quarantined_added", {}).items())
        rows.append([e["month"], count(e["publisher_rows"]), count(e.get("clean_rows_added", 0)), quarantined or "0",
                     str(e["undated"]), count(e["repeats_in_batch"]), count(e["already_in_repository"]),
                     str(e["label_conflicts"]), e["review"]["verdict"], f.get("month", "n/a"), _recall(f, "before"),
                     _recall(f, "after"), num(e["seconds"], 0)])
    return md_table(header, ["---", "---:", "---:", "---"] + ["---:"] * 4 + ["---"] * 2 + ["---:"] * 3, rows)


def _recall(following: dict, side: str) -> str:
    """Recall on the following month by the model ``side`` ("before" or "after" the change); n/a without one."""
    value = (following.get(side) or {}).get("recall")
    return "n/a" if is_missing(value) else num(value, 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path, help="the publisher's monthly files, in any order (sorted by name)")
    ap.add_argument("--feed", required=True, help="feed name in params.yaml ingest.feeds")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/feed-replay"))
    ap.add_argument("--rev", default="HEAD", help="the commit to start from (default HEAD)")
    ap.add_argument("--repo", type=Path, default=REPO, help="the repository to clone (default: this one)")
    ap.add_argument("--results-dir", type=Path, default=REPO / "benchmarks",
                    help=f"where {RESULTS}, {TABLE} and {PLOT} are written (default benchmarks/)")
    ap.add_argument("--apply", action="store_true", help="fetch the replay's branch into this repository "
                    "as `feed-replay` when done")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    files = sorted(p.resolve() for p in args.files)
    params = load_params(args.repo / "params.yaml")
    feed = feed_definition(params, args.feed)
    tree = args.workdir / "repo"
    if not tree.exists():
        args.workdir.mkdir(parents=True, exist_ok=True)
        sh(["git", "clone", "-q", str(args.repo.resolve()), str(tree)], args.workdir)
        sh(["git", "checkout", "-q", "-B", "feed-replay", args.rev], tree)
        for key in ("user.name", "user.email"):  # the replay's commits are this repository's author's
            value = subprocess.run(["git", "config", key], cwd=args.repo, capture_output=True,
                                   text=True).stdout.strip()
            sh(["git", "config", key, value or "feed replay"], tree)
        sh([sys.executable, "-m", "pipeline", "run"], tree, args.workdir / "base-run.log")
    state = args.workdir / "results.json"
    entries = json.loads(state.read_text()) if state.exists() else []
    done = {e["month"] for e in entries}
    if entries:  # resume after the last recorded month: drop a month that stopped half-way
        sh(["git", "reset", "-q", "--hard", entries[-1]["commit"]], tree)
        sh(["git", "clean", "-q", "-fdx", "--", "data/raw"], tree)
        sh(["dvc", "checkout", "-q"], tree)  # the raw files ingest compares a batch with, from the DVC cache
    for i, path in enumerate(files):
        if month_of(path) in done:
            continue
        following = files[i + 1] if i + 1 < len(files) else None
        entries.append(replay_month(tree, args.workdir, args.feed, path, following, feed,
                                    params["data"]["max_url_length"]))
        write_json(state, entries)
        log.info("%s: %s", entries[-1]["month"], entries[-1]["review"]["verdict"])
    out = args.results_dir
    out.mkdir(parents=True, exist_ok=True)
    entries = with_row_deltas(tree, entries, feed.source)
    write_json(out / RESULTS, {"feed": args.feed, "start": args.rev, "months": entries})
    (out / TABLE).write_text("# Feed replay: JPCERT/CC 2023, one reviewed data change per month\n\n"
                     "Written by `benchmarks/feed_replay.py` (see its docstring). Recall: the month after each "
                     "change, scored by the released model (final fit) with the product's client, before and "
                     "after the change.\n\n" + table(entries) + "\n")
    plot(entries, out / PLOT)
    if args.apply:
        sh(["git", "fetch", "-q", str(tree), "feed-replay:feed-replay"], args.repo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
