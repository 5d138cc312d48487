"""A source's state from its publishing calendar and its fetches: a day on which nothing is
published is resting, a missing batch is late, a batch served again is stale."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.model.calendar import learn, schedule_for, shipped_arxiv_holidays
from digest.model.freshness import Behind, Fetch, Rest, Standing, freshness
from digest.model.source import FAILING, FRESH, LATE, RESTING, STALE

EASTERN = ZoneInfo("America/New_York")


def eastern(*args: int) -> datetime:
    return datetime(*args, tzinfo=EASTERN).astimezone(UTC)


def brought(moment: datetime, items: int = 4) -> Fetch:
    return Fetch(moment, "ok", items, items)


def served_again(moment: datetime, items: int = 4) -> Fetch:
    return Fetch(moment, "ok", items, 0)


# arXiv's week of 21 September 2026: Sunday to Thursday at 20:00 Eastern, each fetched half an hour later.
ARXIV_WEEK = [brought(eastern(2026, 9, day, 20, 30)) for day in (20, 21, 22, 23, 24)]


@pytest.mark.parametrize(
    "now",
    [eastern(2026, 9, 25, 12, 0), eastern(2026, 9, 26, 23, 0), eastern(2026, 9, 27, 19, 0)],
    ids=["friday", "saturday", "sunday-before-the-announcement"],
)
def test_arxiv_after_thursdays_batch_is_never_late_before_sundays(now: datetime) -> None:
    state = freshness("arxiv-rss", ARXIV_WEEK, now)
    assert state.state in {RESTING, FRESH}
    assert state.state == (FRESH if now.astimezone(EASTERN).weekday() == 6 else RESTING)
    assert state.next_batch == eastern(2026, 9, 27, 20, 0)


def test_arxiv_on_friday_says_no_batch_is_expected() -> None:
    state = freshness("arxiv-rss", ARXIV_WEEK, eastern(2026, 9, 25, 12, 0))
    assert state.state == RESTING and "no batch is expected today" in state.why


def test_an_arxiv_holiday_is_resting_and_the_next_batch_is_after_it() -> None:
    assert date(2025, 11, 27) in shipped_arxiv_holidays()  # Thanksgiving, as arXiv lists it
    week = [brought(eastern(2025, 11, day, 20, 30)) for day in (23, 24, 25, 26)]  # Sunday to Wednesday
    on_the_day = freshness("arxiv-rss", week, eastern(2025, 11, 27, 22, 0))
    day_after = freshness("arxiv-rss", week, eastern(2025, 11, 28, 9, 0))
    assert on_the_day.state == RESTING and day_after.state == RESTING
    assert day_after.next_batch == eastern(2025, 11, 30, 20, 0)


def test_a_holiday_given_in_the_settings_counts_like_a_shipped_one() -> None:
    """2031, a year no shipped list will hold for a long time."""
    week = [brought(eastern(2031, 12, day, 20, 30)) for day in (21, 22, 23)]  # Sunday to Tuesday
    christmas = eastern(2031, 12, 25, 9, 0)  # Wednesday 24 December's batch is due by then
    assert freshness("arxiv-rss", week, christmas).state == LATE
    assert freshness("arxiv-rss", week, christmas, extra_holidays=[date(2031, 12, 24)]).state == FRESH


def test_an_arxiv_batch_missing_past_its_grace_is_late_and_named() -> None:
    monday = ARXIV_WEEK[:2]  # Sunday's and Monday's batches came, Tuesday's did not
    before_grace = freshness("arxiv-rss", monday, eastern(2026, 9, 22, 23, 30))
    after_grace = freshness("arxiv-rss", monday, eastern(2026, 9, 23, 1, 0))
    assert before_grace.state == FRESH
    assert after_grace.state == LATE and after_grace.due == eastern(2026, 9, 22, 20, 0)
    assert "the batch due Tue 22 Sep 20:00 EDT has not arrived" in after_grace.why


def test_a_fetch_after_the_grace_serving_mondays_batch_again_is_stale() -> None:
    fetches = [*ARXIV_WEEK[:2], served_again(eastern(2026, 9, 23, 0, 30))]
    state = freshness("arxiv-rss", fetches, eastern(2026, 9, 23, 1, 0))
    assert state.state == STALE and state.missing == 1
    assert "served the previous batch again (4 items, none new)" in state.why


def test_a_fetch_within_the_grace_may_show_the_previous_batch_the_source_is_only_late() -> None:
    """rss.arxiv.org brings Tuesday's 20:00 batch by midnight: at 20:30 the old one is no news."""
    fetches = [*ARXIV_WEEK[:2], served_again(eastern(2026, 9, 22, 20, 30))]
    assert freshness("arxiv-rss", fetches, eastern(2026, 9, 23, 1, 0)).state == LATE


def test_a_source_that_missed_two_batches_counts_them() -> None:
    state = freshness("arxiv-rss", ARXIV_WEEK[:1], eastern(2026, 9, 23, 1, 0))  # only Sunday's came
    assert state.state == LATE and state.missing == 2


def test_what_a_source_did_after_the_moment_asked_about_does_not_count() -> None:
    later = freshness("arxiv-rss", ARXIV_WEEK, eastern(2026, 9, 23, 1, 0), last_new=ARXIV_WEEK[-1].started)
    assert later.state == FRESH and later.last_new == ARXIV_WEEK[2].started


