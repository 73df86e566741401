"""Minimal GitHub Releases client (standard library only) for the model loader.

Only what the loader needs: read one release and stream its assets to disk.
It exists as its own module because the failure modes are specific and worth
getting right once: GitHub answers asset downloads with a redirect to a storage
host that must not see our token, rate limits need a human explanation, and a
short read must never be mistaken for a complete file.
"""
from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import IO, NotRequired, TypedDict, TypeVar, cast

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
USER_AGENT = "phishing-url-detector-loader"
MAX_REDIRECTS = 5
CHUNK = 1 << 16
# Hard ceilings, whatever a release claims: no model asset is near 200 MB (the shipped ONNX is a few MB),
# and a whole fetch (release JSON, every asset, every retry) must end within the deadline. Both can be
# overridden per client (``max_asset_bytes=``, ``deadline=``).
MAX_ASSET_BYTES = 200 * 1024 * 1024
MAX_JSON_BYTES = 10 * 1024 * 1024
DEFAULT_DEADLINE = 600.0
_REDIRECTS = (301, 302, 303, 307, 308)
_T = TypeVar("_T")

Asset = dict[str, object]  # one entry of a release's "assets", as GitHub sent it: every field is checked where used


class Release(TypedDict):
    """A release as :meth:`GitHubReleases.get_release` vouches for it: a JSON object with an ``assets``
    list; the tag and each asset are the caller's to check."""

    assets: list[object]
    tag_name: NotRequired[object]


class GitHubError(Exception):
    """Any failure talking to GitHub (network, HTTP status, short download)."""


class HTTPStatusError(GitHubError):
    def __init__(self, message: str, status: int, url: str):
        super().__init__(message)
        self.status = status
        self.url = url


class NotFoundError(HTTPStatusError):
    """404: the release (or repository) does not exist or is not visible to us."""


class RateLimitError(HTTPStatusError):
    """403/429 with the rate-limit budget exhausted; retrying now is pointless."""


class TruncatedDownloadError(GitHubError):
    """Fewer (or more) bytes arrived than the server or the release promised."""


class AssetTooLargeError(GitHubError):
    """An asset is (or streams) more bytes than its declared size or the hard limit allows."""


class DeadlineExceededError(GitHubError):
    """The whole fetch took longer than its overall deadline (slow or trickling server)."""


