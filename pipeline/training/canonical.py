"""One canonical form of a URL, for finding duplicates and label conflicts.

Feeds publish the same URL in many spellings: ``HTTP://SHOP.EXAMPLE/``,
``http://shop.example:80``, ``http://sh%6Fp.example/./``, ``http:\\\\shop.example``,
a full-width ``ｓｈｏｐ.example``, ``http://shop.example/#`` (an empty fragment),
``http://shop.example/&#32;`` (an entity that decodes to a space) or ``...&#8203;``
(a zero-width space). Compared as plain strings, each of them can enter training
with the opposite label of the others. The key is what a browser would load: the
WHATWG URL parse (the standard browsers implement, here through ``ada-url``), so
every spelling a browser treats as the same URL is one key. It is used only to
compare rows; the model is trained and served on
:func:`phishing_url_detector.contract.normalise_url`, never on this form.

Choices beyond the standard: a URL without a scheme (``www.example.com/a``,
``example.com:8080``) is read as ``http://``, as a browser's address bar does;
http and https stay two keys (two origins); a trailing dot of the host, an empty
query or fragment and trailing slashes of the path do not count. A URL the
standard cannot parse (``http://a b/``) keeps the old key: entities decoded,
scheme and host lower-cased, the same trailing parts dropped.
"""
from __future__ import annotations

import html
import re
import unicodedata

import ada_url

_PARTS = re.compile(r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://)?(?P<host>[^/?#]*)(?P<rest>.*)$", re.DOTALL)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_HOST_PORT = re.compile(r"[^:/?#\\@]+:\d*(?:[/?#\\]|$)")  # example.com:8080/...: a host and port, not a scheme
_SPECIAL = frozenset(("http:", "https:", "ftp:", "ws:", "wss:", "file:"))
# A serialised WHATWG URL (userinfo cannot hold '@', '/', '?' or '#' there: they are percent-encoded).
_HREF = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*:)"
                   r"(?://(?P<user>[^@/?#]*@)?(?P<host>\[[^\]]*\]|[^:/?#]*)(?P<port>:\d+)?)?"
                   r"(?P<path>[^?#]*)(?P<query>\?[^#]*)?(?P<fragment>#.*)?", re.DOTALL)


def _invisible(ch: str) -> bool:
    """Zero-width and other format characters (Unicode category Cf): they change no rendering."""
    return unicodedata.category(ch) == "Cf"


def canonical_url(url: str) -> str:
    """The comparison key of ``url``: entities decoded and invisible characters removed before
    whitespace is stripped (``&#32;`` is whitespace), then the WHATWG parse (see the module doc)."""
    text = html.unescape(url) if "&" in url else url
    if not text.isascii():
        text = "".join(ch for ch in text if not _invisible(ch))
    text = text.strip()
    try:
        href = ada_url.normalize_url(with_scheme(text))
    except ValueError:
        return legacy_key(text)
    return href_key(href)


def with_scheme(text: str) -> str:
    """``text`` as a browser's address bar reads it: a URL without a scheme is ``http://``."""
    scheme = _SCHEME.match(text)
    if scheme and (scheme.group().lower() in _SPECIAL or not _HOST_PORT.match(text)):
        return text
    return "http://" + text


def href_key(href: str) -> str:
    """The key of a serialised WHATWG URL: a trailing dot of the host, trailing slashes of the path,
    an empty query and an empty fragment dropped. (One parse call and a split of its result: about
    twice as fast as asking the parser for each component.)"""
    parts = _HREF.fullmatch(href)
    assert parts is not None, href  # every serialised WHATWG URL matches _HREF
    path, query, fragment = parts.group("path"), parts.group("query") or "", parts.group("fragment") or ""
    tail = f"{'' if query == '?' else query}{'' if fragment == '#' else fragment}"
    if parts.group("host") is None:  # an opaque path (mailto:, javascript:) is kept as it is
        return f"{parts.group('scheme')}{path}{tail}"
    return (f"{parts.group('scheme')}//{parts.group('user') or ''}{parts.group('host').rstrip('.')}"
            f"{parts.group('port') or ''}{path.rstrip('/')}{tail}")


def legacy_key(text: str) -> str:
    """The key of a URL the WHATWG parser refuses: scheme and host lower-cased, a trailing dot of the
    host, an empty fragment and trailing slashes of the path dropped (``text`` is already cleaned)."""
    if text.find("#") == len(text) - 1:  # an empty fragment (the first '#' is the last character)
        text = text[:-1]
    match = _PARTS.match(text)
    assert match is not None, text  # _PARTS matches any text (every part is optional)
    scheme, host, rest = match.group("scheme"), match.group("host"), match.group("rest")
    cut = next((i for i, ch in enumerate(rest) if ch in "?#"), len(rest))
    prefix = f"{scheme.lower()}://" if scheme else ""
    return f"{prefix}{host.lower().rstrip('.')}{rest[:cut].rstrip('/')}{rest[cut:]}"
