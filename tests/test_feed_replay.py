"""benchmarks/feed_replay.py drives the real loop (ingest, run, commit, report) on a throwaway repository."""
from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO, SAMPLES, sample_project, sh

from pipeline.review.stats import BETTER, NO_CHANGE, WORSE

OUTCOMES = {BETTER, NO_CHANGE, WORSE}


def feed_month(source_text: str, month: str) -> str:
    """The 2023-10 sample moved to ``month``: same shape, other URLs (a path marks the month)."""
    lines = source_text.splitlines()
    moved = [line.replace("2023/10/", f"2023/{month}/").replace("https://", f"https://m{month}.", 1)
             for line in lines[1:]]
    return "\n".join([lines[0], *moved]) + "\n"


@pytest.mark.slow
def test_two_months_replayed_as_two_reviewed_data_changes(tmp_path):
    root = sample_project(tmp_path / "project")
    sample = (SAMPLES / "jpcert_feed_202310.csv").read_text(encoding="utf-8")
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "202311.csv").write_text(feed_month(sample, "11"), encoding="utf-8")
    (feeds / "202312.csv").write_text(feed_month(sample, "12"), encoding="utf-8")
    out, work = tmp_path / "results", tmp_path / "work"
    sh(sys.executable, REPO / "benchmarks/feed_replay.py", "--feed", "jpcert", "--repo", root, "--workdir", work,
       "--results-dir", out, feeds / "202311.csv", feeds / "202312.csv", cwd=root, timeout=1800)
    months = json.loads((out / "results-feed-replay.json").read_text())["months"]
    assert [m["month"] for m in months] == ["2023-11", "2023-12"]
    first, second = months
    assert first["publisher_rows"] == 27 and first["undated"] == 2 and first["repeats_in_batch"] == 1
    assert first["problems"] == 2 and first["label_conflicts"] == 0
    assert {"prepare", "train", "final-fit"} <= set(first["re_ran"])
    assert second["base"] == first["commit"]  # each month is reviewed against the month before it
    for m in months:
        assert m["review"]["verdict"] in OUTCOMES
        assert m["review"]["released_after"]["rows"] > 0
    following = first["following_month"]
    assert following["month"] == "2023-12" and following["urls"] == 24  # 27 rows: 2 quarantined, 1 repeat
    for side in ("before", "after"):
        assert 0.0 <= following[side]["recall"] <= 1.0 and following[side]["rows"] == 24
    assert "following_month" not in second  # nothing after the last month
    log = sh("git", "log", "--format=%s", "-3", cwd=work / "repo").stdout.splitlines()
    assert log[:2] == ["data: jpcert 2023-12 (ingest --feed jpcert 202312.csv)",
                       "data: jpcert 2023-11 (ingest --feed jpcert 202311.csv)"]
    assert (work / "reviews/2023-11.md").read_text().startswith("**")
    assert (out / "feed_replay.png").stat().st_size > 0
    assert first["clean_rows_added"] == 24 and first["quarantined_added"] == {"bad date": 1, "duplicate": 1,
                                                                             "malformed row": 1}
    assert "| 2023-11 | 27 | 24 | bad date 1, duplicate 1, malformed row 1 | 2 | 1 |" in \
        (out / "RESULTS-feed-replay.md").read_text()
