"""The PR comment as the trusted ``workflow_run`` job posts it: no local file can leave the runner.

``review-comment.yml`` holds a token that may write PR comments, and the markdown it posts was
written by the pull request's run (a fork's, possibly): it is untrusted data. CML's
``comment update`` uploads every local path the markdown links (images, links, reference
definitions) to a third-party host unless it is given ``--no-publish`` (``--publish`` defaults
to true), so ``![x](/proc/self/environ)`` would have published the runner's environment. Two
layers stop that:

1. the workflow calls CML with ``--no-publish`` (nothing is uploaded, whatever the body says);
2. this module gates the body: the known plot images (:data:`PLOTS`, which the review writes
   into its artifact) become a plain-text pointer to that artifact, and the gate refuses (exit 2,
   nothing posted) when the text to post has any of:

   * a link, image or reference-definition target that is not an ``https://`` URL;
   * raw HTML, except the attribute-free ``<details>``, ``<summary>`` and ``<sub>`` tags the
     review itself writes (:data:`ALLOWED_TAGS`: a tag without attributes names no target);
   * a bare ``www.``, ``scheme://`` (other than ``https://``), ``mailto:``/``xmpp:`` or e-mail
     text, which GitHub's autolink extension would turn into a non-https link.

The body is parsed as CommonMark (markdown-it-py, with GFM tables and strikethrough), so code
spans, escapes, entities and HTML attributes are read as GitHub reads them, not by regexes;
markdown-it's own link validation is off (GitHub and CML keep ``file:``/``data:`` targets that it
drops), and a body nested beyond what the parser can follow is refused, not cut. GitHub's
autolinks are detected in the parsed text by :data:`_BARE_LINK`, read wider than GFM's rules
(rather than with linkify-it-py, whose rules are not GitHub's and which would be two more
packages in the trusted job). A second, regex scan for markdown link syntax (it looks inside code
spans too) guards against a destination that GitHub's or CML's parser reads and markdown-it does
not: a data value merely containing ``](`` makes the job refuse, which is safe. The job summary
and the ``review`` artifact still carry the whole report.

The comment job runs ``python3 -m pipeline.review.comment`` from a sparse checkout of the base
branch with the standard library and markdown-it-py + mdurl only, installed by hash from
``.github/comment-gate/requirements.txt``; without them it refuses.
"""
from __future__ import annotations

import argparse
import functools
import logging
import re
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# The review's plot files (pipeline/review/compare.py writes exactly these into the artifact).
PLOTS = ("confusion_base.png", "confusion_pr.png", "curves.png")
# The raw HTML the review writes (render.py folds long tables into <details>, the footer is <sub>).
ALLOWED_TAGS = ("details", "summary", "sub")
# GitHub refuses comment bodies over 65,536 characters; leave room for the footer and CML's watermark.
MAX_CHARS = 60_000
# phishing_url_detector.exit_codes.ExitCode.REFUSED, restated: the trusted workflow runs this module with the
# standard library and the gate's parser only, no client installed (tests/test_exit_codes.py keeps it equal).
EXIT_REFUSED = 2

_PLOT_IMAGE = re.compile(r"!\[[^\]\n]*\]\((" + "|".join(re.escape(p) for p in PLOTS) + r")\)")
_HTTPS = re.compile(r"https://[^\s\"'<>\\`]+")  # a remote URL, nothing CML could read from disk
_BARE_TAG = re.compile(r"</?(?:" + "|".join(ALLOWED_TAGS) + r")>")
# What GFM's autolink extension links in text (www., http/https/ftp://, mailto:/xmpp:, e-mail), widened:
# any scheme before "://" is taken whole (so only a plain "https://" passes); an e-mail needs x@y.z, as
# in GFM ("TPR@FPR 0.01" is not one).
_BARE_LINK = re.compile(r"www\.|[A-Za-z0-9+.\-]*://|(?:mailto|xmpp):|[A-Za-z0-9._+\-]@[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]",
                        re.IGNORECASE)
_BARE_HTTPS = re.compile(r"(?<![A-Za-z0-9+.\-])https://[A-Za-z0-9._~/%?#=&+\-]*")  # and no further
_INLINE_MARKS = {"em_open", "em_close", "strong_open", "strong_close", "s_open", "s_close"}  # join text
# The second layer: markdown link syntax found by regex, wider than the grammar (code spans too).
_INLINE = re.compile(r"\]\s*\(\s*(<[^>\n]*>|[^\s)]*)")                    # [text](target), ![alt](target)
_DEFINITION = re.compile(r"^[ \t>*+\-\d.)]*\[(?:\\.|[^\]\\])+\]:\s*(<[^>\n]*>|\S+)", re.MULTILINE)  # [ref]: target
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*)>")   # <scheme:target>
_RUN_URL = re.compile(r"https://[A-Za-z0-9.-]+/[A-Za-z0-9._~/%-]*")  # goes into the footer's link as it is


