"""Ingest into real databases (SQLite and PostgreSQL): one row per paper, listings, snapshots, fetch log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.fetch.addresses import dates_since, url_for_date
from digest.fetch.http import Fetcher
from digest.ingest.scrape import scrape
from digest.model.time import system_clock
from digest.store import papers
from digest.store.engine import Database
from digest.store.models import FetchLog, Listing, MetricSnapshot, Paper, PaperText, Source
from tests.support.data import FIXTURES
from tests.support.loopback import LoopbackServer, Reply

HF_JSON = FIXTURES / "hf_daily_papers_api_2026-06-12_raw.json"
HF_PAGE = FIXTURES / "hf_papers_page_2024-08-01.html"
RSS = FIXTURES / "arxiv_rss_new_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_trimmed.xml"
API = FIXTURES / "arxiv_api_atom_2026-04-12_q_testing_s0_m10_body_extracted.xml"


def add_source(sessions: sessionmaker[Session], name: str, kind: str, url: str | Path) -> Source:
    with sessions.begin() as session:
        source = Source(name=name, kind=kind, url=str(url), created_at=system_clock())
        session.add(source)
    return source


def run(sessions: sessionmaker[Session], *sources: Source, settings: Settings | None = None, **kwargs):
    with Fetcher(settings or Settings(host_min_interval=0)) as fetcher:
        return scrape(Database(sessions.kw["bind"]), fetcher, sources, system_clock, **kwargs)


def counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Paper, Listing, MetricSnapshot, FetchLog)
        }


def test_hf_listing_is_stored_with_its_upvotes(sessions) -> None:
    source = add_source(sessions, "hf", "hf-daily", HF_JSON)
    [report] = run(sessions, source)
    assert (report.status, report.seen, report.new, report.updated) == ("ok", 30, 30, 0)
    with sessions() as session:
        paper = session.get(Paper, "2606.00467")
        assert paper.title.startswith("On the Limits of LLM Adaptability")
        assert paper.authors == ["Etienne Casanova", "Rafal Kocielnik", "R. Michael Alvarez"]
        listing = session.scalars(select(Listing).where(Listing.paper_id == "2606.00467")).one()
        assert listing.listed_on == date(2026, 6, 12) and listing.rank == 1
        snapshot = session.scalars(
            select(MetricSnapshot).where(MetricSnapshot.paper_id == "2606.00467")
        ).one()
        assert (snapshot.upvotes, snapshot.comments) == (0, 2)


def test_rescrape_of_the_same_input_adds_nothing(sessions) -> None:
    source = add_source(sessions, "hf", "hf-daily", HF_JSON)
    run(sessions, source)
    before = counts(sessions)
    [again] = run(sessions, source)
    after = counts(sessions)
    assert (again.seen, again.new, again.updated) == (30, 0, 0)
    assert after == {**before, "fetch_log": before["fetch_log"] + 1}


def test_same_paper_from_two_source_kinds_is_one_row(sessions, tmp_path) -> None:
    shared_id = "2606.00467"
    rss = tmp_path / "rss.xml"
    rss.write_text(RSS.read_text(encoding="utf-8").replace("2609.26811", shared_id), encoding="utf-8")
    hf = add_source(sessions, "hf", "hf-daily", HF_JSON)
    arxiv = add_source(sessions, "arxiv", "arxiv-rss", rss)
    [hf_report, rss_report] = run(sessions, hf, arxiv)
    assert hf_report.new == 30
    assert rss_report.new == 2  # 4 items: one is the HF paper, one a replace of an unknown paper
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Paper)) == 32
        listed_by = session.scalars(select(Listing.source_id).where(Listing.paper_id == shared_id)).all()
        assert sorted(listed_by) == sorted([hf.id, arxiv.id])
        paper = session.get(Paper, shared_id)
        assert paper.version == 1 and paper.categories == ["cs.LG"]


def test_arxiv_replace_updates_a_known_paper_and_never_adds_one(sessions, tmp_path) -> None:
    replaced = "2009.13987"
    rss_source = add_source(sessions, "arxiv", "arxiv-rss", RSS)
    [first] = run(sessions, rss_source)
    with sessions() as session:
        assert session.get(Paper, replaced) is None
    assert (first.seen, first.new) == (4, 3)

    older = tmp_path / "older.xml"
    older.write_text(
        RSS.read_text(encoding="utf-8")
        .replace(f"{replaced}v3", f"{replaced}v2")
        .replace("Announce Type: replace", "Announce Type: new")
        .replace("<arxiv:announce_type>replace<", "<arxiv:announce_type>new<"),
        encoding="utf-8",
    )
    run(sessions, add_source(sessions, "older", "arxiv-rss", older))
    with sessions() as session:
        assert session.get(Paper, replaced).version == 2
        first_seen = session.get(Paper, replaced).first_seen_at
    papers_before = counts(sessions)["papers"]

    [again] = run(sessions, rss_source)
    assert (again.new, again.updated) == (0, 1)
    assert counts(sessions)["papers"] == papers_before
    with sessions() as session:
        assert session.get(Paper, replaced).version == 3
        # digests find what they sent before by first-seen windows: an update never moves it
        assert session.get(Paper, replaced).first_seen_at == first_seen


def test_changed_upvotes_add_one_snapshot_for_that_paper_only(sessions, tmp_path) -> None:
    listing = tmp_path / "hf.json"
    listing.write_bytes(HF_JSON.read_bytes())
    source = add_source(sessions, "hf", "hf-daily", listing)
    run(sessions, source)
    text = HF_JSON.read_text(encoding="utf-8")
    marker = '"id":"2606.00467"'
    head, tail = text.split(marker, 1)
    listing.write_text(head + marker + tail.replace('"upvotes":0', '"upvotes":12', 1), encoding="utf-8")
    [report] = run(sessions, source)
    assert report.updated == 0
    with sessions() as session:
        history = session.scalars(
            select(MetricSnapshot.upvotes)
            .where(MetricSnapshot.paper_id == "2606.00467")
            .order_by(MetricSnapshot.id)
        ).all()
        assert history == [0, 12]
        assert session.scalar(select(func.count()).select_from(MetricSnapshot)) == 31


def test_a_broken_source_fails_alone_and_is_logged(sessions, tmp_path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body>maintenance</body></html>", encoding="utf-8")
    bad = add_source(sessions, "bad", "hf-page", broken)
    good = add_source(sessions, "good", "hf-page", HF_PAGE)
    [bad_report, good_report] = run(sessions, bad, good)
    assert bad_report.status == "error" and bad_report.error
    assert (good_report.status, good_report.new) == ("ok", 13)
    with sessions() as session:
        entry = session.scalars(select(FetchLog).where(FetchLog.source_id == bad.id)).one()
        assert entry.status == "error" and entry.error == bad_report.error
        assert session.get(Source, bad.id).consecutive_failures == 1
        assert session.get(Source, good.id).consecutive_failures == 0


def test_unchanged_source_costs_one_304_and_no_parse(sessions) -> None:
    body = HF_JSON.read_bytes()

    def conditional(handler) -> Reply:
        if handler.headers.get("If-None-Match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(body=body, headers={"ETag": '"v1"', "Content-Type": "application/json"})

    with LoopbackServer() as server:
        server.routes["/api/daily_papers"] = conditional
        source = add_source(sessions, "hf", "hf-daily", server.url("/api/daily_papers"))
        [first] = run(sessions, source)
        with sessions() as session:
            source = session.get(Source, source.id)
        [second] = run(sessions, source)
    assert (first.status, first.new) == ("ok", 30)
    assert (second.status, second.seen) == ("not-modified", 0)
    assert server.requests_to("/api/daily_papers")[1].headers["If-None-Match"] == '"v1"'
    with sessions() as session:
        statuses = session.scalars(select(FetchLog.status).order_by(FetchLog.id)).all()
        assert statuses == ["ok", "not-modified"]


def test_since_backfills_every_missed_date(sessions) -> None:
    with LoopbackServer() as server:
        for day in ("2026-06-10", "2026-06-11", "2026-06-12"):
            server.routes[f"/api/daily_papers?date={day}"] = Reply(body=b"[]")
        source = add_source(sessions, "hf", "hf-daily", server.url("/api/daily_papers"))
        days = dates_since(date(2026, 6, 10), date(2026, 6, 12))
        [report] = run(sessions, source, dates=days)
    assert report.fetches == 3 and report.status == "ok"
    asked = [seen.path for seen in server.seen if seen.path != "/robots.txt"]
    assert asked == [f"/api/daily_papers?date=2026-06-{day}" for day in (10, 11, 12)]


def test_since_reads_a_source_that_takes_no_date_once_under_the_listings_own_date(sessions) -> None:
    source = add_source(sessions, "sample", "hf-page", HF_PAGE)
    told: list[str] = []
    [report] = run(
        sessions, source, dates=dates_since(date(2026, 6, 10), date(2026, 6, 12)), progress=told.append
    )
    assert report.fetches == 1 and report.status == "ok"
    assert "sample: fetched once, its URL takes no date" in told
    with sessions() as session:
        assert set(session.scalars(select(Listing.listed_on))) == {date(2024, 8, 1)}


def test_dry_run_writes_nothing(sessions) -> None:
    source = add_source(sessions, "hf", "hf-daily", HF_JSON)
    [report] = run(sessions, source, dry_run=True)
    assert (report.seen, report.new) == (30, 30)
    assert counts(sessions) == {"papers": 0, "listings": 0, "metric_snapshots": 0, "fetch_log": 0}


@pytest.mark.parametrize(
    ("kind", "url", "day", "expected"),
    [
        (
            "hf-daily",
            "https://huggingface.co/api/daily_papers",
            date(2026, 11, 2),
            "https://huggingface.co/api/daily_papers?date=2026-11-02",
        ),
        (
            "hf-page",
            "https://huggingface.co/papers",
            date(2026, 11, 2),
            "https://huggingface.co/papers/date/2026-11-02",
        ),
        ("feed", "https://example.org/{date}.xml", date(2026, 11, 2), "https://example.org/2026-11-02.xml"),
        (
            "arxiv-rss",
            "https://rss.arxiv.org/rss/cs.LG",
            date(2026, 11, 2),
            "https://rss.arxiv.org/rss/cs.LG",
        ),
    ],
)
def test_date_addressed_urls(kind: str, url: str, day: date, expected: str) -> None:
    assert url_for_date(kind, url, day, date(2026, 11, 20)) == expected


def test_a_server_error_is_retried_then_logged_with_its_status(sessions) -> None:
    with LoopbackServer() as server:
        server.routes["/feed"] = Reply(503, b"down for maintenance")
        server.routes["/page"] = Reply(body=HF_PAGE.read_bytes())
        down = add_source(sessions, "down", "arxiv-rss", server.url("/feed"))
        up = add_source(sessions, "up", "hf-page", server.url("/page"))
        settings = Settings(host_min_interval=0, retry_backoff=0.01, fetch_retries=2)
        [down_report, up_report] = run(sessions, down, up, settings=settings)
    assert len(server.requests_to("/feed")) == 3
    assert down_report.status == "error" and "HTTP 503" in down_report.error
    assert (up_report.status, up_report.new) == ("ok", 13)
    with sessions() as session:
        entry = session.scalars(select(FetchLog).where(FetchLog.source_id == down.id)).one()
        assert (entry.status, entry.http_status) == ("error", 503)


def test_a_malformed_page_from_the_network_fails_its_source_only(sessions) -> None:
    with LoopbackServer() as server:
        server.routes["/broken"] = Reply(body=b"<html><body>We are down</body></html>")
        server.routes["/api"] = Reply(body=HF_JSON.read_bytes())
        broken = add_source(sessions, "broken", "hf-page", server.url("/broken"))
        fine = add_source(sessions, "fine", "hf-daily", server.url("/api"))
        [broken_report, fine_report] = run(sessions, broken, fine)
    assert broken_report.status == "error" and "Daily Papers page" in broken_report.error
    assert (fine_report.status, fine_report.new) == ("ok", 30)
    with sessions() as session:
        entry = session.scalars(select(FetchLog).where(FetchLog.source_id == broken.id)).one()
        assert (entry.status, entry.http_status, entry.new) == ("error", 200, 0)


def test_hugging_face_and_arxiv_listing_one_paper_in_turn_settle(sessions, tmp_path) -> None:
    shared_id = "2606.00467"
    rss = tmp_path / "rss.xml"
    rss.write_text(RSS.read_text(encoding="utf-8").replace("2609.26811", shared_id), encoding="utf-8")
    hf = add_source(sessions, "hf", "hf-daily", HF_JSON)
    arxiv = add_source(sessions, "arxiv", "arxiv-rss", rss)
    run(sessions, hf, arxiv)
    with sessions() as session:
        arxiv_version = session.get(Paper, shared_id)
        stored = (arxiv_version.title, arxiv_version.authors, arxiv_version.pdf_url, arxiv_version.version)
    for _ in range(2):
        reports = run(sessions, hf, arxiv)
        assert [report.updated for report in reports] == [0, 0]
    with sessions() as session:
        paper = session.get(Paper, shared_id)
        assert (paper.title, paper.authors, paper.pdf_url, paper.version) == stored
        assert paper.hf_url == f"https://huggingface.co/papers/{shared_id}"


def spoof_feed(arxiv_id: str) -> bytes:
    """A feed anyone could publish, claiming a made-up newer version of a real arXiv paper."""
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>spoof</title>"
        f"<item><title>SPOOFED TITLE</title><link>https://arxiv.org/abs/{arxiv_id}v99</link>"
        "<description>SPOOFED ABSTRACT</description></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize("spoof_first", [True, False], ids=["spoof-first", "arxiv-first"])
def test_a_feed_cannot_rewrite_what_arxiv_says_of_a_paper(sessions, spoof_first: bool) -> None:
    arxiv_id = "2609.26811"
    with LoopbackServer() as server:
        server.routes["/spoof"] = Reply(body=spoof_feed(arxiv_id))
        spoof = add_source(sessions, "spoof", "feed", server.url("/spoof"))
        arxiv = add_source(sessions, "arxiv", "arxiv-rss", RSS)
        run(sessions, *((spoof, arxiv) if spoof_first else (arxiv, spoof)))
        run(sessions, spoof)
        run(sessions, arxiv)
    with sessions() as session:
        paper = session.get(Paper, arxiv_id)
        assert paper.title.startswith("The Drift Contract") and "SPOOFED" not in paper.abstract
        assert (paper.version, paper.text_authority) == (1, 3)
        rows = session.scalars(select(PaperText).where(PaperText.paper_id == arxiv_id))
        texts = {row.source_id: (row.version, row.title) for row in rows}
    assert texts[spoof.id] == (99, "SPOOFED TITLE")
    assert texts[arxiv.id][0] == 1 and texts[arxiv.id][1].startswith("The Drift Contract")


def test_a_listing_that_looks_like_arxiv_but_comes_from_elsewhere_counts_as_a_feed(sessions) -> None:
    arxiv_id = "2609.26811"
    genuine = RSS.read_bytes()
    forged = genuine.replace(b"The Drift Contract", b"FORGED Contract").replace(
        f"{arxiv_id}v1".encode(), f"{arxiv_id}v7".encode()
    )
    with LoopbackServer() as server:
        server.routes["/rss"] = Reply(body=forged)
        forger = add_source(sessions, "forger", "arxiv-rss", server.url("/rss"))
        arxiv = add_source(sessions, "arxiv", "arxiv-rss", RSS)
        run(sessions, arxiv)
        run(sessions, forger)
    with sessions() as session:
        paper = session.get(Paper, arxiv_id)
        assert paper.title.startswith("The Drift Contract") and paper.version == 1


def test_a_paper_stored_for_a_library_becomes_new_when_first_announced_not_when_revised(sessions) -> None:
    """import-library --fetch stores old papers as not listed; a source listing one as new makes
    it the day's news, an arXiv replace announcement (a new version of an old paper) does not."""
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    reference = {"title": "stored for a library", "abs_url": "https://arxiv.org/abs/x", "authors": []}
    with sessions.begin() as session:
        rows = [
            {**reference, "id": paper, "first_seen_at": long_ago, "updated_at": long_ago}
            for paper in ("2609.26811", "2009.13987")
        ]
        assert sorted(papers.insert_references(session, rows)) == ["2009.13987", "2609.26811"]
    [report] = run(sessions, add_source(sessions, "arxiv", "arxiv-rss", RSS))
    with sessions() as session:
        announced, revised = session.get(Paper, "2609.26811"), session.get(Paper, "2009.13987")
        listed = session.scalar(select(func.count()).select_from(Paper).where(Paper.listed))
    assert announced.listed and announced.first_seen_at > long_ago
    assert report.new == listed  # the fetch log calls the announced one new, not updated
    assert not revised.listed and revised.first_seen_at.replace(tzinfo=UTC) == long_ago


def test_a_source_inserting_a_paper_a_library_stored_meanwhile_makes_it_listed(sessions) -> None:
    """The race: a scrape found the paper absent, then a lookup stored it unlisted, then the
    scrape inserts it. The scrape's listing wins."""
    long_ago, now = datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
    row = {"id": "2609.26811", "title": "t", "abs_url": "https://arxiv.org/abs/2609.26811", "authors": []}
    with sessions.begin() as session:
        papers.insert_references(session, [{**row, "first_seen_at": long_ago, "updated_at": long_ago}])
    with sessions.begin() as session:
        papers.insert_papers(session, [{**row, "first_seen_at": now, "updated_at": now}])
        papers.insert_papers(session, [{**row, "first_seen_at": now + timedelta(days=1), "updated_at": now}])
    with sessions() as session:
        paper = session.get(Paper, "2609.26811")
    assert paper.listed and paper.first_seen_at.replace(tzinfo=UTC) == now  # a second insert changes nothing
