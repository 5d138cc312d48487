"""Sources and their fetch log: selects and writes, given a Session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from digest.store.models import FetchLog, Source


def source_by_name(session: Session, name: str) -> Source | None:
    return session.scalar(select(Source).where(Source.name == name))


def source_by_id(session: Session, source_id: int) -> Source | None:
    return session.get(Source, source_id)


def all_sources(session: Session, *, enabled_only: bool = False) -> list[Source]:
    """Every source (or only the enabled ones) by name."""
    query = select(Source).order_by(Source.name)
    if enabled_only:
        query = query.where(Source.enabled)
    return list(session.scalars(query))


def add_source(session: Session, name: str, kind: str, url: str, enabled: bool, now: datetime) -> Source:
    source = Source(name=name, kind=kind, url=url, enabled=enabled, created_at=now)
    session.add(source)
    session.flush()
    return source


def remove_source(session: Session, source: Source) -> None:
    """Delete a source with its listings and fetch log (its papers stay)."""
    session.delete(source)


def detached(session: Session, source: Source) -> Source:
    """``source`` loaded and detached from ``session``, to read after the session ends."""
    session.expunge(source)
    return source


def record_fetch(
    session: Session,
    source_id: int,
    *,
    url: str,
    started: datetime,
    finished: datetime,
    status: str,
    http_status: int | None,
    error: str | None,
    counts: tuple[int, int, int],
    validators: tuple[str | None, str | None] | None,
) -> None:
    """Write a fetch log entry and the source's last status, in the caller's transaction: its
    consecutive failures, and after a success the ``validators`` (ETag, Last-Modified) of its own URL
    when given (they are given only once its papers are stored)."""
    seen, new, updated = counts
    session.add(
        FetchLog(
            source_id=source_id,
            url=url,
            started_at=started,
            finished_at=finished,
            http_status=http_status,
            status=status,
            seen=seen,
            new=new,
            updated=updated,
            error=error,
        )
    )
    row = session.get(Source, source_id)
    if row is None:
        return
    row.last_fetched_at = finished
    row.last_status = status
    row.last_error = error
    if error:
        row.consecutive_failures += 1
        return
    row.consecutive_failures = 0
    row.last_success_at = finished
    if validators is not None and url == row.url:
        row.etag, row.last_modified = validators


def last_fetch_started(session: Session, source_id: int) -> datetime | None:
    """When the latest fetch of a source started, by any process."""
    return session.scalar(select(func.max(FetchLog.started_at)).where(FetchLog.source_id == source_id))


def delete_fetch_log_before(session: Session, before: datetime) -> int:
    """Delete fetch log entries started before ``before``; returns how many."""
    return session.execute(delete(FetchLog).where(FetchLog.started_at < before)).rowcount
