"""Where a source may send the fetcher: redirects into private, link-local, metadata or other loopback
addresses are refused before any connection is attempted, and never retried.

An audit hook on ``socket.connect`` watches every connection this process attempts while a test
runs; it lets through only the loopback servers the test started and blocks the rest, so a failure
shows as a recorded attempt, never as a real packet.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from digest.config import Settings
from digest.errors import FetchError
from digest.fetch.http import Fetcher
from tests.support.loopback import LoopbackServer, Reply


class ConnectWatch:
    def __init__(self) -> None:
        self.allowed: set[tuple[str, int]] | None = None
        self.forbidden: list[object] = []

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if event != "socket.connect" or self.allowed is None:
            return
        address = args[1]
        if isinstance(address, tuple) and (str(address[0]), int(address[1])) in self.allowed:
            return
        self.forbidden.append(address)
        raise ConnectionRefusedError(f"blocked by the test's connect watch: {address}")


WATCH = ConnectWatch()
sys.addaudithook(WATCH)


@pytest.fixture
def servers() -> Iterator[tuple[LoopbackServer, LoopbackServer]]:
    """The source's own server, and another loopback service it must not reach."""
    with LoopbackServer() as source, LoopbackServer() as other:
        other.routes["/secret"] = Reply(body=b"internal")
        WATCH.allowed = {("127.0.0.1", source.server_address[1]), ("127.0.0.1", other.server_address[1])}
        WATCH.forbidden = []
        yield source, other
        WATCH.allowed = None


SETTINGS = Settings(host_min_interval=0, retry_backoff=0.01, fetch_deadline=10, fetch_retries=2)
TARGETS = [
    "http://10.0.0.1/latest",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00::1]/",
    "http://0.0.0.0:{other}/secret",
    "http://127.0.0.1:{other}/secret",
    "http://127.0.0.2:{other}/secret",
    "http://localhost:{other}/secret",
    "http://[::1]:{other}/secret",
    "http://[::ffff:127.0.0.1]:{other}/secret",
    "http://2130706433:{other}/secret",
    "http://0x7f000001:{other}/secret",
]


@pytest.mark.parametrize("target", TARGETS)
def test_a_redirect_to_a_private_or_other_loopback_address_is_refused_unattempted(
    target: str, servers: tuple[LoopbackServer, LoopbackServer]
) -> None:
    source, other = servers
    location = target.format(other=other.server_address[1])
    source.routes["/feed"] = Reply(302, headers={"Location": location})
    with Fetcher(SETTINGS) as fetcher, pytest.raises(FetchError, match="refused|not a valid URL"):
        fetcher.fetch(source.url("/feed"))
    assert WATCH.forbidden == []
    assert other.requests_to("/secret") == []
    assert len(source.requests_to("/feed")) == 1  # a refused destination is not retried


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.org/feed", "gopher://127.0.0.1:70/"])
def test_a_redirect_out_of_http_is_refused(
    target: str, servers: tuple[LoopbackServer, LoopbackServer]
) -> None:
    source, _other = servers
    source.routes["/feed"] = Reply(302, headers={"Location": target})
    with Fetcher(SETTINGS) as fetcher, pytest.raises(FetchError, match="refused"):
        fetcher.fetch(source.url("/feed"))
    assert WATCH.forbidden == []
    assert len(source.requests_to("/feed")) == 1


def test_a_redirect_within_the_sources_own_loopback_origin_is_followed(
    servers: tuple[LoopbackServer, LoopbackServer],
) -> None:
    source, _other = servers
    source.routes["/feed"] = Reply(301, headers={"Location": "/moved"})
    source.routes["/moved"] = Reply(body=b"<rss/>")
    with Fetcher(SETTINGS) as fetcher:
        assert fetcher.fetch(source.url("/feed")).content == b"<rss/>"


def test_a_loopback_connection_opened_for_one_source_is_not_reused_for_a_redirect_from_another(
    servers: tuple[LoopbackServer, LoopbackServer],
) -> None:
    source, other = servers
    with Fetcher(SETTINGS) as fetcher:
        assert fetcher.fetch(other.url("/secret")).content == b"internal"  # its own source: allowed
        source.routes["/feed"] = Reply(302, headers={"Location": other.url("/secret")})
        with pytest.raises(FetchError, match="refused"):
            fetcher.fetch(source.url("/feed"))
    assert len(other.requests_to("/secret")) == 1


def test_networks_the_operator_allows_may_be_reached_by_redirect(
    servers: tuple[LoopbackServer, LoopbackServer],
) -> None:
    source, other = servers
    source.routes["/feed"] = Reply(302, headers={"Location": other.url("/secret")})
    settings = SETTINGS.model_copy(update={"fetch_allowed_networks": "127.0.0.0/8"})
    with Fetcher(settings) as fetcher:
        assert fetcher.fetch(source.url("/feed")).content == b"internal"


def test_a_source_url_on_a_private_address_is_refused_with_the_setting_to_change() -> None:
    WATCH.allowed, WATCH.forbidden = set(), []
    try:
        with Fetcher(SETTINGS) as fetcher, pytest.raises(FetchError, match="DIGEST_FETCH_ALLOWED_NETWORKS"):
            fetcher.fetch("http://192.168.0.10/feed.xml")
    finally:
        WATCH.allowed = None
    assert WATCH.forbidden == []
