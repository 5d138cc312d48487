"""The polite fetcher: the only module that talks HTTP to sources.

Every request names the project in its User-Agent, has connect and read timeouts, an overall deadline
that holds for every phase (fetch.guard), a size cap that holds while the body inflates (fetch.decode),
retries with backoff and jitter (5xx, 429, connection errors), honours Retry-After, sends conditional
headers, obeys robots.txt and keeps a minimum interval per host. It connects only to public addresses,
to the networks the operator allows, and to loopback only where a source's own URL points (every
redirect hop is checked). Local paths and file:// URLs are read from disk with the same size cap.
"""

from __future__ import annotations

import logging
import random
import time
import urllib.robotparser
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx

from digest.errors import FetchError
from digest.fetch.decode import decoded
from digest.fetch.guard import Guard, GuardedTransport, RefusedDestination
from digest.model.network import parse_networks

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_LIMIT = "the limit for robots.txt"
RESPONSE_LIMIT = "DIGEST_MAX_RESPONSE_BYTES"
ROBOTS_TTL_S = 24 * 3600
ARXIV_HOSTS = ("arxiv.org", "export.arxiv.org", "rss.arxiv.org")


class FetchOptions(Protocol):
    """What the fetcher reads of the settings (digest.config.Settings has them all)."""

    user_agent: str
    connect_timeout: float
    read_timeout: float
    fetch_deadline: float
    max_response_bytes: int
    fetch_retries: int
    retry_backoff: float
    max_retry_after: float
    host_min_interval: float
    arxiv_min_interval: float
    respect_robots_txt: bool
    fetch_allowed_networks: str


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch brought. ``content`` is None when the source answered 304 Not Modified."""

    url: str
    status: int | None
    content: bytes | None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.content is None


def is_local(location: str) -> bool:
    """True for file:// URLs and plain paths."""
    scheme = urlsplit(location).scheme.lower()
    return scheme in {"", "file"} or len(scheme) == 1  # one letter: a Windows drive, C:\\...


def checked_location(location: str) -> Path | None:
    """The file ``location`` names (None for an http(s) URL), once it is something a fetch can read:
    no network is used. Raises FetchError saying why not (another scheme, a URL without a host, a
    missing file, a folder); a fetch says the same."""
    parts = urlsplit(location)
    if not is_local(location):
        if parts.scheme.lower() not in {"http", "https"}:
            raise FetchError(f"{location}: only http(s) URLs, file:// URLs and local paths can be fetched.")
        try:
            host = httpx.URL(location).host
        except httpx.InvalidURL as exc:
            raise FetchError(f"{location} is not a valid URL: {exc}.") from None
        if not host:
            raise FetchError(f"{location} has no host name; write it as https://host/path.")
        return None
    path = Path(unquote(parts.path)) if parts.scheme.lower() == "file" else Path(location).expanduser()
    if "{date}" in str(path):  # one file per date: the folder must be there
        if not path.parent.is_dir():
            raise FetchError(f"No such folder: {path.parent}. Check the path or URL.")
        return path
    if path.is_dir():
        raise FetchError(f"{path} is a folder, not a file.")
    if not path.exists():
        raise FetchError(f"No such file: {path}. Check the path or URL.")
    return path


