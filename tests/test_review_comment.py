"""The trusted comment job's gate (pipeline/review/comment.py): the body it posts links no local file.

The PR's run writes report.md; a fork writes whatever it likes there. These tests feed the gate
the real rendering and hostile bodies, and check what would be posted with a CommonMark parser
set up on its own here (markdown-it), not with the gate's own walk of the tokens.
tests/test_comment_gate.py holds the bypasses of the old regex gate and the seeded corpus.
"""
from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_review_render import review  # noqa: F401  (the fixture)

from pipeline.review import comment, render

REPO = Path(__file__).resolve().parents[1]
RUN = "https://github.com/o/r/actions/runs/42"


@functools.lru_cache(maxsize=1)
def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table")


def parsed_targets(markdown: str) -> list[str]:
    """Every link/image target a CommonMark parser finds (CML's remark visits the same node kinds)."""
    env: dict = {}
    tokens = _parser().parse(markdown, env)
    found = [ref["href"] for ref in env.get("references", {}).values()]
    stack = list(tokens)
    while stack:
        token = stack.pop()
        stack += token.children or []
        for attr in ("href", "src"):
            if token.attrGet(attr) is not None:
                found.append(token.attrGet(attr))
    return found


def test_the_rendered_report_is_posted_with_plots_as_text_and_only_the_run_link(review):  # noqa: F811
    report = render.render(review, images=True)
    assert "![curves](curves.png)" in report
    body = comment.comment_body(report, RUN)
    assert parsed_targets(body) == [RUN]
    for plot in comment.PLOTS:
        assert f"`{plot}`" in body and f"]({plot})" not in body
    assert body.startswith(report.splitlines()[0])


def test_a_data_review_with_hostile_urls_in_cells_still_posts(review):  # noqa: F811
    data = copy.deepcopy(review)
    data["data_changed"] = True
    urls = ["http://a/<img src=/etc/passwd>", "http://b/@octocat", "http://c/`x`|y", "http://d/\nnext"]
    data["data_changes"] = {"months": [], "quarantine": [], "base_has_quarantine": True, "pr_has_quarantine": True,
                            "label_conflicts": {"rows": len(urls), "csv": "label_conflicts.csv",
                                                "shown": [{"source": "s", "line": i, "label": "phishing",
                                                           "url": u, "reason": "conflict"}
                                                          for i, u in enumerate(urls)]}}
    body = comment.comment_body(render.render(data, images=False), RUN)
    assert parsed_targets(body) == [RUN]