class UnsafeComment(ValueError):
    """The body links something that is not an https:// URL, or has raw HTML: posting it is refused."""


@functools.lru_cache(maxsize=1)
def _parser():
    """CommonMark + GFM tables/strikethrough, keeping every link target and every nesting level.

    markdown-it drops links it deems unsafe (``file:``, ``javascript:``) and content nested deeper
    than ``maxNesting``; GitHub and CML render both, so neither may hide a target from the gate.
    """
    # lazy: the gate's one package outside the standard library; without it main() refuses (exit 2), no traceback
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"maxNesting": 1_000_000}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True
    md.normalizeLink = lambda url: url  # the destination as written (unescaped), not percent-encoded
    return md


def _walk(tokens):
    for token in tokens:
        yield token
        yield from _walk(token.children or [])


def problems(markdown: str) -> list[str]:
    """Why ``markdown`` may not be posted, one reason per finding (empty: it may)."""
    env: dict = {}
    try:
        tokens = _parser().parse(markdown, env)
    except RecursionError:
        return ["markup nested too deeply to check"]
    found = [f"reference definition {_shown(ref['href'])}" for ref in env.get("references", {}).values()
             if not _HTTPS.fullmatch(ref["href"])]
    for token in _walk(tokens):
        found += [f"{token.type} target {_shown(token.attrGet(a))}" for a in ("href", "src")
                  if token.attrGet(a) is not None and not _HTTPS.fullmatch(str(token.attrGet(a)))]
        if token.type in ("html_block", "html_inline"):
            text = _BARE_TAG.sub(" ", token.content)
            found += [f"raw HTML {_shown(token.content.strip())}"] if "<" in text else _bare_links(text)
        elif token.type == "inline":
            found += _bare_links("".join(c.content if c.type == "text" else "" if c.type in _INLINE_MARKS else "\n"
                                         for c in _walk(token.children or [])))
    found += [f"link syntax {_shown(t)}" for t in _syntax_targets(markdown) if not _HTTPS.fullmatch(t)]
    return found


def _shown(value) -> str:
    return repr(str(value)[:80])


def _bare_links(text: str) -> list[str]:
    """The text GitHub would autolink to anything but an https:// URL (read widely).

    What a bare ``https://`` URL holds (``https://www.a/b``) is its own path, not another link; it is
    read only as far as unreserved characters go (GitHub's link may stop sooner, never later there).
    """
    rest = _BARE_HTTPS.sub(" ", text)
    return [f"bare link {_shown(m.group(0))}" for m in _BARE_LINK.finditer(rest)]


def _syntax_targets(markdown: str) -> list[str]:
    """Every target the regexes find after ``](``, in a definition or in ``<scheme:...>``."""
    return [_unwrap(m.group(1)) for pattern in (_INLINE, _DEFINITION, _AUTOLINK) for m in pattern.finditer(markdown)]


def _unwrap(target: str) -> str:
    """``target`` without one enclosing ``<>`` pair; else as it is.

    Markdown destinations are not quoted: ``[r]: 'https://a'`` links the local path ``'https://a'``.
    """
    return target[1:-1] if len(target) >= 2 and target[0] + target[-1] == "<>" else target


def _truncate(markdown: str) -> str:
    if len(markdown) <= MAX_CHARS:
        return markdown
    cut = markdown.rfind("\n", 0, MAX_CHARS)
    return markdown[:cut if cut > 0 else MAX_CHARS] + "\n\n… (truncated: the whole report is in the artifact)\n"


def comment_body(markdown: str, run_url: str) -> str:
    """The body to post: plot images replaced by a pointer to the artifact, then the footer.

    Raises :class:`UnsafeComment` with every reason when the text to post (footer included) links
    anything but an https:// URL or has raw HTML (the plots are not attached anywhere: they stay
    in the run's ``review`` artifact).
    """
    if not _RUN_URL.fullmatch(run_url):
        raise UnsafeComment(f"the run URL must be an https:// URL, not {run_url!r}")
    body = _truncate(_PLOT_IMAGE.sub(lambda m: f"`{m.group(1)}`", markdown).rstrip() + "\n")
    footer = (f"\n---\nPlots ({', '.join(f'`{p}`' for p in PLOTS)}) and every number (`review.json`) are "
              f"in the `review` artifact of [the review run]({run_url}).\n")
    bad = problems(body + footer)  # on exactly the text that is posted
    if bad:
        shown = "; ".join(b[:120] for b in bad[:10])
        raise UnsafeComment(f"{len(bad)} problem(s): only https:// targets and no raw HTML may be posted: {shown}")
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
    except ImportError as exc:  # fail closed: no parser, no comment
        log.error("comment: refusing to post %s: the gate's CommonMark parser is missing (%s); install it with "
                  "pip install --require-hashes -r .github/comment-gate/requirements.txt", args.report, exc)
        return EXIT_REFUSED
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(body, encoding="utf-8")
    log.info("comment: wrote %s (%d characters, https links only, no raw HTML)", args.out, len(body))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
