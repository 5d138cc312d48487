"""What `digest sources list` says of each source's state, from real fetches of a loopback server
on an injected clock and from the fetch log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.fetch.http import Fetcher
from digest.ingest.scrape import scrape
from digest.scheduler import Scheduler
from digest.store import sources as stored
from digest.store.engine import Database
from digest.store.models import FetchLog, Source
from digest.usecases import digests, sources
from tests.support.cli import digest
from tests.support.data import FIXTURES
from tests.support.loopback import LoopbackServer, Reply
from tests.support.store import add_subscriber, context, outbox, send

RSS = FIXTURES / "arxiv_rss_new_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_trimmed.xml"
EASTERN = ZoneInfo("America/New_York")


def eastern(*args: int) -> datetime:
    return datetime(*args, tzinfo=EASTERN).astimezone(UTC)


def add_source(sessions: sessionmaker[Session], name: str, kind: str, url: str) -> Source:
    with sessions.begin() as session:
        source = stored.add_source(session, name, kind, url, True, eastern(2026, 8, 1, 0, 0))
        session.expunge(source)
    return source


def states(migrated_url: str, now: datetime) -> dict[str, dict]:
    result = digest("sources", "list", "--json", "--now", now.isoformat(), url=migrated_url)
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in map(json.loads, result.output.splitlines())}


def test_a_tuesday_batch_that_repeats_mondays_ids_is_stale(migrated_url, sessions) -> None:
    with LoopbackServer() as server:
        server.routes["/rss"] = Reply(body=RSS.read_bytes())
        source = add_source(sessions, "ml", "arxiv-rss", server.url("/rss"))
        with Fetcher(Settings(host_min_interval=0)) as fetcher:
            for moment in (eastern(2026, 9, 21, 20, 30), eastern(2026, 9, 23, 0, 30)):
                scrape(Database(sessions.kw["bind"]), fetcher, [source], lambda moment=moment: moment)
    with sessions() as session:
        fresh = session.scalars(select(FetchLog.fresh).order_by(FetchLog.started_at)).all()
    assert fresh == [
        3,
        0,
    ]  # Monday's items (its fourth, a new version of an unknown paper, is not listed), then none
    tuesday_night = states(migrated_url, eastern(2026, 9, 22, 23, 0))["ml"]
    midnight = states(migrated_url, eastern(2026, 9, 23, 0, 15))["ml"]
    wednesday = states(migrated_url, eastern(2026, 9, 23, 1, 0))["ml"]
    assert tuesday_night["state"] == "fresh"  # the batch is not due before midnight Eastern
    assert midnight["state"] == "late"  # due, and not fetched since
    assert wednesday["state"] == "stale"
    assert "served the previous batch again (4 items, none new)" in wednesday["state_why"]
    assert wednesday["last_new_at"] == eastern(2026, 9, 21, 20, 30).isoformat()


def record(sessions, source: Source, started: datetime, *, fresh: int = 4, error: str | None = None) -> None:
    with sessions.begin() as session:
        stored.record_fetch(
            session,
            source.id,
            url=source.url,
            started=started,
            finished=started + timedelta(seconds=2),
            status="error" if error else "ok",
            http_status=503 if error else 200,
            error=error,
            counts=(0 if error else 4, 0, 0),
            validators=None,
            fresh=fresh,
        )


def test_sources_list_names_each_state_and_explains_those_not_fresh(migrated_url, sessions) -> None:
    fresh, late, stale = (
        add_source(sessions, name, "arxiv-rss", f"file:///{name}.xml") for name in ("a", "b", "c")
    )
    weekly = add_source(sessions, "weekly", "feed", "file:///weekly.xml")
    failing = add_source(sessions, "hf", "hf-daily", "file:///hf.json")
    record(sessions, fresh, eastern(2026, 9, 22, 20, 30))  # Tuesday's batch
    record(sessions, late, eastern(2026, 9, 21, 20, 30))  # Monday's, nothing since
    record(sessions, stale, eastern(2026, 9, 21, 20, 30))
    record(sessions, stale, eastern(2026, 9, 23, 0, 30), fresh=0)  # Monday's again, after the grace
    for week in range(8):  # Mondays at 09:00 UTC, 3 August to 21 September
        record(sessions, weekly, datetime(2026, 8, 3, 9, tzinfo=UTC) + timedelta(weeks=week))
    record(sessions, failing, eastern(2026, 9, 23, 8, 0), error="HTTP 503 from the server")
    now = eastern(2026, 9, 23, 10, 0).isoformat()  # Wednesday morning

    result = digest("sources", "list", "--now", now, url=migrated_url)

    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[3] for line in result.output.splitlines()[1:7]}
    assert rows == {
        "a": "fresh",
        "b": "late",
        "c": "stale",
        "hf": "failing",
        "hf-daily": "late",
        "weekly": "resting",
    }
    said = result.output.splitlines()
    assert "b: late: the batch due Tue 22 Sep 20:00 EDT has not arrived." in said
    assert any(line.startswith("c: stale: the batch due Tue 22 Sep 20:00 EDT is missing") for line in said)
    assert "hf: failing: its last fetch failed: HTTP 503 from the server." in said
    assert any(line.startswith("weekly: resting: no batch is expected today (learned: Mon") for line in said)
    assert not any(line.startswith("a:") for line in said)


def test_digest_run_says_a_source_served_its_previous_batch_again(migrated_url, sessions) -> None:
    """Whatever today is, an arXiv batch has been due since ten days ago: the same items again are stale."""
    assert digest("sources", "disable", "hf-daily", url=migrated_url).exit_code == 0
    source = add_source(sessions, "ml", "arxiv-rss", str(RSS))
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    with Fetcher(Settings(host_min_interval=0)) as fetcher:
        scrape(Database(sessions.kw["bind"]), fetcher, [source], lambda: ten_days_ago)

    result = digest("run", url=migrated_url, env={"DIGEST_TRANSPORT": "console"})

    assert result.exit_code == 0, result.output
    assert "Sources now: ml stale." in result.output
    assert (
        "the fetch at" in result.output
        and "served the previous batch again (4 items, none new)." in result.output
    )


def test_the_scheduler_warns_once_and_polls_sooner_while_a_source_stays_stale(
    settings, sessions, caplog
) -> None:
    moments = iter(
        [eastern(2026, 9, 21, 20, 30)]  # Monday's batch
        + [eastern(2026, 9, 23, hour, 0) for hour in (1, 2, 3)]  # Tuesday's is due: the same again, thrice
        + [eastern(2026, 9, 24, 1, 0)]  # Wednesday's is due too: a new episode
    )
    now = [eastern(2026, 9, 21, 20, 30)]

    def clock() -> datetime:
        return now[0]

    repolls = []
    with LoopbackServer() as server:
        server.routes["/rss"] = Reply(body=RSS.read_bytes())
        source = add_source(sessions, "ml", "arxiv-rss", server.url("/rss"))
        service = Scheduler(context(settings, sessions, clock))
        service.scheduler.start(paused=True)  # jobs are added as they would be, none runs
        with caplog.at_level("WARNING", logger="digest.scheduler"):
            for moment in moments:
                now[0] = moment
                assert service.fetch(source.id) is not None
                job = service.scheduler.get_job(f"repoll:{source.id}")
                repolls.append(job.args[1] if job else None)
            server.routes["/rss"] = Reply(body=RSS.read_bytes().replace(b"2609.26811", b"2609.99999"))
            now[0] = eastern(2026, 9, 24, 2, 0)
            assert service.fetch(source.id, 300).new == 1  # a re-poll finds Wednesday's batch
            left = service.scheduler.get_job(f"repoll:{source.id}")
            service.scheduler.shutdown(wait=False)
    warnings = [record.getMessage() for record in caplog.records if "is stale" in record.getMessage()]
    assert len(warnings) == 2, warnings
    assert "the batch due Tue 22 Sep 20:00 EDT is missing" in warnings[0]
    assert "the batch due Wed 23 Sep 20:00 EDT is missing" in warnings[1]
    assert repolls == [
        None,
        300,
        600,
        1200,
        300,
    ]  # sooner while it is missing, from the start for a new batch
    assert left is None  # fresh again: no more re-polls


def resting_run(settings, sessions, caplog, batch: datetime, fetches: list[datetime], send_at: datetime):
    """The scheduler fetching a loopback arXiv feed that brought its batch at ``batch`` and serves
    it again at each of ``fetches``, then a digest due at ``send_at``: (its send summary, the
    warnings logged, the re-polls planned, the source's state then)."""
    now = [batch]
    with LoopbackServer() as server:
        server.routes["/rss"] = Reply(body=RSS.read_bytes())
        assert digest("sources", "disable", "hf-daily", url=str(sessions.kw["bind"].url)).exit_code == 0
        source = add_source(sessions, "ml", "arxiv-rss", server.url("/rss"))
        add_subscriber(sessions, interests="drift", send_hour=send_at.hour, trending_section=False)
        ctx = context(settings.model_copy(update={"send_empty_digest": True}), sessions, lambda: now[0])
        service = Scheduler(ctx)
        service.scheduler.start(paused=True)
        repolls = []
        with caplog.at_level("WARNING", logger="digest.scheduler"):
            for moment in [batch, *fetches]:
                now[0] = moment
                assert service.fetch(source.id) is not None
                repolls.append(service.scheduler.get_job(f"repoll:{source.id}") is not None)
        service.scheduler.shutdown(wait=False)
        now[0] = send_at
        summary = digests.send(ctx, send_at)
    state = sources.source_state(ctx, source.id, send_at)["state"]
    return summary, [record.getMessage() for record in caplog.records], repolls, state


@pytest.mark.parametrize(
    ("batch", "fetches", "send_at"),
    [
        pytest.param(  # Thursday's batch; Friday announces nothing
            eastern(2026, 9, 24, 20, 30),
            [eastern(2026, 9, 25, 20, 30), eastern(2026, 9, 26, 1, 0)],
            datetime(2026, 9, 26, 6, 0, tzinfo=UTC),
            id="friday-and-saturday",
        ),
        pytest.param(  # Wednesday's batch; Thanksgiving Thursday, a listed holiday, announces nothing
            eastern(2025, 11, 26, 20, 30),
            [eastern(2025, 11, 27, 22, 30), eastern(2025, 11, 28, 1, 0)],
            datetime(2025, 11, 28, 6, 0, tzinfo=UTC),
            id="listed-holiday",
        ),
    ],
)
def test_after_a_friday_or_a_listed_holiday_nothing_waits_and_nothing_warns(
    settings, sessions, caplog, batch, fetches, send_at
) -> None:
    summary, warnings, repolls, state = resting_run(settings, sessions, caplog, batch, fetches, send_at)
    assert (state, warnings, any(repolls)) == ("resting", [], False)
    assert (summary.held, summary.sent) == (0, 1)  # at its hour


def test_the_same_week_without_the_holiday_is_stale_and_warned(settings, sessions, caplog) -> None:
    """The holiday case a week earlier: Thursday 20 November 2025 announces, so serving Wednesday's
    batch again after the grace is stale, warned and re-polled, and the digest waits."""
    batch, fetches = (
        eastern(2025, 11, 19, 20, 30),
        [eastern(2025, 11, 20, 22, 30), eastern(2025, 11, 21, 1, 0)],
    )
    summary, warnings, repolls, state = resting_run(
        settings, sessions, caplog, batch, fetches, datetime(2025, 11, 21, 6, 0, tzinfo=UTC)
    )
    assert state == "stale" and len(warnings) == 1 and repolls[-1]
    assert (summary.held, summary.sent) == (1, 0)


TUESDAY = (
    RSS.read_bytes()
    .replace(b"2609.26811", b"2609.30001")
    .replace(b"2609.26820", b"2609.30002")
    .replace(b"2205.06398", b"2609.30003")
    .replace(b"The Drift Contract", b"Glacier Drift Maps")
)


class Day:
    """Monday's batch at 20:30 Eastern, Tuesday's fetched again at 01:00 Eastern (still Monday's),
    a subscriber due at 07:00 UTC on Wednesday 23 September: the clock the test moves."""

    def __init__(self, settings, sessions, server: LoopbackServer, send_hour: int = 7) -> None:
        self.now = eastern(2026, 9, 21, 20, 30)
        self.sessions = sessions
        self.context = context(settings, sessions, lambda: self.now)
        self.source = add_source(sessions, "ml", "arxiv-rss", server.url("/rss"))
        add_subscriber(
            sessions, "ada@example.org", interests="drift", send_hour=send_hour, trending_section=False
        )
        self.fetch(self.now)
        self.fetch(eastern(2026, 9, 23, 1, 0))

    def fetch(self, at: datetime) -> None:
        self.now = at
        with Fetcher(Settings(host_min_interval=0)) as fetcher:
            scrape(Database(self.sessions.kw["bind"]), fetcher, [self.source], lambda: at)

    def send(self, at: datetime):
        self.now = at
        return digests.send(self.context, at)


@contextmanager
def arxiv_week(
    mail_settings: Settings, sessions, migrated_url: str, *, empty: bool = False, send_hour: int = 7
) -> Iterator[tuple[Day, LoopbackServer, Settings]]:
    """A Day on a loopback arXiv feed serving Monday's batch, the seeded hf-daily (the internet)
    off; ``empty``: a digest with nothing new is sent (send_empty_digest)."""
    assert digest("sources", "disable", "hf-daily", url=migrated_url).exit_code == 0
    settings = mail_settings.model_copy(update={"send_empty_digest": empty})
    with LoopbackServer() as server:
        server.routes["/rss"] = Reply(body=RSS.read_bytes())
        yield Day(settings, sessions, server, send_hour), server, settings


def bodies(settings) -> list[str]:
    return [message.get_body(("plain",)).get_content() for message in outbox(settings)]


def test_a_batch_two_hours_late_is_in_the_held_digest_and_in_no_second_mail(
    mail_settings, sessions, migrated_url
) -> None:
    with arxiv_week(mail_settings, sessions, migrated_url) as (day, server, mail_settings):
        held = day.send(datetime(2026, 9, 23, 7, 0, tzinfo=UTC))  # due, and Tuesday's batch is missing
        later = day.send(datetime(2026, 9, 23, 8, 0, tzinfo=UTC))
        server.routes["/rss"] = Reply(body=TUESDAY)
        day.fetch(datetime(2026, 9, 23, 9, 0, tzinfo=UTC))  # two hours after the digest's hour
        sent = day.send(datetime(2026, 9, 23, 9, 5, tzinfo=UTC))
        again = day.send(datetime(2026, 9, 23, 12, 0, tzinfo=UTC))
    assert (held.held, held.planned, later.held) == (1, 0, 1)
    assert (sent.sent, again.planned, again.sent) == (1, 0, 0)
    [body] = bodies(mail_settings)
    assert "Glacier Drift Maps" in body and "had not arrived" not in body


def test_a_batch_that_never_comes_releases_the_digest_at_the_limit_and_reaches_the_next_once(
    mail_settings, sessions, migrated_url
) -> None:
    with arxiv_week(mail_settings, sessions, migrated_url, empty=True) as (day, server, mail_settings):
        before = day.send(datetime(2026, 9, 23, 9, 59, tzinfo=UTC))  # hold_for_sources is 3 hours
        released = day.send(datetime(2026, 9, 23, 10, 0, tzinfo=UTC))
        server.routes["/rss"] = Reply(body=TUESDAY)
        day.fetch(eastern(2026, 9, 24, 0, 30))  # Tuesday's batch after all, with Wednesday's due soon
        thursday = day.send(datetime(2026, 9, 24, 7, 0, tzinfo=UTC))
        friday = day.send(datetime(2026, 9, 25, 7, 0, tzinfo=UTC))
    assert (before.held, released.sent, thursday.sent) == (1, 1, 1)
    wednesday_mail, thursday_mail, *rest = bodies(mail_settings)
    assert (
        "The ml listing of Tue 22 Sep had not arrived by 10:00; what it brings will be in your next"
        in " ".join(wednesday_mail.split())
    )
    assert "Glacier Drift Maps" not in wednesday_mail
    assert "Glacier Drift Maps" in thursday_mail and "had not arrived" not in thursday_mail
    assert all("Glacier Drift Maps" not in body for body in rest), friday


def test_on_a_resting_day_a_digest_with_nothing_new_says_why(mail_settings, sessions, migrated_url) -> None:
    with arxiv_week(mail_settings, sessions, migrated_url, empty=True) as (day, server, mail_settings):
        add_subscriber(sessions, "bo@example.org", interests="quantum chromodynamics", send_hour=7)
        server.routes["/rss"] = Reply(body=TUESDAY)
        day.fetch(eastern(2026, 9, 24, 20, 30))  # Thursday's batch, the last of the week
        friday = day.send(datetime(2026, 9, 25, 7, 0, tzinfo=UTC))
        saturday = day.send(datetime(2026, 9, 26, 7, 0, tzinfo=UTC))
    assert (friday.sent, friday.held, saturday.sent, saturday.held) == (2, 0, 2, 0)
    mails = {(message["To"], message["Date"][:16]): message for message in outbox(mail_settings)}
    text = {
        key: " ".join(message.get_body(("plain",)).get_content().split()) for key, message in mails.items()
    }
    quiet = (
        "No new papers since your last digest: none of the listings publishes today (ml: arXiv: Sunday "
        "to Thursday at 20:00 US Eastern, not on its holidays). The next listing is due Mon 28 Sep at 00:00."
    )
    assert "Glacier Drift Maps" in text["ada@example.org", "Fri, 25 Sep 2026"]
    assert "Nothing new matched your interests" in text["bo@example.org", "Fri, 25 Sep 2026"]  # papers came
    for reader in ("ada@example.org", "bo@example.org"):
        assert quiet in text[reader, "Sat, 26 Sep 2026"]
        assert "Nothing new matched" not in text[reader, "Sat, 26 Sep 2026"]
        assert quiet in mails[reader, "Sat, 26 Sep 2026"].get_body(("html",)).get_content()
    assert all(quiet not in body for key, body in text.items() if key[1].startswith("Fri"))


HF_DAY = FIXTURES / "hf_daily_papers_api_2026-06-12_raw.json"
PAPER = "2606.11409"  # "Risk Under Pressure…", 8 upvotes when captured


def with_upvotes(upvotes: int) -> bytes:
    listing = json.loads(HF_DAY.read_bytes())
    for entry in listing:
        if entry["paper"]["id"] == PAPER:
            entry["paper"]["upvotes"] = upvotes
    return json.dumps(listing).encode()


def test_the_days_before_today_are_fetched_again_so_upvotes_at_send_time_are_current(
    mail_settings, sessions, migrated_url
) -> None:
    with LoopbackServer() as server:
        server.routes["/api/daily_papers"] = Reply(body=HF_DAY.read_bytes())
        server.routes["/api/daily_papers?date=2026-06-11"] = Reply(body=b"[]")
        source = add_source(sessions, "hf", "hf-daily", server.url("/api/daily_papers"))
        settings = mail_settings.model_copy(update={"repoll_days": 1})

        def fetch(at: datetime) -> None:
            sources.scrape_sources(context(settings, sessions, lambda: at), ["hf"])

        fetch(datetime(2026, 6, 12, 12, tzinfo=UTC))  # on its day: 8 upvotes
        server.routes["/api/daily_papers"] = Reply(body=b"[]")  # the next day's list, still empty
        server.routes["/api/daily_papers?date=2026-06-12"] = Reply(body=with_upvotes(15))
        for hour in (6, 7):  # fetched twice, no change the second time
            fetch(datetime(2026, 6, 13, hour, tzinfo=UTC))
    add_subscriber(sessions, interests='"adversarial robustness"', send_hour=8, trending_section=False)
    assert send(settings, sessions, datetime(2026, 6, 13, 8, tzinfo=UTC)).sent == 1

    shown = json.loads(digest("papers", "show", PAPER, "--json", url=migrated_url).output)
    assert [row["upvotes"] for row in shown["metrics"]] == [8, 15]  # one snapshot per change
    [mail] = outbox(settings)
    assert "Risk Under Pressure" in mail.get_body(("plain",)).get_content()
    assert "15 upvotes" in mail.get_body(("plain",)).get_content()
    with sessions() as session:
        urls = session.scalars(select(FetchLog.url).where(FetchLog.source_id == source.id)).all()
    assert sum(url.endswith("?date=2026-06-12") for url in urls) == 2


def trending_order(*first: str, without: str | None = None) -> bytes:
    """The captured day's listing with ``first`` moved to the top (and ``without`` left out)."""
    listing = [entry for entry in json.loads(HF_DAY.read_bytes()) if entry["paper"]["id"] != without]
    listing.sort(key=lambda entry: entry["paper"]["id"] not in first)
    return json.dumps(listing).encode()


def test_a_trending_source_records_each_papers_place_and_takes_it_back_when_the_paper_leaves(
    mail_settings, sessions, migrated_url
) -> None:
    with LoopbackServer() as server:
        server.routes["/api/daily_papers?sort=trending"] = Reply(body=HF_DAY.read_bytes())
        add_source(sessions, "trending", "hf-daily", server.url("/api/daily_papers?sort=trending"))
        settings = mail_settings.model_copy(update={"repoll_days": 0})

        def fetch(hour: int) -> None:
            sources.scrape_sources(
                context(settings, sessions, lambda: datetime(2026, 6, 12, hour, tzinfo=UTC)), []
            )

        fetch(9)  # 7th in the captured order
        fetch(10)  # the same order again: nothing to record
        server.routes["/api/daily_papers?sort=trending"] = Reply(body=trending_order(PAPER))
        fetch(11)
        add_subscriber(sessions, interests='"adversarial robustness"', send_hour=12, trending_section=False)
        assert send(settings, sessions, datetime(2026, 6, 12, 12, tzinfo=UTC)).sent == 1
        server.routes["/api/daily_papers?sort=trending"] = Reply(body=trending_order(without=PAPER))
        fetch(13)

    shown = json.loads(digest("papers", "show", PAPER, "--json", url=migrated_url).output)
    assert [(row["trending_rank"], row["upvotes"]) for row in shown["metrics"]] == [(7, 8), (1, 8), (None, 8)]
    [mail] = outbox(settings)
    assert "8 upvotes · 3 comments · #1 trending on Hugging Face" in mail.get_body(("plain",)).get_content()
    assert "#1 trending on Hugging Face" in mail.get_body(("html",)).get_content()


def test_a_source_in_the_apis_own_order_records_no_trending_place(
    mail_settings, sessions, migrated_url
) -> None:
    with LoopbackServer() as server:
        server.routes["/api/daily_papers"] = Reply(body=HF_DAY.read_bytes())
        add_source(sessions, "hf", "hf-daily", server.url("/api/daily_papers"))
        settings = mail_settings.model_copy(update={"repoll_days": 0})
        sources.scrape_sources(context(settings, sessions, lambda: datetime(2026, 6, 12, 9, tzinfo=UTC)), [])
    shown = json.loads(digest("papers", "show", PAPER, "--json", url=migrated_url).output)
    assert [row["trending_rank"] for row in shown["metrics"]] == [None]


def test_a_digest_held_late_in_the_day_goes_out_before_its_day_ends(
    mail_settings, sessions, migrated_url
) -> None:
    """Due at 22:00, held 3 hours at most: until 23:00, not past midnight, when it is no longer due."""
    with arxiv_week(mail_settings, sessions, migrated_url, empty=True, send_hour=22) as (
        day,
        _,
        mail_settings,
    ):
        held = day.send(datetime(2026, 9, 23, 22, 30, tzinfo=UTC))
        sent = day.send(datetime(2026, 9, 23, 23, 0, tzinfo=UTC))
    assert (held.held, sent.sent) == (1, 1)
    assert "had not arrived by 23:00" in " ".join(bodies(mail_settings)[0].split())


def test_nothing_waits_for_a_source_that_has_missed_more_than_its_latest_batch(
    mail_settings, sessions, migrated_url
) -> None:
    """A source that stopped is not about to send: the digest goes out at its hour, and says so."""
    with arxiv_week(mail_settings, sessions, migrated_url, empty=True) as (day, _, mail_settings):
        day.fetch(eastern(2026, 9, 24, 1, 0))  # Wednesday's batch is missing too
        thursday = day.send(datetime(2026, 9, 24, 7, 0, tzinfo=UTC))
    assert (thursday.held, thursday.sent) == (0, 1)
    assert "The ml listing of Wed 23 Sep had not arrived by 07:00" in " ".join(
        bodies(mail_settings)[0].split()
    )


def test_a_past_day_that_fails_to_fetch_again_leaves_the_source_as_its_listing_left_it(
    settings, sessions
) -> None:
    with LoopbackServer() as server:
        server.routes["/api/daily_papers"] = Reply(body=HF_DAY.read_bytes())
        server.routes["/api/daily_papers?date=2026-06-11"] = Reply(503)
        add_source(sessions, "hf", "hf-daily", server.url("/api/daily_papers"))
        quick = settings.model_copy(update={"repoll_days": 1, "fetch_retries": 0})
        [report] = sources.scrape_sources(
            context(quick, sessions, lambda: datetime(2026, 6, 12, 12, tzinfo=UTC)), ["hf"]
        )
    assert report.status == "ok" and report.new == 30
    with sessions() as session:
        source = session.scalar(select(Source).where(Source.name == "hf"))
        logged = session.scalars(select(FetchLog.status).where(FetchLog.source_id == source.id)).all()
    assert (source.last_status, source.consecutive_failures) == ("ok", 0)
    assert sorted(logged) == ["error", "ok"]


def test_when_todays_listing_fails_the_past_days_are_not_tried(settings, sessions) -> None:
    """An unreachable host would only fail again: `digest run` offline would take three times as long."""
    with LoopbackServer() as server:
        server.routes["/api/daily_papers"] = Reply(503)
        add_source(sessions, "hf", "hf-daily", server.url("/api/daily_papers"))
        quick = settings.model_copy(update={"repoll_days": 2, "fetch_retries": 0})
        [report] = sources.scrape_sources(
            context(quick, sessions, lambda: datetime(2026, 6, 12, 12, tzinfo=UTC)), ["hf"]
        )
    with sessions() as session:
        logged = session.scalars(select(FetchLog.url)).all()
    assert report.status == "error" and [url.rsplit("/", 1)[-1] for url in logged] == ["daily_papers"]
