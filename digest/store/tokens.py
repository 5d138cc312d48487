"""Link tokens (only their SHA-256 is stored): selects and writes, given a Session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from digest.store.bulk import chunked
from digest.store.models import Token

NOTICE_PURPOSES = ("confirm", "manage")


def add(
    session: Session,
    token_hash: str,
    purpose: str,
    subscriber_id: int,
    now: datetime,
    expires_at: datetime | None,
    payload: dict[str, Any] | None = None,
) -> None:
    session.add(
        Token(
            token_hash=token_hash,
            purpose=purpose,
            subscriber_id=subscriber_id,
            created_at=now,
            expires_at=expires_at,
            payload=payload,
        )
    )


def insert_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert token rows (dicts of Token's columns) in one statement."""
    if rows:
        session.connection().execute(insert(Token.__table__), list(rows))


def by_hash(session: Session, token_hash: str) -> Token | None:
    return session.scalar(select(Token).where(Token.token_hash == token_hash))


def use(session: Session, token_id: int, now: datetime) -> bool:
    """Mark a token used; False when it was used already (by this or another request)."""
    used = session.execute(
        update(Token)
        .where(Token.id == token_id, Token.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(used.rowcount)


def notices_since(session: Session, subscriber_id: int, since: datetime) -> int:
    """Confirmation and manage mails sent to a subscriber from the web front since ``since``."""
    return session.scalar(
        select(func.count())
        .select_from(Token)
        .where(
            Token.subscriber_id == subscriber_id,
            Token.purpose.in_(NOTICE_PURPOSES),
            Token.delivery_id.is_(None),
            Token.created_at > since,
        )
    )


def with_live_confirmation(session: Session, subscriber_ids: Sequence[int], now: datetime) -> set[int]:
    """Those of ``subscriber_ids`` holding an unused confirmation token that has not expired."""
    linked: set[int] = set()
    for chunk in chunked(subscriber_ids):
        linked.update(
            session.scalars(
                select(Token.subscriber_id).where(
                    Token.subscriber_id.in_(chunk),
                    Token.purpose == "confirm",
                    Token.used_at.is_(None),
                    Token.expires_at > now,
                )
            )
        )
    return linked


def discard(session: Session, token_hashes: Sequence[str]) -> None:
    """Delete the tokens of ``token_hashes`` (links whose mail never went)."""
    for chunk in chunked(token_hashes):
        session.execute(delete(Token).where(Token.token_hash.in_(chunk)))


def delete_expired(session: Session, now: datetime, link_days: int) -> int:
    """Delete tokens past their expiry (those stored without one: ``link_days`` after they were made)."""
    return session.execute(
        delete(Token).where(
            or_(
                Token.expires_at < now,
                Token.expires_at.is_(None) & (Token.created_at < now - timedelta(days=link_days)),
            )
        )
    ).rowcount
