"""One canonical form of a URL, for finding duplicates and label conflicts.

Feeds publish the same URL in many spellings: ``HTTP://SHOP.EXAMPLE/``,
``http://shop.example`` (no trailing slash), ``http://shop.example/#`` (an empty
fragment), ``http://shop.example/&#32;`` (an entity that decodes to a space) or
``...&#8203;`` (a zero-width space). Compared as plain strings, each of them can
enter training with the opposite label of the others. The canonical form makes
them one key. It is used only to compare rows; the model is trained and served
on :func:`phishing_url_detector.contract.normalise_url`, never on this form.
"""
from __future__ import annotations

import html
import re
import unicodedata

_PARTS = re.compile(r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://)?(?P<host>[^/?#]*)(?P<rest>.*)$", re.DOTALL)


def _invisible(ch: str) -> bool:
    """Zero-width and other format characters (Unicode category Cf): they change no rendering."""
    return unicodedata.category(ch) == "Cf"


def canonical_url(url: str) -> str:
    """The comparison key of ``url``.

    Entities are decoded before whitespace is stripped (``&#32;`` is whitespace),
    invisible characters are removed, scheme and host are lower-cased, an empty
    fragment is dropped and trailing slashes of the path do not count.
    """
    text = html.unescape(url) if "&" in url else url
    if not text.isascii():
        text = "".join(ch for ch in text if not _invisible(ch))
    text = text.strip()
    if text.find("#") == len(text) - 1:  # an empty fragment (the first '#' is the last character)
        text = text[:-1]
    match = _PARTS.match(text)
    scheme, host, rest = match.group("scheme"), match.group("host"), match.group("rest")
    cut = next((i for i, ch in enumerate(rest) if ch in "?#"), len(rest))
    prefix = f"{scheme.lower()}://" if scheme else ""
    return f"{prefix}{host.lower().rstrip('.')}{rest[:cut].rstrip('/')}{rest[cut:]}"
