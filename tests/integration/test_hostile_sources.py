"""Hostile sources on loopback, scraped by a real `digest scrape` in a child process beside a good
source: each is cut off in bounded time and memory, and the good source is still stored."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from digest.store import schema
from digest.store import sources as stored_sources
from digest.store.engine import Database
from digest.store.models import Listing, Source
from tests.support.data import HF_JSON, RSS
from tests.support.hostile import (
    ChildRun,
    HostileServer,
    answering,
    gzip_of_zeros,
    processing_forever,
    run_measured,
    stacked_bomb,
    trickled_head,
)
from tests.support.loopback import LoopbackServer, Reply

MB = 1 << 20
GOOD_FEED = "/rss/cs.LG"


@pytest.fixture(scope="module")
def good_server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        server.routes[GOOD_FEED] = Reply(
            body=RSS.read_bytes(), headers={"Content-Type": "application/rss+xml"}
        )
        yield server


def scrape_beside_good(
    tmp: Path, good: LoopbackServer, hostile_url: str | None, kind: str = "feed", **env: str
) -> tuple[ChildRun, int]:
    """Scrape a good RSS source and, if given, a hostile one of ``kind``, on the default settings
    unless ``env`` says otherwise; returns the run and how many papers the good source has listed."""
    url = f"sqlite:///{tmp / 'digest.db'}"
    database = Database.open(url)
    schema.upgrade(database.engine)
    now = datetime.now(UTC)
    with database.begin() as session:
        session.execute(update(Source).values(enabled=False))  # the seeded hf-daily is out of reach
        stored_sources.add_source(session, "good", "arxiv-rss", good.url(GOOD_FEED), True, now)
        if hostile_url:
            stored_sources.add_source(session, "hostile", kind, hostile_url, True, now)
    run = run_measured(["scrape"], {"DIGEST_DATABASE_URL": url, **env}, cwd=tmp)
    with database.session() as session:
        good_id = session.scalar(select(Source.id).where(Source.name == "good"))
        listed = session.scalar(select(func.count()).select_from(Listing).where(Listing.source_id == good_id))
    database.dispose()
    return run, listed or 0


@pytest.fixture(scope="module")
def baseline(good_server: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> ChildRun:
    """The same scrape with the good source alone: the memory every hostile run is held against."""
    run, listed = scrape_beside_good(tmp_path_factory.mktemp("baseline"), good_server, None)
    assert run.returncode == 0 and listed > 0, run.output
    return run


def hostile_seconds(run: ChildRun) -> float:
    """What the hostile source cost the scrape, from its row of the summary."""
    row = next(line for line in run.output.splitlines() if line.strip().startswith("hostile "))
    return float(row.split()[-1])


def assert_contained(run: ChildRun, listed: int, baseline: ChildRun, said: str) -> None:
    assert hostile_seconds(run) < 30, run.output
    assert run.seconds < 60, run.output  # the whole child: start-up, the good source and the hostile one
    assert run.peak_bytes - baseline.peak_bytes < 200 * MB, (run.peak_bytes, baseline.peak_bytes)
    assert listed > 0, run.output
    assert "hostile" in run.output and said in run.output, run.output


def test_a_server_that_trickles_its_head_is_cut_off_at_the_default_deadline(
    good_server: LoopbackServer, baseline: ChildRun, tmp_path: Path
) -> None:
    with HostileServer(trickled_head) as hostile:
        run, listed = scrape_beside_good(tmp_path, good_server, hostile.url())
    assert_contained(run, listed, baseline, "did not finish within 25 s")
    assert run.seconds >= 25  # the deadline, not a read timeout (20 s, never reached), ended it


def test_a_server_answering_102_processing_forever_is_cut_off_at_the_deadline(
    good_server: LoopbackServer, baseline: ChildRun, tmp_path: Path
) -> None:
    with HostileServer(processing_forever) as hostile:
        run, listed = scrape_beside_good(tmp_path, good_server, hostile.url(), DIGEST_FETCH_DEADLINE="5")
    assert_contained(run, listed, baseline, "did not finish within 5 s")
    assert run.seconds >= 5


@pytest.mark.parametrize("robots", ["true", "false"], ids=["robots.txt-bombed", "feed-bombed"])
@pytest.mark.parametrize(
    ("body", "encoding", "said"),
    [
        (stacked_bomb(2048 * MB), "gzip, gzip", "encoded 2 times over"),
        (gzip_of_zeros(1024 * MB), "gzip", "inflates to over 20,000,000 bytes"),
    ],
    ids=["gzip-inside-gzip", "one-layer-gzip"],
)
def test_a_compression_bomb_is_refused_before_it_grows(
    body: bytes,
    encoding: str,
    said: str,
    robots: str,
    good_server: LoopbackServer,
    baseline: ChildRun,
    tmp_path: Path,
) -> None:
    script = answering(body, {"Content-Encoding": encoding, "Content-Type": "text/plain"})
    with HostileServer(script) as hostile:
        run, listed = scrape_beside_good(
            tmp_path, good_server, hostile.url(), DIGEST_RESPECT_ROBOTS_TXT=robots
        )
    assert_contained(run, listed, baseline, "robots.txt" if robots == "true" else said)
    assert "refused" in run.output


def hf_listing_with_one_bad_number() -> bytes:
    items = json.loads(HF_JSON.read_text())
    items[1]["paper"]["upvotes"] = 10**30  # out of range for any database column
    return json.dumps(items).encode()


def utf32_feed_with_an_entity() -> bytes:
    text = (
        "<?xml version='1.0' encoding='utf-32'?><!DOCTYPE rss [<!ENTITY a 'aaaaaaaaaaaaaaaa'>]>"
        "<rss version='2.0'><channel><title>t</title><item><title>&a;</title>"
        "<link>https://example.org/a</link></item></channel></rss>"
    )
    return text.encode("utf-32")


PARSING_CASES = {
    "4-MB-of-tiny-tags": (
        "hf-page",
        b"<html><body><article>" + b"<b>" * 1_333_000 + b"</article></body></html>",
        "tags, more than the 150,000",
    ),
    "19-MB-of-empty-JSON-objects": (
        "hf-daily",
        b"[" + b"{}," * 6_333_000 + b"{}]",
        "JSON objects and arrays",
    ),
    "100k-nested-divs": (
        "hf-page",
        b"<html><body>" + b"<div>" * 100_000 + b"</body></html>",
        "Expected a Hugging Face",
    ),
    "escaped-markup-in-a-description": (
        "feed",
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item><title>t</title>"
        b"<link>https://example.org/a</link><description>" + b"&lt;b&gt;" * 2_000_000 + b"</description>"
        b"</item></channel></rss>",
        "tags, more than the 150,000",
    ),
    "UTF-32-with-an-entity": ("feed", utf32_feed_with_an_entity(), "declares XML entities"),
}


@pytest.mark.parametrize("case", PARSING_CASES, ids=list(PARSING_CASES))
def test_a_document_that_would_blow_up_a_parser_is_refused_in_bounded_time_and_memory(
    case: str, good_server: LoopbackServer, baseline: ChildRun, tmp_path: Path
) -> None:
    kind, body, said = PARSING_CASES[case]
    with HostileServer(answering(body, {"Content-Type": "application/octet-stream"})) as hostile:
        run, listed = scrape_beside_good(
            tmp_path, good_server, hostile.url(), kind, DIGEST_RESPECT_ROBOTS_TXT="false"
        )
    assert_contained(run, listed, baseline, said)
    assert "aaaaaaaaaaaaaaaa" not in run.output


def test_one_out_of_range_number_costs_that_number_not_the_paper_or_the_listing(
    good_server: LoopbackServer, baseline: ChildRun, tmp_path: Path
) -> None:
    body = hf_listing_with_one_bad_number()
    with HostileServer(answering(body, {"Content-Type": "application/json"})) as hostile:
        run, listed = scrape_beside_good(  # one listing: the past days it would fetch again serve the same
            tmp_path,
            good_server,
            hostile.url(),
            "hf-daily",
            DIGEST_RESPECT_ROBOTS_TXT="false",
            DIGEST_REPOLL_DAYS="0",
        )
    assert listed > 0 and run.returncode == 0, run.output
    row = next(line for line in run.output.splitlines() if line.strip().startswith("hostile"))
    assert row.split()[2] == "ok" and int(row.split()[3]) == len(json.loads(HF_JSON.read_text())), row


def test_a_redirects_own_body_is_not_read_however_it_inflates(
    good_server: LoopbackServer, baseline: ChildRun, tmp_path: Path
) -> None:
    bomb = gzip_of_zeros(1024 * MB)

    def script(conn: socket.socket, head: bytes) -> None:
        if head.startswith(b"GET /final"):
            answering(b"not found", {}, "404 Not Found")(conn, head)
            return
        answering(bomb, {"Content-Encoding": "gzip", "Location": "/final"}, "302 Found")(conn, head)

    with HostileServer(script) as hostile:
        run, listed = scrape_beside_good(
            tmp_path, good_server, hostile.url(), DIGEST_RESPECT_ROBOTS_TXT="false"
        )
    assert_contained(run, listed, baseline, "HTTP 404")
