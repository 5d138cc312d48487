"""Incoming messages handled (``inbound_messages``): selects and writes, given a Session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store.models import InboundMessage


def handled_before(session: Session, key: str) -> InboundMessage | None:
    """The row of the message ``key`` when it was handled already."""
    return session.scalar(select(InboundMessage).where(InboundMessage.key == key))


def record(
    session: Session, key: str, sender: str | None, role: str, outcome: str, detail: str, now: datetime
) -> InboundMessage | None:
    """Add the row of a message handled now, flushed. None when a row of ``key`` was added
    elsewhere at this moment: the session is rolled back, undoing what it did for the message."""
    row = InboundMessage(
        key=key, received_at=now, sender=sender, role=role, outcome=outcome, detail=detail[:2000]
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return None
    return row


def answers_since(session: Session, sender: str, since: datetime) -> int:
    """Answers by mail that went to ``sender`` after ``since``."""
    return session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(InboundMessage.sender == sender, InboundMessage.answered_at > since)
    )


def mark_answered(session: Session, row_id: int, now: datetime) -> None:
    session.execute(update(InboundMessage).where(InboundMessage.id == row_id).values(answered_at=now))