HOSTILE = {
    "image, parent path": "![x](../../etc/passwd)",
    "link, absolute": "see [x](/proc/self/environ)",
    "link, spaced": "[x] (/proc/self/environ)",
    "angle destination": "![x](</home/runner/.ssh/id_rsa>)",
    "reference": "[x][r]\n\n[r]: /etc/passwd",
    "reference, next line": "[x][r]\n\n[r]:\n  ~/.gitconfig",
    "reference in a quote": "> [r]: ../review/pr-number\n\n[x][r]",
    "plot name, other directory": "![c](../confusion_pr.png)",
    "plot name as a link": "[c](curves.png)",
    "data uri": "![x](data:image/png;base64,AAAA)",
    "file scheme": "<file:///etc/passwd>",
    "http": "[x](http://example.com/a)",
    "html img": '<img alt="a" src="/etc/passwd">',
    "html link": "<a href='report.md'>r</a>",
    "escaped bracket trick": "\\`![x](/etc/passwd)`",
    "quote before https": '[x][r]\n\n[r]: "https://ok/a',
    "entity in destination": "[x](&#47;etc/passwd)",
    "quoted destination": "[x][r]\n\n[r]: 'https://ok/a'",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_body_linking_anything_but_https_is_refused(name):
    markdown = f"### Review\n\n{HOSTILE[name]}\n"
    with pytest.raises(comment.UnsafeComment, match="only https:// targets and no raw HTML"):
        comment.comment_body(markdown, RUN)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_the_gate_sees_every_target_a_commonmark_parser_sees(name):
    """Nothing the parser links escapes the gate."""
    markdown = f"### Review\n\n{HOSTILE[name]}\n"
    local = [t for t in parsed_targets(markdown) if not t.lower().startswith("https://")]
    if local:
        assert comment.problems(markdown), local


def test_https_links_pass_and_the_run_url_must_be_https():
    assert comment.problems("[docs](https://dvc.org/doc) <https://cml.dev>") == []
    with pytest.raises(comment.UnsafeComment, match="run URL"):
        comment.comment_body("ok\n", "/proc/self/environ")
    with pytest.raises(comment.UnsafeComment, match="run URL"):
        comment.comment_body("ok\n", "https://github.com/o/r/actions/runs/1)![x](/etc/passwd")


def test_a_long_body_is_cut_at_a_line_and_still_checked():
    long = "| a | b |\n" * (comment.MAX_CHARS // 10 + 50)
    body = comment.comment_body(long, RUN)
    assert len(body) < comment.MAX_CHARS + 400 and "(truncated" in body
    with pytest.raises(comment.UnsafeComment):
        comment.comment_body("ok\n" * 10 + "![x](/etc/passwd)\n", RUN)


def locked_parser_only(tmp_path) -> dict:
    """An environment like the comment job's: no site-packages (-S), markdown-it + mdurl on PYTHONPATH."""
    import markdown_it
    import mdurl

    target = tmp_path / "comment-gate"
    target.mkdir()
    for package in (markdown_it, mdurl):
        (target / package.__name__).symlink_to(Path(package.__file__).parent)
    return {**os.environ, "PYTHONPATH": str(target)}


def test_the_command_runs_with_the_standard_library_and_the_locked_parser_alone(tmp_path):
    """The comment job runs it with the runner's python3 and only the hash-locked parser (-S: no site-packages)."""
    report, out = tmp_path / "report.md", tmp_path / "comment" / "comment.md"
    report.write_bytes(b"### Review \xff\n\n![curves](curves.png)\n")
    run = [sys.executable, "-S", "-m", "pipeline.review.comment", "--report", str(report), "--run-url", RUN,
           "--out", str(out)]
    env = locked_parser_only(tmp_path)
    ok = subprocess.run(run, cwd=REPO, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "\ufffd" in out.read_text() and "`curves.png`" in out.read_text()
    report.write_text("![x](../../etc/passwd)\n")
    out.unlink()
    refused = subprocess.run(run, cwd=REPO, capture_output=True, text=True, env=env)
    assert refused.returncode == comment.EXIT_REFUSED and "refusing to post" in refused.stderr
    assert "../../etc/passwd" in refused.stderr and not out.exists()


def test_without_the_parser_the_command_refuses_without_a_traceback(tmp_path):
    report, out = tmp_path / "report.md", tmp_path / "comment.md"
    report.write_text("### Review\n\nfine\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-S", "-m", "pipeline.review.comment", "--report", str(report),
                          "--run-url", RUN, "--out", str(out)], cwd=REPO, capture_output=True, text=True, env=env)
    assert run.returncode == comment.EXIT_REFUSED and not out.exists()
    assert "CommonMark parser is missing" in run.stderr and "Traceback" not in run.stderr


def test_a_symlinked_report_is_refused(tmp_path):
    (tmp_path / "report.md").symlink_to("/etc/passwd")
    code = comment.main(["--report", str(tmp_path / "report.md"), "--run-url", RUN, "--out", str(tmp_path / "o.md")])
    assert code == comment.EXIT_REFUSED and not (tmp_path / "o.md").exists()


def test_the_review_writes_exactly_the_allow_listed_plots():
    source = (REPO / "pipeline" / "review" / "compare.py").read_text()
    assert "plots = list(PLOTS)" in source and "from pipeline.review.comment import PLOTS" in source


FRAGMENTS = ["[", "]", "(", ")", "!", "<", ">", "`", "``", "\\", "\n", "\n\n", " ", ":", "/etc/passwd", "https://ok/a",
             "x", "|", "> ", "* ", "1. ", '"', "'", "<img src=", "a:b", "#", "\t", "   ", "[r]: ", "](", "&#47;", "&lt;",
             "'https://ok/a'", "<https://ok/a>", "[r]:\n", "](<", ">)", "<file:", "data:"]


def test_random_markdown_never_hides_a_local_target_from_the_gate():
    """3,000 seeded random bodies: whatever the parser links that is not https, the gate has seen."""
    import random

    rng = random.Random(20)
    linked = 0
    for _ in range(3000):
        markdown = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(3, 12)))
        local = [t for t in parsed_targets(markdown) if not t.lower().startswith("https://")]
        if local:
            linked += 1
            assert comment.problems(markdown), (markdown, local)
    assert linked > 30  # the generator does produce links the parser accepts
