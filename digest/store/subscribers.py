"""Subscribers: selects and writes, given a Session. What a change of status does besides is the
rule in digest.model.subscriber; digest.usecases.subscribers is the one path that changes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.model.subscriber import SubscriberStatus
from digest.store.models import Delivery, Subscriber, Token

DUE_COLUMNS = ("id", "email", "timezone", "send_hour", "frequency", "weekly_day")  # what planning reads


def subscriber_by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email == email))


def subscriber_by_id(session: Session, subscriber_id: int) -> Subscriber:
    return session.get_one(Subscriber, subscriber_id)


def all_subscribers(session: Session, status: str | None = None) -> list[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.email)
    if status:
        query = query.where(Subscriber.status == status)
    return list(session.scalars(query))


def active_schedules(session: Session, only: str | None = None) -> Sequence[Any]:
    """The DUE_COLUMNS of every active subscriber (or only the one with address ``only``), by email."""
    columns = [getattr(Subscriber, name) for name in DUE_COLUMNS]
    query = select(*columns).where(Subscriber.status == SubscriberStatus.ACTIVE).order_by(Subscriber.email)
    if only is not None:
        query = query.where(Subscriber.email == only)
    return session.execute(query).all()


def active_interests(session: Session) -> list[str]:
    """The distinct interest texts of the active subscribers."""
    query = select(Subscriber.interests).where(Subscriber.status == SubscriberStatus.ACTIVE).distinct()
    return list(session.scalars(query))


def new_subscriber(email: str, now: datetime, values: dict[str, Any]) -> Subscriber:
    """A subscriber row not yet added to a session."""
    return Subscriber(email=email, created_at=now, updated_at=now, **values)


def add(session: Session, subscriber: Subscriber) -> Subscriber:
    session.add(subscriber)
    return subscriber


def add_pending(session: Session, email: str, values: dict[str, Any], now: datetime) -> Subscriber:
    """Add a pending subscriber, flushed; if the same address was added elsewhere at the same moment,
    that row instead (the session is rolled back first)."""
    subscriber = Subscriber(
        email=email, status=SubscriberStatus.PENDING, created_at=now, updated_at=now, **values
    )
    session.add(subscriber)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        found = subscriber_by_email(session, email)
        assert found is not None
        return found
    return subscriber


def set_values(subscriber: Subscriber, values: dict[str, Any]) -> None:
    """Set columns on a loaded row (written at the session's next flush)."""
    for name, value in values.items():
        setattr(subscriber, name, value)


def remove(session: Session, subscriber: Subscriber) -> None:
    """Delete a subscriber and, with them, their ledger rows and link tokens."""
    session.delete(subscriber)


def lock(session: Session, subscriber_id: int) -> None:
    """Take the subscriber's row for this transaction (on SQLite, the write lock)."""
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .values(updated_at=Subscriber.updated_at)
        .execution_options(synchronize_session=False)
    )


def record_bounce(session: Session, subscriber_id: int, most: int, now: datetime) -> bool:
    """Count a hard bounce, and suspend an active subscriber who has ``most`` or more; True when
    suspended now. Single statements: another sender, or the subscriber unsubscribing, may change
    the row meanwhile."""
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .values(hard_bounces=Subscriber.hard_bounces + 1, bounced_at=now)
        .execution_options(synchronize_session=False)
    )
    suspended = session.execute(
        update(Subscriber)
        .where(
            Subscriber.id == subscriber_id,
            Subscriber.status == SubscriberStatus.ACTIVE,
            Subscriber.hard_bounces >= most,
        )
        .values(status=SubscriberStatus.BOUNCED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(suspended.rowcount)


def clear_bounces(session: Session, subscriber_id: int) -> None:
    """A message was accepted: hard bounces in a row start from zero again."""
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.hard_bounces > 0)
        .values(hard_bounces=0)
        .execution_options(synchronize_session=False)
    )


def delete_unconfirmed(session: Session, now: datetime) -> int:
    """Delete sign-ups never confirmed: pending, every confirmation link expired, no digest."""
    confirms = select(Token.subscriber_id).where(Token.purpose == "confirm")
    live = confirms.where(or_(Token.expires_at.is_(None), Token.expires_at >= now))
    return session.execute(
        delete(Subscriber).where(
            Subscriber.status == SubscriberStatus.PENDING,
            Subscriber.confirmed_at.is_(None),
            Subscriber.id.in_(confirms),
            Subscriber.id.not_in(live),
            ~exists().where(Delivery.subscriber_id == Subscriber.id),
        )
    ).rowcount