class Fetcher:
    """Fetch documents politely. One per run; not thread-safe. Close it (or use ``with``) when done."""

    def __init__(
        self,
        settings: FetchOptions,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._clock = clock
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, tuple[float, urllib.robotparser.RobotFileParser]] = {}
        self._guard = Guard(parse_networks(settings.fetch_allowed_networks), clock=clock)
        self._client = httpx.Client(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=True,
            max_redirects=5,
            transport=GuardedTransport(self._guard),
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def fetch(
        self, location: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Fetch ``location`` (URL, file:// URL or path).

        Raises FetchError with a message that says what failed and the HTTP status when there was one.
        """
        path = checked_location(location)
        if path is not None:
            return self._read_local(path)
        deadline = self._clock() + self.settings.fetch_deadline
        self._guard.begin(location, deadline)
        if self.settings.respect_robots_txt:
            self._check_robots(location, deadline)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._get_with_retries(location, headers, deadline, self.settings.max_response_bytes)

    def _read_local(self, path: Path) -> FetchResult:
        try:
            size = path.stat().st_size
            if size > self.settings.max_response_bytes:
                raise FetchError(
                    f"{path} is {size:,} bytes, over the {self.settings.max_response_bytes:,}-byte limit "
                    "(DIGEST_MAX_RESPONSE_BYTES)."
                )
            return FetchResult(url=str(path), status=None, content=path.read_bytes())
        except FileNotFoundError:
            raise FetchError(f"No such file: {path}. Check the path or URL.") from None
        except IsADirectoryError:
            raise FetchError(f"{path} is a folder, not a file.") from None
        except OSError as exc:
            raise FetchError(f"Cannot read {path}: {exc.strerror}.") from None

    def _get_with_retries(
        self,
        url: str,
        headers: dict[str, str],
        deadline: float,
        max_bytes: int,
        limit: str = RESPONSE_LIMIT,
        retries: int | None = None,
    ) -> FetchResult:
        retries = self.settings.fetch_retries if retries is None else retries
        attempt = 0
        while True:
            try:
                return self._get_once(url, headers, deadline, max_bytes, limit)
            except _Retryable as failure:
                if attempt >= retries:
                    raise FetchError(
                        f"{failure.reason} (gave up after {attempt + 1} attempts).", status=failure.status
                    ) from None
                wait = self._retry_wait(failure, attempt)
                if self._clock() + wait > deadline:
                    raise FetchError(
                        f"{failure.reason}; the next retry would pass the {self.settings.fetch_deadline:g} s "
                        "deadline (DIGEST_FETCH_DEADLINE).",
                        status=failure.status,
                    ) from None
                log.info("retrying %s in %.1f s: %s", url, wait, failure.reason)
                self._sleep(wait)
                attempt += 1

    def _retry_wait(self, failure: _Retryable, attempt: int) -> float:
        if failure.retry_after is not None:
            if failure.retry_after > self.settings.max_retry_after:
                raise FetchError(
                    f"{failure.reason}; the server asks to wait {failure.retry_after:g} s, longer than "
                    f"DIGEST_MAX_RETRY_AFTER ({self.settings.max_retry_after:g} s). Try again later.",
                    status=failure.status,
                )
            return failure.retry_after
        return self.settings.retry_backoff * (2**attempt) * random.uniform(0.5, 1.5)

    def _get_once(
        self, url: str, headers: dict[str, str], deadline: float, max_bytes: int, limit: str
    ) -> FetchResult:
        self._wait_for_host(url)
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise FetchError(f"No time left for {url} within DIGEST_FETCH_DEADLINE.")
        timeout = httpx.Timeout(
            min(self.settings.read_timeout, remaining), connect=min(self.settings.connect_timeout, remaining)
        )
        try:
            with self._client.stream("GET", url, headers=headers, timeout=timeout) as response:
                if response.status_code == 304:
                    return FetchResult(url, 304, None, *_validators(response, headers))
                if response.status_code in RETRY_STATUSES:
                    raise _Retryable(
                        f"{url} answered HTTP {response.status_code}",
                        status=response.status_code,
                        retry_after=_retry_after(response),
                    )
                if response.status_code >= 400:
                    raise FetchError(
                        f"{url} answered HTTP {response.status_code} {response.reason_phrase}. "
                        "Check the source URL.",
                        status=response.status_code,
                    )
                content = self._read_body(response, deadline, max_bytes, limit)
                etag, modified = _validators(response, {})
                return FetchResult(str(response.url), response.status_code, content, etag, modified)
        except RefusedDestination as exc:
            raise RefusedDestination(f"{url}: {exc}") from None
        except httpx.TooManyRedirects:
            raise FetchError(f"{url} redirects too many times (a redirect loop?).") from None
        except httpx.UnsupportedProtocol as exc:
            raise RefusedDestination(f"{url}: refused to follow a redirect ({exc}).") from None
        except httpx.TimeoutException as exc:
            if self._clock() >= deadline:
                raise self._too_late(url) from None
            raise _Retryable(f"{url} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            host = urlsplit(url).netloc
            raise _Retryable(
                f"cannot reach {host} ({_reason(exc)}) for {url}: check the network connection and the URL"
            ) from None
        except httpx.InvalidURL as exc:
            raise FetchError(f"{url} is not a valid URL: {exc}.") from None

    def _read_body(self, response: httpx.Response, deadline: float, max_bytes: int, limit: str) -> bytes:
        """The decoded body; ``limit`` names the cap in messages."""
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(
                f"{response.url} is {int(declared):,} bytes, over the {max_bytes:,}-byte limit ({limit}).",
                status=response.status_code,
            )
        chunks: list[bytes] = []
        encoding = response.headers.get("Content-Encoding", "")
        for chunk in decoded(
            _capped(response, max_bytes, limit), encoding, max_bytes, str(response.url), limit
        ):
            if self._clock() > deadline:
                raise self._too_late(str(response.url), response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_late(self, url: str, status: int | None = None) -> FetchError:
        return FetchError(
            f"{url} did not finish within {self.settings.fetch_deadline:g} s (DIGEST_FETCH_DEADLINE); "
            "cut off. The source is too slow, or stalls on purpose.",
            status=status,
        )

    def _wait_for_host(self, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        interval = self.settings.host_min_interval
        if host in ARXIV_HOSTS or host.endswith(".arxiv.org"):
            interval = max(interval, self.settings.arxiv_min_interval)
        last = self._last_request.get(host)
        if last is not None:
            wait = last + interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_request[host] = self._clock()

    def _check_robots(self, url: str, deadline: float) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        cached = self._robots.get(origin)
        if cached is None or self._clock() - cached[0] > ROBOTS_TTL_S:
            cached = (self._clock(), self._load_robots(origin, deadline))
            self._robots[origin] = cached
        if not cached[1].can_fetch(self.settings.user_agent, url):
            raise FetchError(
                f"{origin}/robots.txt does not allow fetching {url}. Remove or change this source "
                "(or set DIGEST_RESPECT_ROBOTS_TXT=false if you have the site's permission)."
            )

    def _load_robots(self, origin: str, deadline: float) -> urllib.robotparser.RobotFileParser:
        parser = urllib.robotparser.RobotFileParser(f"{origin}/robots.txt")
        try:
            result = self._get_with_retries(
                f"{origin}/robots.txt", {}, deadline, ROBOTS_MAX_BYTES, ROBOTS_LIMIT
            )
        except FetchError as exc:
            if exc.status is None:
                raise  # the host itself is unreachable; say so as for any other request
            if 400 <= exc.status < 500:
                parser.parse([])  # RFC 9309: no robots.txt (4xx) means everything is allowed.
                return parser
            raise FetchError(
                f"Cannot read {origin}/robots.txt: {exc} Until it answers, the site counts as closed to "
                "crawlers (RFC 9309); the fetch will be tried again next run.",
                status=exc.status,
            ) from None
        text = (result.content or b"").decode("utf-8", errors="replace")
        parser.parse(text.splitlines())
        return parser


def _capped(response: httpx.Response, max_bytes: int, limit: str) -> Iterator[bytes]:
    """The raw (still encoded) body, refused once it passes ``max_bytes``."""
    size = 0
    for chunk in response.iter_raw():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(
                f"{response.url} sent over {max_bytes:,} bytes ({limit}); refused.",
                status=response.status_code,
            )
        yield chunk


class _Retryable(Exception):
    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _validators(response: httpx.Response, sent: dict[str, str]) -> tuple[str | None, str | None]:
    etag = response.headers.get("ETag") or sent.get("If-None-Match")
    modified = response.headers.get("Last-Modified") or sent.get("If-Modified-Since")
    return etag, modified


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
