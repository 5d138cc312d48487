"""Locks that keep processes sharing one database from doing the same work at once."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.orm import Session

from digest.store.engine import Database

PLAN_LOCK = 0x64696765_706C616E  # "digeplan": the PostgreSQL advisory lock planning takes
SOURCE_LOCK = 0x64696765  # "dige": the first half of each source's advisory lock key


class SchedulerLockHeld(Exception):
    """Another process holds a SQLite database's scheduler lock; ``holder`` is its pid, as it wrote."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def take_scheduler_lock(database_file: Path) -> IO[str]:
    """Become the one scheduler of a SQLite database: an exclusive lock on the file beside it
    (DATABASE.scheduler.lock), holding this pid, kept until the returned file is closed (or the
    process ends). Raises SchedulerLockHeld naming the process that holds it."""
    handle = Path(f"{database_file}.scheduler.lock").open("a+")  # noqa: SIM115 - held open: it is the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise SchedulerLockHeld(holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def release_scheduler_lock(handle: IO[str]) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


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
