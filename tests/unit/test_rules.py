"""The pure rules of sending, with no database: who is due, which papers a digest covers, where the
next one resumes, how long a failure waits, and which status moves exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from digest.deliver.outcome import after_failure, counts_as_bounce
from digest.model.ledger import (
    CLAIMABLE,
    MAX_RETRY_DELAY,
    MOVES,
    WINDOW_OVERLAP,
    DeliveryStatus,
    allowed,
    resume_point,
    retry_delay,
    window_for,
)
from digest.model.subscriber import SubscriberStatus, due_date, next_digest_at, status_change

S = DeliveryStatus
TUESDAY = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # a Tuesday, 08:00 UTC


@dataclass
class Schedule:
    timezone: str = "UTC"
    send_hour: int = 7
    frequency: str = "daily"
    weekly_day: str | None = None


@dataclass
class Retry:
    retry_delay: float = 300.0
    retry_deadline: float = 24.0


# --- who is due -------------------------------------------------------------------------------


def test_a_daily_subscriber_is_due_from_their_local_send_hour_on_their_local_date() -> None:
    new_york = Schedule(timezone="America/New_York", send_hour=8)
    assert due_date(new_york, datetime(2026, 11, 24, 12, 59, tzinfo=UTC)) is None  # 07:59 there
    assert due_date(new_york, datetime(2026, 11, 24, 13, 0, tzinfo=UTC)) == date(2026, 11, 24)
    tokyo = Schedule(timezone="Asia/Tokyo", send_hour=7)
    assert due_date(tokyo, datetime(2026, 11, 24, 23, 0, tzinfo=UTC)) == date(2026, 11, 25)  # 08:00 there


def test_a_weekly_subscriber_is_due_on_their_day_or_later_in_the_week_after_missing_it() -> None:
    weekly = Schedule(frequency="weekly", weekly_day="tue")
    assert due_date(weekly, TUESDAY) == date(2026, 11, 24)
    wednesday = TUESDAY + timedelta(days=1)
    assert due_date(weekly, wednesday, last=date(2026, 11, 17)) == date(2026, 11, 25)  # Tuesday missed
    assert due_date(weekly, wednesday, last=date(2026, 11, 24)) is None  # Tuesday's went out
    assert due_date(weekly, wednesday) is None  # nothing yet: they wait for their day


def test_the_next_digest_is_at_the_next_send_hour_that_the_due_rule_takes() -> None:
    paris = Schedule(timezone="Europe/Paris", send_hour=7)  # TUESDAY is 09:00 there
    sent_today = next_digest_at(paris, TUESDAY, last=date(2026, 11, 24))
    assert sent_today.isoformat() == "2026-11-25T07:00:00+01:00"
    assert next_digest_at(paris, TUESDAY, last=date(2026, 11, 23)) == TUESDAY  # due now
    early = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # 06:00 there
    assert next_digest_at(paris, early).isoformat() == "2026-11-24T07:00:00+01:00"
    weekly = Schedule(frequency="weekly", weekly_day="mon", send_hour=7)
    assert next_digest_at(weekly, TUESDAY).isoformat() == "2026-11-30T07:00:00+00:00"
    assert next_digest_at(weekly, TUESDAY, last=date(2026, 11, 16)) == TUESDAY  # Monday's was missed
    spring = Schedule(timezone="Europe/Paris", send_hour=7)  # the night clocks go forward
    saturday = datetime(2027, 3, 27, 8, 0, tzinfo=UTC)
    assert next_digest_at(spring, saturday, last=date(2027, 3, 27)).isoformat() == "2027-03-28T07:00:00+02:00"
    skipped_hour = Schedule(timezone="Europe/Paris", send_hour=2)  # 02:00 to 03:00 never happens then
    assert (
        next_digest_at(skipped_hour, saturday, last=date(2027, 3, 27)).isoformat()
        == "2027-03-28T03:00:00+02:00"
    )


def test_an_unknown_time_zone_is_an_error_not_a_guess() -> None:
    with pytest.raises((KeyError, ValueError)):
        due_date(Schedule(timezone="Mars/Base"), TUESDAY)


# --- which papers a digest covers ---------------------------------------------------------------


def test_a_first_digest_covers_the_last_day_or_since_subscribing_whichever_is_longer() -> None:
    until = TUESDAY - timedelta(minutes=5)
    fresh = window_for(
        TUESDAY, until, "daily", None, catch_up_days=7, subscribed_at=TUESDAY - timedelta(hours=1)
    )
    assert (fresh.after, fresh.until) == (TUESDAY - timedelta(days=1), until)
    older = window_for(
        TUESDAY, until, "daily", None, catch_up_days=7, subscribed_at=TUESDAY - timedelta(days=3)
    )
    assert older.after == TUESDAY - timedelta(days=3)
    weekly = window_for(TUESDAY, until, "weekly", None, catch_up_days=7)
    assert weekly.after == TUESDAY - timedelta(days=7)


def test_a_later_digest_starts_where_the_last_stopped_less_an_overlap_and_never_too_far_back() -> None:
    previous = TUESDAY - timedelta(days=1)
    window = window_for(TUESDAY, TUESDAY, "daily", previous, catch_up_days=7)
    assert window.after == previous - WINDOW_OVERLAP
    long_ago = TUESDAY - timedelta(days=30)
    capped = window_for(TUESDAY, TUESDAY, "daily", long_ago, catch_up_days=7)
    assert capped.after == TUESDAY - timedelta(days=1) - timedelta(days=7)


# --- where the next digest resumes --------------------------------------------------------------


def test_the_next_digest_resumes_after_the_latest_one_sent_or_skipped() -> None:
    monday, sunday = datetime(2026, 11, 23, 8, tzinfo=UTC), datetime(2026, 11, 22, 8, tzinfo=UTC)
    history = [
        (date(2026, 11, 22), "sent", sunday - timedelta(days=1), sunday),
        (date(2026, 11, 23), "skipped", sunday, monday),
    ]
    assert resume_point(history) == monday
    assert resume_point([]) is None


def test_papers_of_a_digest_that_failed_for_good_come_again_in_the_next() -> None:
    monday, sunday = datetime(2026, 11, 23, 8, tzinfo=UTC), datetime(2026, 11, 22, 8, tzinfo=UTC)
    history = [
        (date(2026, 11, 22), "sent", sunday - timedelta(days=1), sunday),
        (date(2026, 11, 23), "failed-permanent", sunday, monday),
    ]
    assert resume_point(history) == sunday  # from where the failed one started
    only_failed = [(date(2026, 11, 23), "failed-permanent", sunday, monday)]
    assert resume_point(only_failed) == sunday


# --- how long a failure waits -------------------------------------------------------------------


def test_retry_delays_double_from_the_first_up_to_an_hour_with_ten_percent_jitter() -> None:
    assert [retry_delay(300, attempts, jitter=1.0) for attempts in (1, 2, 3, 4, 5)] == [
        300,
        600,
        1200,
        2400,
        MAX_RETRY_DELAY,
    ]
    spread = {round(retry_delay(300, 1), 3) for _ in range(200)}
    assert len(spread) > 1 and all(270 <= delay <= 330 for delay in spread)


def test_a_temporary_failure_is_retried_until_its_deadline_then_given_up() -> None:
    later = after_failure(
        "451 busy",
        permanent=False,
        attempts=1,
        give_up_at=TUESDAY + timedelta(hours=1),
        now=TUESDAY,
        options=Retry(),
    )
    assert later.status == S.FAILED_TEMPORARY and later.error == "451 busy"
    assert TUESDAY + timedelta(seconds=270) <= later.retry_at <= TUESDAY + timedelta(seconds=330)
    over = after_failure(
        "451 busy", permanent=False, attempts=5, give_up_at=TUESDAY, now=TUESDAY, options=Retry()
    )
    assert over.status == S.FAILED_PERMANENT and over.retry_at is None
    assert over.error == "gave up after 24 h of retries: 451 busy"


def test_a_permanent_refusal_fails_at_once_and_counts_as_a_bounce_when_the_server_gave_a_code() -> None:
    refused = after_failure(
        "550 no such user", permanent=True, attempts=1, give_up_at=None, now=TUESDAY, options=Retry()
    )
    assert (refused.status, refused.retry_at) == (S.FAILED_PERMANENT, None)
    assert (
        counts_as_bounce(True, 550) and not counts_as_bounce(True, None) and not counts_as_bounce(False, 451)
    )


# --- which status moves exist -------------------------------------------------------------------


def test_a_sent_skipped_or_superseded_digest_never_moves_again() -> None:
    for final in (S.SENT, S.SKIPPED, S.SUPERSEDED):
        assert not any(allowed(final, target) for target in DeliveryStatus)


def test_only_a_claimed_row_is_sent_and_only_a_failed_one_is_retried() -> None:
    assert allowed(S.SENDING, S.SENT) and not allowed(S.PENDING, S.SENT)
    assert MOVES["retry"].sources == {S.FAILED_TEMPORARY, S.FAILED_PERMANENT}
    assert set(CLAIMABLE) == MOVES["claim"].sources == {S.PENDING, S.FAILED_TEMPORARY, S.SENDING}
    assert MOVES["supersede"].sources == {S.PENDING, S.FAILED_TEMPORARY}  # never one being sent


def test_making_a_bounced_subscriber_active_again_starts_a_clean_slate() -> None:
    confirmed = TUESDAY - timedelta(days=30)
    back = status_change(SubscriberStatus.BOUNCED, SubscriberStatus.ACTIVE, confirmed, TUESDAY)
    assert back == {"status": "active", "updated_at": TUESDAY, "hard_bounces": 0, "unsubscribed_at": None}
    paused = status_change(SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.PAUSED, confirmed, TUESDAY)
    assert paused["hard_bounces"] == 0 and paused["unsubscribed_at"] is None


def test_unsubscribing_stamps_when_once_and_confirming_stamps_the_confirmation() -> None:
    left = status_change(SubscriberStatus.ACTIVE, SubscriberStatus.UNSUBSCRIBED, TUESDAY, TUESDAY)
    assert left["unsubscribed_at"] == TUESDAY and "hard_bounces" not in left
    again = status_change(SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.UNSUBSCRIBED, TUESDAY, TUESDAY)
    assert "unsubscribed_at" not in again  # the first time stays
    first = status_change(SubscriberStatus.PENDING, SubscriberStatus.ACTIVE, None, TUESDAY)
    assert first["confirmed_at"] == TUESDAY
    edited = status_change(
        SubscriberStatus.PAUSED, SubscriberStatus.ACTIVE, TUESDAY - timedelta(days=9), TUESDAY
    )
    assert "confirmed_at" not in edited  # a resume is no confirmation
    confirming = status_change(
        SubscriberStatus.PENDING, SubscriberStatus.ACTIVE, None, TUESDAY, confirming=True
    )
    assert confirming["hard_bounces"] == 0
