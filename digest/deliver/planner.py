"""Who is due: the one planner, for the real send and its dry run alike."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from digest.model.subscriber import due_at, due_date, last_call
from digest.store import ledger
from digest.store import subscribers as stored_subscribers
from digest.store.engine import Session
from digest.store.locks import lock_for_planning

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Due:
    """A digest that is due and has no ledger row yet."""

    subscriber_id: int
    email: str
    day: date


@dataclass
class Plan:
    """What is due now, who was left out for a time zone that does not exist, and whose digest
    waits for a late source (``held``: not planned yet, so nothing of it is stored)."""

    due: list[Due] = field(default_factory=list)
    unknown_zones: list[tuple[str, str]] = field(default_factory=list)  # (email, zone)
    held: list[Due] = field(default_factory=list)


def due(session: Session, now: datetime, only: str | None = None, hold: timedelta = timedelta(0)) -> Plan:
    """Every active subscriber (or only the one with address ``only``) whose digest for their local
    date is due at ``now`` (see digest.model.subscriber.due_date) and not in the ledger yet; those
    due less than ``hold`` ago (a source is late) are ``held`` instead, but never past the last
    hour of the subscriber's day (its digest would no longer be due after midnight). Reads."""
    plan = Plan()
    schedules = stored_subscribers.active_schedules(session, only)
    weekly = [row.id for row in schedules if row.frequency == "weekly"]
    latest = ledger.latest_dates(session, weekly)
    candidates = []
    waiting: set[int] = set()
    for row in schedules:
        try:
            day = due_date(row, now, latest.get(row.id))
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            log.warning(
                "%s has an unknown time zone %r (%s); fix it with `digest subscribers edit`",
                row.email,
                row.timezone,
                exc,
            )
            plan.unknown_zones.append((row.email, row.timezone))
            continue
        if day is not None:
            candidates.append(Due(row.id, row.email, day))
            if hold and now < min(due_at(row, day) + hold, last_call(row, day)):
                waiting.add(row.id)
    if candidates:
        existing = ledger.existing_pairs(session, sorted({item.day for item in candidates}))
        fresh = [item for item in candidates if (item.subscriber_id, item.day) not in existing]
        plan.due = [item for item in fresh if item.subscriber_id not in waiting]
        plan.held = [item for item in fresh if item.subscriber_id in waiting]
    return plan


def plan(session: Session, now: datetime, only: str | None = None, hold: timedelta = timedelta(0)) -> Plan:
    """Add a pending ledger row for every digest ``due`` at ``now``, superseding the subscriber's
    older rows that never went out (one digest covers what they missed); returns what it added.
    Senders plan one at a time (digest.store.locks), so the next finds the rows the first added.
    Digests ``held`` for a late source (see ``due``) get no row yet. Commits."""
    lock_for_planning(session)
    found = due(session, now, only, hold)
    found.due.sort(key=lambda item: (item.subscriber_id, item.day))  # one lock order for every sender
    new = [(item.subscriber_id, item.day) for item in found.due]
    if new:
        ledger.add_pending(session, new, now)
        by_day: dict[date, list[int]] = {}
        for subscriber_id, day in new:
            by_day.setdefault(day, []).append(subscriber_id)
        for day, subscriber_ids in by_day.items():
            ledger.supersede_older(session, day, subscriber_ids, now)
    session.commit()  # ends the transaction, and with it the planning lock
    return found
