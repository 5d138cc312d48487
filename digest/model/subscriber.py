"""A subscriber's statuses, what a change of status does besides, and when their digest is due."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol

from digest.model.time import zone


class SubscriberStatus(StrEnum):
    """Where a subscriber stands; only ``active`` ones get digests."""

    PENDING = "pending"  # signed up, address not confirmed yet
    ACTIVE = "active"
    PAUSED = "paused"  # nothing is sent until they resume
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"  # suspended after max_hard_bounces permanent failures in a row


STATUSES = tuple(status.value for status in SubscriberStatus)
FREQUENCIES = ("daily", "weekly")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEK = 7
# Statuses left by subscribing again: the move clears the unsubscription and the bounce count.
LAPSED = frozenset({SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED})


def status_change(
    current: str, target: str, confirmed_at: datetime | None, now: datetime, *, confirming: bool = False
) -> dict[str, Any]:
    """The columns to set when a subscriber goes from ``current`` to ``target`` (the same status
    included): the one rule for the command line, the web front and the sender alike.

    Becoming active stamps the confirmation (again when ``confirming`` an address), leaving
    unsubscribed or bounced for active or paused starts with a clean slate (no unsubscription time,
    no hard bounces counted), as does confirming, and unsubscribing stamps when.
    """
    changes: dict[str, Any] = {"status": SubscriberStatus(target).value, "updated_at": now}
    if target == SubscriberStatus.ACTIVE and (confirming or confirmed_at is None):
        changes["confirmed_at"] = now
    reactivated = current in LAPSED and target in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED)
    if reactivated or confirming:
        changes["hard_bounces"] = 0
    if target == SubscriberStatus.UNSUBSCRIBED:
        if current != SubscriberStatus.UNSUBSCRIBED:
            changes["unsubscribed_at"] = now
    else:
        changes["unsubscribed_at"] = None
    return changes


class Schedule(Protocol):
    """What the due rule reads of a subscriber."""

    timezone: str
    send_hour: int
    frequency: str
    weekly_day: str | None


def due_date(subscriber: Schedule, now: datetime, last: date | None = None) -> date | None:
    """The local date of ``subscriber`` when their send hour has passed there; for a weekly
    subscriber only on their day, or later in the week when that day's digest was missed (``last``,
    their latest digest date, is a week old or more). Else None. Raises ZoneInfoNotFoundError
    (a KeyError) or ValueError for an unknown time zone."""
    local = now.astimezone(zone(subscriber.timezone))
    if local.hour < subscriber.send_hour:
        return None
    today = local.date()
    if subscriber.frequency != "weekly" or DAYS[local.weekday()] == subscriber.weekly_day:
        return today
    missed = last is not None and (today - last).days >= WEEK
    return today if missed else None


def due_at(subscriber: Schedule, day: date) -> datetime:
    """When ``subscriber``'s digest of their local date ``day`` falls due: its send hour there.
    Through UTC, a send hour the clocks skip that night (02:00 in spring) reads as it happens.
    Raises as ``due_date`` does."""
    here = zone(subscriber.timezone)
    return datetime.combine(day, time(subscriber.send_hour), here).astimezone(UTC)


def last_call(subscriber: Schedule, day: date) -> datetime:
    """An hour before the end of ``subscriber``'s local date ``day``: a digest held for a late
    source is planned by then at the latest, so a send run before midnight still finds it due."""
    here = zone(subscriber.timezone)
    return datetime.combine(day + timedelta(days=1), time(0), here).astimezone(UTC) - timedelta(hours=1)


def next_digest_at(subscriber: Schedule, now: datetime, last: date | None = None) -> datetime | None:
    """When ``subscriber``'s next digest is due by the due rule, in their time zone: ``now`` when
    one is due already (their latest digest, ``last``, is of an earlier day), else the send hour of
    the next day that takes one. Raises as ``due_date`` does for an unknown time zone."""
    here = zone(subscriber.timezone)
    local = now.astimezone(here)
    for ahead in range(WEEK + 1):
        day = local.date() + timedelta(days=ahead)
        if last is not None and day <= last:
            continue
        at_hour = due_at(subscriber, day).astimezone(here)
        moment = max(at_hour, local)
        if due_date(subscriber, moment, last) == day:
            return moment
    return None