class _Retryable(Exception):
    """Internal: a transient failure worth another attempt."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Surface 3xx to us: urllib would forward every header (our token included)
    to whatever host the Location names."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> urllib.request.Request | None:
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _rate_limit_message(headers: Message, url: str, have_token: bool) -> str:
    reset = headers.get("X-RateLimit-Reset")
    retry_after = headers.get("Retry-After")
    when = "at an unknown time"
    if reset and reset.strip().isdigit():
        at = datetime.fromtimestamp(int(reset), tz=UTC)
        minutes = max(0, round((at.timestamp() - time.time()) / 60))
        when = f"at {at:%Y-%m-%d %H:%M:%S} UTC (in about {minutes} min)"
    elif retry_after and retry_after.strip().isdigit():
        when = f"in {int(retry_after)} s (Retry-After)"
    hint = ("the token's quota is used up; wait for the reset" if have_token else
            "set GITHUB_TOKEN to a GitHub token to get a much higher limit")
    return f"GitHub API rate limit exceeded for {url}; it resets {when}; {hint}"


class GitHubReleases:
    """Read releases and download assets from one GitHub API endpoint.

    The token is only ever sent to the API's own origin (scheme, host, port),
    never to the storage host an asset download is redirected to.
    """

    def __init__(self, api_url: str | None = None, token: str | None = None, *,
                 timeout: float = 30.0, retries: int = 3, backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep, max_asset_bytes: int | None = None,
                 deadline: float | None = None) -> None:
        self.api_url = (api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        if urllib.parse.urlsplit(self.api_url).scheme not in ("http", "https"):
            raise GitHubError(f"GitHub API URL must be http(s): {self.api_url!r}")
        self.token = token if token is not None else (os.environ.get("GITHUB_TOKEN") or None)
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect)
        # None: the module's limits, read now (so a program or a test can lower them for every fetch).
        self.max_asset_bytes = int(MAX_ASSET_BYTES if max_asset_bytes is None else max_asset_bytes)
        # One deadline for everything this client does; fetch() makes one client per fetch, so it
        # bounds the whole fetch. ``math.inf`` disables it.
        self.deadline_seconds = float(DEFAULT_DEADLINE if deadline is None else deadline)
        self._deadline = time.monotonic() + self.deadline_seconds

    # -- public API -------------------------------------------------------
    def get_release(self, repo: str, tag: str) -> Release:
        """The release JSON for ``tag`` (or the repository's latest release)."""
        owner, _, name = repo.partition("/")
        quote = urllib.parse.quote
        if tag == "latest":
            url = f"{self.api_url}/repos/{quote(owner)}/{quote(name)}/releases/latest"
        else:
            url = f"{self.api_url}/repos/{quote(owner)}/{quote(name)}/releases/tags/{quote(tag, safe='')}"
        try:
            body = self._fetch_bytes(url, "application/vnd.github+json", what=f"release {tag} of {repo}")
        except NotFoundError as exc:
            private = "" if self.token else " (if the repository is private, set GITHUB_TOKEN)"
            if tag == "latest":
                msg = f"no published release found in {repo}{private}"
            else:
                msg = f"release tag {tag} not found in {repo}{private}"
            raise NotFoundError(msg, exc.status, exc.url) from None
        try:
            release = json.loads(body)
        except ValueError as exc:
            raise GitHubError(f"release {tag} of {repo}: the API returned invalid JSON ({exc})") from None
        if not isinstance(release, dict) or not isinstance(release.get("assets"), list):
            raise GitHubError(f"release {tag} of {repo}: unexpected API answer (no 'assets' list)")
        return cast(Release, release)

    def download_asset(self, asset: Asset, dest: Path) -> None:
        """Stream one release asset to ``dest`` (its digest is checked against SHA256SUMS from the
        staged file, so it is not hashed here as well).

        Uses the asset API URL with ``Accept: application/octet-stream`` (the
        way that also works for private repositories) and refuses a body whose
        length differs from Content-Length or from the asset's declared size.
        """
        name, url, size = asset.get("name"), asset.get("url"), asset.get("size")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise GitHubError(f"asset {name}: no usable API URL in the release JSON")
        limit = self._size_limit(name, size)
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")

        def attempt() -> None:
            with self._open(url, "application/octet-stream") as resp, open(part, "wb") as out:
                header = resp.headers.get("Content-Length")
                expected = int(header) if header and header.strip().isdigit() else None
                if expected is not None and expected > limit:
                    raise AssetTooLargeError(f"download of {name}: Content-Length {expected} bytes is over "
                                             f"the limit of {limit} bytes ({self._limit_reason(size)})")
                received = 0
                while chunk := self._read_chunk(resp, f"download of {name}"):
                    received += len(chunk)
                    if received > limit:
                        raise AssetTooLargeError(f"download of {name}: the server sent more than {limit} bytes "
                                                 f"({self._limit_reason(size)}); stopped at {received}")
                    out.write(chunk)
            problems = []
            if expected is not None and received != expected:
                problems.append(f"received {received} bytes but Content-Length was {expected}")
            if isinstance(size, int) and received != size:
                problems.append(f"received {received} bytes but the release lists {size}")
            if problems:
                raise _Retryable(TruncatedDownloadError(
                    f"download of {name} is truncated or corrupt: {'; '.join(problems)}"))
            os.replace(part, dest)

        try:
            self._retrying(attempt, what=f"download of {name}")
        finally:
            part.unlink(missing_ok=True)

    # -- limits -----------------------------------------------------------
    def _size_limit(self, name: object, size: object) -> int:
        """Most bytes ``name`` may stream: its declared size, never above the hard limit."""
        if isinstance(size, int) and not isinstance(size, bool) and size > self.max_asset_bytes:
            raise AssetTooLargeError(f"asset {name}: the release lists {size} bytes, over the limit of "
                                     f"{self.max_asset_bytes} bytes (max_asset_bytes); refusing to download it")
        if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            return size
        return self.max_asset_bytes

    def _limit_reason(self, size: object) -> str:
        if isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= self.max_asset_bytes:
            return "the size the release lists"
        return f"the hard limit max_asset_bytes={self.max_asset_bytes}"

    def _remaining(self, what: str) -> float | None:
        """Seconds left before the overall deadline (None: no deadline); raises once it has passed."""
        if self._deadline == float("inf"):
            return None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceededError(f"{what}: the fetch took longer than its overall deadline of "
                                        f"{self.deadline_seconds:g} s; the server is too slow or stalling")
        return left

    def _read_chunk(self, resp: http.client.HTTPResponse, what: str) -> bytes:
        """At most CHUNK bytes, as soon as any arrive (``read1``), with the socket's timeout cut to the
        time left: a server trickling one byte at a time cannot outlast the deadline."""
        left = self._remaining(what)
        sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
        if left is not None and sock is not None:
            sock.settimeout(min(self.timeout, left))
        try:
            return resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
        except TimeoutError:
            self._remaining(what)  # the deadline, not the socket timeout, is the news if it has passed
            raise

    # -- plumbing ---------------------------------------------------------
    def _headers(self, url: str, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if _origin(url) == _origin(self.api_url):
            headers["X-GitHub-Api-Version"] = API_VERSION
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _open(self, url: str, accept: str) -> http.client.HTTPResponse:
        """Open ``url``, following redirects by hand so credentials stay home."""
        for _ in range(MAX_REDIRECTS + 1):
            request = urllib.request.Request(url, headers=self._headers(url, accept))
            left = self._remaining(f"request to {url}")
            try:
                response: http.client.HTTPResponse = self._opener.open(
                    request, timeout=self.timeout if left is None else min(self.timeout, left))
                return response
            except urllib.error.HTTPError as exc:
                if exc.code not in _REDIRECTS:
                    raise
                location = exc.headers.get("Location")
                exc.close()
                if not location:
                    raise GitHubError(f"{url}: HTTP {exc.code} redirect without a Location") from None
                target = urllib.parse.urljoin(url, location)
                old, new = urllib.parse.urlsplit(url).scheme, urllib.parse.urlsplit(target).scheme
                if new not in ("http", "https") or (old == "https" and new == "http"):
                    raise GitHubError(f"{url}: refusing redirect to {target}") from None
                url = target
        raise GitHubError(f"too many redirects starting from {url}")

    def _fetch_bytes(self, url: str, accept: str, *, what: str) -> bytes:
        def attempt() -> bytes:
            body = bytearray()
            with self._open(url, accept) as resp:
                while chunk := self._read_chunk(resp, what):
                    body += chunk
                    if len(body) > MAX_JSON_BYTES:
                        raise AssetTooLargeError(f"{what}: the API answer is over {MAX_JSON_BYTES} bytes; "
                                                 "refusing it")
            return bytes(body)
        return self._retrying(attempt, what=what)

    def _retrying(self, attempt: Callable[[], _T], *, what: str) -> _T:
        """Run ``attempt`` with bounded exponential backoff on transient failures
        (5xx, connection errors, timeouts, short reads); map the rest to errors."""
        last: Exception = GitHubError(f"{what}: not attempted")  # the loop runs at least once
        for n in range(self.retries + 1):
            if n:
                left = self._remaining(what)
                self._sleep(self.backoff * 2 ** (n - 1) if left is None else min(self.backoff * 2 ** (n - 1), left))
                self._remaining(what)
            try:
                return attempt()
            except urllib.error.HTTPError as exc:
                if exc.code >= 500:
                    last = HTTPStatusError(f"{what}: HTTP {exc.code} from {exc.url}", exc.code, exc.url)
                    exc.close()
                    continue
                raise self._status_error(exc, what) from None
            except _Retryable as exc:
                last = exc.args[0]
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                reason = getattr(exc, "reason", None) or exc
                last = GitHubError(f"{what}: network error: {reason}")
        attempts = self.retries + 1
        message = f"{last} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})"
        if isinstance(last, HTTPStatusError):
            raise HTTPStatusError(message, last.status, last.url)
        raise type(last)(message)

    def _status_error(self, exc: urllib.error.HTTPError, what: str) -> HTTPStatusError:
        headers, url, code = exc.headers, exc.url, exc.code
        try:
            detail = json.loads(exc.read() or b"{}").get("message", "")
        except (ValueError, AttributeError, OSError):
            detail = ""
        finally:
            exc.close()
        if code == 429 or (code == 403 and (headers.get("X-RateLimit-Remaining") == "0"
                                             or headers.get("Retry-After"))):  # primary or secondary limit
            return RateLimitError(_rate_limit_message(headers, url, bool(self.token)), code, url)
        if code == 404:
            return NotFoundError(f"{what}: not found ({url})", code, url)
        if code == 401:
            return HTTPStatusError(f"{what}: GitHub rejected the credentials (HTTP 401); check GITHUB_TOKEN",
                                   code, url)
        suffix = f": {detail}" if detail else ""
        return HTTPStatusError(f"{what}: HTTP {code} from {url}{suffix}", code, url)
