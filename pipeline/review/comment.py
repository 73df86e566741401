"""The PR comment as the trusted ``workflow_run`` job posts it: no local file can leave the runner.

``review-comment.yml`` holds a token that may write PR comments, and the markdown it posts was
written by the pull request's run (a fork's, possibly): it is untrusted data. CML's
``comment update`` uploads every local path the markdown links (images, links, reference
definitions) to a third-party host unless it is given ``--no-publish`` (``--publish`` defaults
to true), so ``![x](/proc/self/environ)`` would have published the runner's environment. Two
layers stop that:

1. the workflow calls CML with ``--no-publish`` (nothing is uploaded, whatever the body says);
2. this module gates the body: the known plot images (:data:`PLOTS`, which the review writes
   into its artifact) become a plain-text pointer to that artifact, and any other link target
   that is not an ``https://`` URL makes it refuse (exit 2), so nothing is posted.

The scan for links, images, definitions and autolinks is deliberately wider than markdown's
grammar (it looks inside code spans too, since a backtick can hide in a link destination): a data
value that merely looks like a local link, e.g. a URL containing ``](``, makes the comment job
refuse with the reason, which is safe; missing a real link would not be. The job summary and the
``review`` artifact still carry the whole report.

Standard library only: the comment job runs ``python3 -m pipeline.review.comment`` from a sparse
checkout of the base branch, with nothing of the project installed.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# The review's plot files (pipeline/review/command.py writes exactly these into the artifact).
PLOTS = ("confusion_base.png", "confusion_pr.png", "curves.png")
# GitHub refuses comment bodies over 65,536 characters; leave room for the footer and CML's watermark.
MAX_CHARS = 60_000
EXIT_REFUSED = 2

_PLOT_IMAGE = re.compile(r"!\[[^\]\n]*\]\((" + "|".join(re.escape(p) for p in PLOTS) + r")\)")
_INLINE = re.compile(r"\]\s*\(\s*(<[^>\n]*>|[^\s)]*)")                    # [text](target), ![alt](target)
_DEFINITION = re.compile(r"^[ \t>*+\-\d.)]*\[(?:\\.|[^\]\\])+\]:\s*(<[^>\n]*>|\S+)", re.M)  # [ref]: target
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*)>")   # <scheme:target>
# A one-line code span as md_cell writes it (no raw backtick or pipe inside, not escaped): markdown
# shows it as text. Only the HTML scan skips these spans; HTML is not what CML uploads, and
# data cells often hold "<script>"-laden URLs.
_CODE_SPAN = re.compile(r"(?<![\\`])`(?:[^`\n|\\]|\\.)*`(?!`)")
_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_ATTR = re.compile(r"\b(?:src|href|srcset|poster|data|action|formaction|background)\s*=\s*"
                   r"(\"[^\"]*\"|'[^']*'|[^\s>]+)", re.I)
_REMOTE = re.compile(r"https://[^\s\"'<>\\`]+", re.I)
_RUN_URL = re.compile(r"https://[A-Za-z0-9.-]+/[A-Za-z0-9._~/%-]*")  # goes into the footer's link as it is


class UnsafeComment(ValueError):
    """The body links something that is not an https:// URL: posting it is refused."""


def link_targets(markdown: str) -> list[str]:
    """Every link, image, reference-definition, autolink and HTML src/href target in ``markdown``."""
    targets = [_unwrap(m.group(1), "<>") for pattern in (_INLINE, _DEFINITION, _AUTOLINK)
               for m in pattern.finditer(markdown)]
    text = _CODE_SPAN.sub("``", markdown)
    targets += [_unwrap(m.group(1), '""', "''") for tag in _TAG.finditer(text) for m in _ATTR.finditer(tag.group(0))]
    return targets


def _unwrap(target: str, *pairs: str) -> str:
    """``target`` without one enclosing pair (``<x>`` for markdown, quotes for HTML); else as it is.

    Markdown destinations are not quoted: ``[r]: 'https://a'`` links the local path ``'https://a'``.
    """
    if len(target) >= 2 and target[0] + target[-1] in pairs:
        return target[1:-1]
    return target


def local_targets(markdown: str) -> list[str]:
    """The targets CML could read from disk: everything that is not a plain https:// URL."""
    return [t for t in link_targets(markdown) if not _REMOTE.fullmatch(t)]


def _truncate(markdown: str) -> str:
    if len(markdown) <= MAX_CHARS:
        return markdown
    cut = markdown.rfind("\n", 0, MAX_CHARS)
    return markdown[:cut if cut > 0 else MAX_CHARS] + "\n\n… (truncated: the whole report is in the artifact)\n"


def comment_body(markdown: str, run_url: str) -> str:
    """The body to post: plot images replaced by a pointer to the artifact, then the footer.

    Raises :class:`UnsafeComment` when any other target is not an https:// URL (the plots are
    not attached anywhere: they stay in the run's ``review`` artifact).
    """
    if not _RUN_URL.fullmatch(run_url):
        raise UnsafeComment(f"the run URL must be an https:// URL, not {run_url!r}")
    body = _truncate(_PLOT_IMAGE.sub(lambda m: f"`{m.group(1)}`", markdown).rstrip() + "\n")
    bad = local_targets(body)  # on exactly the text that is posted
    if bad:
        shown = ", ".join(repr(t[:80]) for t in bad[:10])
        raise UnsafeComment(f"{len(bad)} link target(s) are not https:// URLs and could name local files: {shown}")
    footer = (f"\n---\nPlots ({', '.join(f'`{p}`' for p in PLOTS)}) and every number (`review.json`) are "
              f"in the `review` artifact of [the review run]({run_url}).\n")
    return body + footer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m pipeline.review.comment", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", required=True, type=Path, help="report.md from the review artifact (untrusted)")
    parser.add_argument("--run-url", required=True, help="https URL of the review run (from the trusted event)")
    parser.add_argument("--out", required=True, type=Path, help="where to write the body CML posts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.report.is_symlink() or not args.report.is_file():
        log.error("comment: %s is not a regular file", args.report)
        return EXIT_REFUSED
    markdown = args.report.read_bytes()[:4 * MAX_CHARS].decode("utf-8", errors="replace")
    try:
        body = comment_body(markdown, args.run_url)
    except UnsafeComment as exc:
        log.error("comment: refusing to post %s: %s", args.report, exc)
        return EXIT_REFUSED
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(body, encoding="utf-8")
    log.info("comment: wrote %s (%d characters, no local links)", args.out, len(body))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
