"""The fetcher against a real HTTP server on loopback."""

from __future__ import annotations

import gzip
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from digest.config import Settings
from digest.errors import FetchError
from digest.fetch.http import Fetcher
from tests.support.loopback import LoopbackServer, Reply


@pytest.fixture
def fast() -> Settings:
    return Settings(host_min_interval=0, retry_backoff=0.01, fetch_deadline=10, fetch_retries=2)


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


def test_requests_name_the_project_and_contact_url(server: LoopbackServer) -> None:
    server.routes["/feed"] = Reply(body=b"ok")
    settings = Settings(host_min_interval=0, contact_url="https://example.org/digest-contact")
    with Fetcher(settings) as fetcher:
        assert fetcher.fetch(server.url("/feed")).content == b"ok"
    agent = server.requests_to("/feed")[0].headers["User-Agent"]
    assert agent.startswith("digest/") and "https://example.org/digest-contact" in agent


def test_conditional_headers_are_sent_and_304_has_no_content(server: LoopbackServer, fast: Settings) -> None:
    server.routes["/feed"] = Reply(304)
    with Fetcher(fast) as fetcher:
        result = fetcher.fetch(
            server.url("/feed"), etag='"v1"', last_modified="Mon, 23 Nov 2026 00:00:00 GMT"
        )
    headers = server.requests_to("/feed")[0].headers
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Mon, 23 Nov 2026 00:00:00 GMT"
    assert result.not_modified and result.etag == '"v1"'


def test_429_retry_after_is_waited_for(server: LoopbackServer, fast: Settings) -> None:
    server.routes["/feed"] = [Reply(429, headers={"Retry-After": "1"}), Reply(body=b"finally")]
    with Fetcher(fast) as fetcher:
        assert fetcher.fetch(server.url("/feed")).content == b"finally"
    first, second = server.requests_to("/feed")
    assert second.at - first.at >= 0.95


def test_retry_after_longer_than_allowed_gives_up_at_once(server: LoopbackServer, fast: Settings) -> None:
    server.routes["/feed"] = Reply(503, headers={"Retry-After": "3600"})
    with Fetcher(fast) as fetcher, pytest.raises(FetchError, match="wait 3600 s") as caught:
        fetcher.fetch(server.url("/feed"))
    assert caught.value.status == 503
    assert len(server.requests_to("/feed")) == 1


def test_server_errors_are_retried_then_reported(server: LoopbackServer, fast: Settings) -> None:
    server.routes["/feed"] = Reply(502, b"bad gateway")
    with Fetcher(fast) as fetcher, pytest.raises(FetchError, match="HTTP 502.*3 attempts") as caught:
        fetcher.fetch(server.url("/feed"))
    assert caught.value.status == 502
    assert len(server.requests_to("/feed")) == 3


def test_a_server_error_then_success_delivers_the_body(server: LoopbackServer, fast: Settings) -> None:
    server.routes["/feed"] = [Reply(500), Reply(body=b"fine")]
    with Fetcher(fast) as fetcher:
        assert fetcher.fetch(server.url("/feed")).content == b"fine"


def test_client_errors_are_not_retried(server: LoopbackServer, fast: Settings) -> None:
    with Fetcher(fast) as fetcher, pytest.raises(FetchError, match="HTTP 404") as caught:
        fetcher.fetch(server.url("/missing"))
    assert caught.value.status == 404
    assert len(server.requests_to("/missing")) == 1


def test_a_trickling_response_is_cut_at_the_deadline(server: LoopbackServer) -> None:
    server.routes["/slow"] = Reply(body=b"x" * 200, trickle=0.05)
    settings = Settings(host_min_interval=0, fetch_deadline=1, fetch_retries=0)
    start = time.monotonic()
    with Fetcher(settings) as fetcher, pytest.raises(FetchError, match="within 1 s"):
        fetcher.fetch(server.url("/slow"))
    assert time.monotonic() - start < 3


def test_a_declared_oversized_body_is_refused(server: LoopbackServer) -> None:
    server.routes["/big"] = Reply(body=b"x" * 5000)
    settings = Settings(host_min_interval=0, max_response_bytes=1000)
    with Fetcher(settings) as fetcher, pytest.raises(FetchError, match="over the 1,000-byte limit"):
        fetcher.fetch(server.url("/big"))


