"""Locks that keep processes sharing one database from doing the same work at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from digest.store.engine import Database

PLAN_LOCK = 0x64696765_706C616E  # "digeplan": the PostgreSQL advisory lock planning takes
SOURCE_LOCK = 0x64696765  # "dige": the first half of each source's advisory lock key


def lock_for_planning(session: Session) -> None:
    """Hold planning to this transaction: senders started at once plan one after another, so the
    next finds the rows the first added. An advisory lock on PostgreSQL; on SQLite a write that
    changes nothing, which takes the write lock until the commit."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLAN_LOCK})
    elif dialect == "sqlite":
        session.execute(text("DELETE FROM deliveries WHERE 0"))


@contextmanager
def source_lock(database: Database, source_id: int) -> Iterator[bool]:
    """Try to become the one process fetching ``source_id``; yields whether it did. On PostgreSQL a
    session advisory lock, held until the block ends; on SQLite (one scheduler) always True."""
    if database.dialect != "postgresql":
        yield True
        return
    with database.engine.connect() as connection:
        got = connection.scalar(
            text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": SOURCE_LOCK, "b": source_id}
        )
        connection.commit()
        try:
            yield bool(got)
        finally:
            if got:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:a, :b)"), {"a": SOURCE_LOCK, "b": source_id}
                )
                connection.commit()