def test_an_empty_feed_or_a_304_where_a_batch_was_due_is_stale() -> None:
    now = eastern(2026, 9, 23, 1, 0)
    empty = Fetch(eastern(2026, 9, 23, 0, 30), "ok", 0, 0)
    unchanged = Fetch(eastern(2026, 9, 23, 0, 30), "not-modified", 0, 0)
    assert "served an empty listing" in freshness("arxiv-rss", [*ARXIV_WEEK[:2], empty], now).why
    assert "304 Not Modified" in freshness("arxiv-rss", [*ARXIV_WEEK[:2], unchanged], now).why


def test_an_empty_hugging_face_list_for_today_is_late_not_stale() -> None:
    """Its date-addressed list fills through the day: empty at first is lateness, not a re-run."""
    friday = [brought(datetime(2026, 9, 25, 3, tzinfo=UTC))]
    monday_empty = Fetch(datetime(2026, 9, 28, 8, tzinfo=UTC), "ok", 0, 0)
    state = freshness(
        "hf-daily", [*friday, monday_empty], datetime(2026, 9, 28, 10, tzinfo=UTC), date_addressed=True
    )
    assert state.state == LATE
    weekend = freshness("hf-daily", friday, datetime(2026, 9, 26, 12, tzinfo=UTC), date_addressed=True)
    assert weekend.state == RESTING


def test_a_failed_last_fetch_is_failing_whatever_the_calendar() -> None:
    state = freshness("arxiv-rss", ARXIV_WEEK, eastern(2026, 9, 25, 12, 0), last_error="HTTP 503")
    assert state.state == FAILING and "HTTP 503" in state.why


def weekly(weeks: int) -> list[Fetch]:
    """A feed that brings its items on Mondays at about 09:00 UTC, fetched every hour."""
    first_monday = datetime(2026, 8, 3, 9, 10, tzinfo=UTC)
    return [brought(first_monday + timedelta(weeks=week, minutes=7 * week)) for week in range(weeks)]


@pytest.mark.parametrize("offset", range(1, 7), ids=["tue", "wed", "thu", "fri", "sat", "sun"])
def test_a_weekly_feed_is_not_late_on_the_other_six_days(offset: int) -> None:
    fetches = [*weekly(6), brought(datetime(2026, 8, 20, 15, tzinfo=UTC))]  # and once on a Thursday
    last_monday = datetime(2026, 9, 7, 12, tzinfo=UTC)
    state = freshness("feed", fetches, last_monday + timedelta(days=offset))
    assert state.state == RESTING, state


def test_a_weekly_feed_missing_its_monday_is_late() -> None:
    state = freshness("feed", weekly(6), datetime(2026, 9, 14, 18, tzinfo=UTC))
    assert state.state == LATE and "Mon 14 Sep" in state.why
    assert learn([fetch.started for fetch in weekly(6)], datetime(2026, 9, 14, tzinfo=UTC)).weekdays == {0}


def test_a_new_feed_is_never_late_while_its_rhythm_is_learned() -> None:
    state = freshness("feed", weekly(2), datetime(2026, 8, 31, 18, tzinfo=UTC))
    assert state.state == FRESH and "learning" in state.why and state.next_batch is None


@given(
    st.lists(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)), max_size=60),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)),
)
def test_any_feed_history_gives_a_schedule_whose_due_batch_is_before_now(
    arrivals: list[datetime], now: datetime
) -> None:
    arrivals = [moment.replace(tzinfo=UTC) for moment in arrivals]
    now = now.replace(tzinfo=UTC)
    schedule = schedule_for("feed", arrivals, now)
    due, coming = schedule.last_due(now), schedule.next_batch(now)
    assert due is None or due + schedule.grace <= now
    assert coming is None or coming > now


def test_arxiv_holidays_come_comma_separated_from_the_environment(monkeypatch) -> None:
    from digest.config import Settings

    monkeypatch.setenv("DIGEST_ARXIV_HOLIDAYS", "2026-12-24, 2026-12-31")
    assert Settings().arxiv_holidays == [date(2026, 12, 24), date(2026, 12, 31)]


def test_a_quiet_day_names_every_resting_schedule_and_the_soonest_batch_in_the_readers_zone() -> None:
    standing = Standing(
        resting=(
            Rest("ml", "arXiv: Sunday to Thursday at 20:00 US Eastern", eastern(2026, 9, 27, 20, 0)),
            Rest("hf", "Hugging Face: weekdays", datetime(2026, 9, 28, 0, 0, tzinfo=UTC)),
        )
    )
    assert standing.quiet("Asia/Tokyo") == (
        "No new papers since your last digest: none of the listings publishes today (ml: arXiv: Sunday "
        "to Thursday at 20:00 US Eastern; hf: Hugging Face: weekdays). "
        "The next listing is due Mon 28 Sep at 09:00."
    )
    assert Standing().quiet("UTC") == ""


def test_only_a_source_missing_just_its_latest_batch_makes_digests_wait() -> None:
    late = Behind("ml", eastern(2026, 9, 22, 20, 0), "America/New_York")
    stopped = Behind("old", eastern(2026, 9, 1, 20, 0), "America/New_York", wait=False)
    assert Standing((late, stopped)).waiting and not Standing((stopped,)).waiting
    assert len(Standing((late, stopped)).notes(eastern(2026, 9, 23, 6, 0), "UTC")) == 2
