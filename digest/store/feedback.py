"""Feedback: selects and writes, given a Session. digest.usecases.feedback is the path that changes it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from digest.store.bulk import chunked, insert_for
from digest.store.models import Feedback, Paper


def record(session: Session, subscriber_id: int, values: dict[str, int], origin: str, now: datetime) -> None:
    """Set the subscriber's word on each paper of ``values`` (paper id -> +1 or -1), replacing any earlier."""
    for chunk in chunked(_rows(subscriber_id, values, origin, now)):
        statement = insert_for(session, Feedback)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["subscriber_id", "paper_id"],
                set_={name: getattr(statement.excluded, name) for name in ("value", "origin", "updated_at")},
            ),
            list(chunk),
        )


def add_new(
    session: Session, subscriber_id: int, paper_ids: Sequence[str], value: int, origin: str, now: datetime
) -> set[str]:
    """Give the subscriber's word ``value`` on each paper they have not rated, leaving any earlier
    word as it stands (even one given meanwhile). Returns the papers rated now."""
    added: set[str] = set()
    for chunk in chunked(_rows(subscriber_id, dict.fromkeys(paper_ids, value), origin, now)):
        statement = insert_for(session, Feedback).on_conflict_do_nothing(
            index_elements=["subscriber_id", "paper_id"]
        )
        added.update(session.scalars(statement.returning(Feedback.paper_id), list(chunk)))
    return added


def _rows(subscriber_id: int, values: dict[str, int], origin: str, now: datetime) -> list[dict[str, object]]:
    return [
        {
            "subscriber_id": subscriber_id,
            "paper_id": paper,
            "value": value,
            "origin": origin,
            "updated_at": now,
        }
        for paper, value in values.items()
    ]


def one(session: Session, subscriber_id: int, paper_id: str) -> int | None:
    """The subscriber's word on one paper (+1 or -1), None when they gave none."""
    query = select(Feedback.value).where(
        Feedback.subscriber_id == subscriber_id, Feedback.paper_id == paper_id
    )
    return session.scalar(query)


def clear(session: Session, subscriber_id: int, paper_id: str) -> bool:
    """Take back the subscriber's word on the paper; False when there was none."""
    gone = session.execute(
        delete(Feedback).where(Feedback.subscriber_id == subscriber_id, Feedback.paper_id == paper_id)
    )
    return bool(gone.rowcount)


def of_subscriber(
    session: Session, subscriber_id: int, limit: int | None = None
) -> list[tuple[Feedback, str]]:
    """The subscriber's feedback with each paper's title, newest first (the ``limit`` newest)."""
    query = (
        select(Feedback, Paper.title)
        .join(Paper, Paper.id == Feedback.paper_id)
        .where(Feedback.subscriber_id == subscriber_id)
        .order_by(Feedback.updated_at.desc(), Feedback.paper_id)
        .limit(limit)
    )
    return [(row, title) for row, title in session.execute(query)]


def count(session: Session, subscriber_id: int) -> int:
    """How many papers the subscriber rated."""
    query = select(func.count()).select_from(Feedback).where(Feedback.subscriber_id == subscriber_id)
    return session.scalar(query) or 0


def of_subscribers(session: Session, subscriber_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Each subscriber's feedback as paper id -> +1 or -1 (subscribers without any left out)."""
    found: dict[int, dict[str, int]] = {}
    columns = (Feedback.subscriber_id, Feedback.paper_id, Feedback.value)
    for chunk in chunked(subscriber_ids):
        for subscriber_id, paper_id, value in session.execute(
            select(*columns).where(Feedback.subscriber_id.in_(chunk))
        ):
            found.setdefault(subscriber_id, {})[paper_id] = value
    return found