def test_a_compressed_body_is_capped_after_decompression(server: LoopbackServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 10_000
    server.routes["/bomb"] = Reply(body=bomb, headers={"Content-Encoding": "gzip"})
    settings = Settings(host_min_interval=0, max_response_bytes=100_000)
    with Fetcher(settings) as fetcher, pytest.raises(FetchError, match="over 100,000 bytes"):
        fetcher.fetch(server.url("/bomb"))


def test_a_redirect_loop_is_refused(server: LoopbackServer, fast: Settings) -> None:
    server.routes["/a"] = Reply(302, headers={"Location": "/b"})
    server.routes["/b"] = Reply(302, headers={"Location": "/a"})
    with Fetcher(fast) as fetcher, pytest.raises(FetchError, match="redirect loop"):
        fetcher.fetch(server.url("/a"))


def test_a_redirect_is_followed(server: LoopbackServer, fast: Settings) -> None:
    server.routes["/old"] = Reply(301, headers={"Location": "/new"})
    server.routes["/new"] = Reply(body=b"moved")
    with Fetcher(fast) as fetcher:
        result = fetcher.fetch(server.url("/old"))
    assert result.content == b"moved" and result.url.endswith("/new")


def test_robots_txt_disallow_is_obeyed_and_read_once(server: LoopbackServer, fast: Settings) -> None:
    server.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /private\n")
    server.routes["/public"] = Reply(body=b"hello")
    with Fetcher(fast) as fetcher:
        assert fetcher.fetch(server.url("/public")).content == b"hello"
        with pytest.raises(FetchError, match="robots.txt does not allow"):
            fetcher.fetch(server.url("/private/feed"))
    assert server.requests_to("/private/feed") == []
    assert len(server.requests_to("/robots.txt")) == 1


def test_robots_txt_can_be_ignored_by_setting(server: LoopbackServer) -> None:
    server.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /\n")
    server.routes["/feed"] = Reply(body=b"hello")
    settings = Settings(host_min_interval=0, respect_robots_txt=False)
    with Fetcher(settings) as fetcher:
        assert fetcher.fetch(server.url("/feed")).content == b"hello"
    assert server.requests_to("/robots.txt") == []


def test_requests_to_one_host_keep_the_minimum_interval(server: LoopbackServer) -> None:
    server.routes["/a"] = Reply(body=b"a")
    server.routes["/b"] = Reply(body=b"b")
    settings = Settings(host_min_interval=0.5, respect_robots_txt=False)
    with Fetcher(settings) as fetcher:
        fetcher.fetch(server.url("/a"))
        fetcher.fetch(server.url("/b"))
    assert server.requests_to("/b")[0].at - server.requests_to("/a")[0].at >= 0.45


def test_arxiv_hosts_get_at_least_three_seconds() -> None:
    waits: list[float] = []
    now = [100.0]
    fetcher = Fetcher(Settings(host_min_interval=0), sleep=waits.append, clock=lambda: now[0])
    fetcher._wait_for_host("https://export.arxiv.org/api/query?a")
    fetcher._wait_for_host("https://export.arxiv.org/api/query?b")
    fetcher._wait_for_host("https://example.org/feed")
    fetcher.close()
    assert waits == [3.0]


def test_an_unreachable_host_is_reported_after_retries(fast: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Fetcher(fast) as fetcher, pytest.raises(FetchError, match="cannot reach .* 3 attempts"):
        fetcher.fetch(f"http://127.0.0.1:{port}/feed")


def test_local_files_and_file_urls_are_read(tmp_path, fast: Settings) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(b"<html></html>")
    with Fetcher(fast) as fetcher:
        assert fetcher.fetch(str(page)).content == b"<html></html>"
        assert fetcher.fetch(page.as_uri()).content == b"<html></html>"
        with pytest.raises(FetchError, match="No such file"):
            fetcher.fetch(str(tmp_path / "missing.json"))


def test_retry_after_as_an_http_date_is_honoured(server: LoopbackServer, fast: Settings) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.routes["/feed"] = [Reply(503, headers={"Retry-After": when}), Reply(body=b"back")]
    with Fetcher(fast) as fetcher:
        assert fetcher.fetch(server.url("/feed")).content == b"back"
    first, second = server.requests_to("/feed")
    assert second.at - first.at >= 0.9


def test_only_http_file_urls_and_paths_are_fetched(fast: Settings) -> None:
    with Fetcher(fast) as fetcher, pytest.raises(FetchError, match="only http"):
        fetcher.fetch("ftp://example.org/feed.xml")
