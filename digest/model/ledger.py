"""The ledger's rules: the statuses of a digest and the moves between them, the window of papers a
digest covers, where the next one resumes, and how long a failed one waits. No I/O.

One ledger row per (subscriber, digest date). A sender claims a row (``sending``, under a lease),
stores the papers it chose, hands the message to the transport and records what became of it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

MAX_RETRY_DELAY = 3600.0
WINDOW_OVERLAP = timedelta(hours=1)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due, not claimed yet
    SENDING = "sending"  # claimed by a sender until its lease runs out
    SENT = "sent"
    SKIPPED = "skipped"  # nothing to send (no match, or the subscriber left)
    SUPERSEDED = "superseded"  # never went out; a later digest covers its papers
    FAILED_TEMPORARY = "failed-temporary"  # retried from next_attempt_at until give_up_at
    FAILED_PERMANENT = "failed-permanent"


S = DeliveryStatus
STATUSES = tuple(status.value for status in DeliveryStatus)


@dataclass(frozen=True, slots=True)
class Move:
    """A change of status: from any of ``sources`` to ``target``."""

    sources: frozenset[DeliveryStatus]
    target: DeliveryStatus


# Every move a row can make, by name; no code changes a status any other way.
MOVES = {
    # a sender takes a row: pending, due for a retry, or left sending by one whose lease ran out
    "claim": Move(frozenset({S.PENDING, S.FAILED_TEMPORARY, S.SENDING}), S.SENDING),
    # a newer digest of the same subscriber covers what this one would have held
    "supersede": Move(frozenset({S.PENDING, S.FAILED_TEMPORARY}), S.SUPERSEDED),
    "sent": Move(frozenset({S.SENDING}), S.SENT),
    "skip": Move(frozenset({S.SENDING}), S.SKIPPED),
    # a temporary failure, a sender giving rows back, or a row waiting for the subscriber's
    # earlier digest: tried again later
    "fail-temporary": Move(frozenset({S.SENDING}), S.FAILED_TEMPORARY),
    "fail-permanent": Move(frozenset({S.SENDING}), S.FAILED_PERMANENT),
    # `digest deliveries retry`: a failed row is due again
    "retry": Move(frozenset({S.FAILED_TEMPORARY, S.FAILED_PERMANENT}), S.FAILED_TEMPORARY),
}
# What senders claim, in this order in the partial index that finds them (see store.models).
CLAIMABLE = (S.PENDING, S.FAILED_TEMPORARY, S.SENDING)
assert frozenset(CLAIMABLE) == MOVES["claim"].sources
# A row in one of these keeps its papers for good: the next digest starts after them.
COVERED = frozenset({S.SENT, S.SKIPPED, S.SENDING})


def allowed(current: str, target: str) -> bool:
    """Whether some move takes a row from ``current`` to ``target``."""
    return any(current in move.sources and move.target == target for move in MOVES.values())


def retry_delay(first: float, attempts: int, jitter: float | None = None) -> float:
    """Seconds before the next try after ``attempts`` tries: ``first`` doubled per attempt, at most an
    hour, times ``jitter`` (default: random, 0.9 to 1.1, so retries spread out)."""
    base = min(MAX_RETRY_DELAY, first * 2 ** max(0, attempts - 1))
    return base * (random.uniform(0.9, 1.1) if jitter is None else jitter)


@dataclass(frozen=True, slots=True)
class Window:
    """Which stored papers a digest may hold: those first seen in (after, until]."""

    after: datetime
    until: datetime


def window_for(
    at: datetime,
    until: datetime,
    frequency: str,
    previous_until: datetime | None,
    catch_up_days: int,
    subscribed_at: datetime | None = None,
) -> Window:
    """The window of a digest made at ``at``: papers first seen since the previous digest's (less an
    overlap, so a paper stored late, or stamped by a host whose clock is behind, is not missed; papers
    already sent are left out anyway); for a first digest, since subscribing or in the last day (week,
    for weekly), whichever is longer. Never more than ``catch_up_days`` past the usual period back, so
    a digest after downtime covers what was missed once. ``until`` is the newest first-seen time then."""
    period = timedelta(days=7 if frequency == "weekly" else 1)
    catch_up = timedelta(days=catch_up_days)
    if previous_until is not None:
        floor, start = at - period - catch_up, previous_until - WINDOW_OVERLAP
    else:
        floor = at - max(catch_up, period)
        start = at - period if subscribed_at is None else min(at - period, subscribed_at)
    return Window(max(floor, start), until)


def resume_point(history: Iterable[tuple[date, str, datetime | None, datetime | None]]) -> datetime | None:
    """Where a subscriber's next digest starts, from their earlier digests' (date, status,
    papers_after, papers_until), oldest first: the ``papers_until`` of the latest one that was sent,
    skipped or is being sent, unless a later one failed for good, whose papers the next digest then
    covers again (from that one's ``papers_after``). None when no digest stored its papers."""
    resume: datetime | None = None
    for _day, status, after, until in history:
        if status in COVERED:
            resume = until
        elif status == S.FAILED_PERMANENT and after is not None:
            resume = after if resume is None else min(resume, after)
    return resume
