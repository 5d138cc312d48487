"""Sources and their fetch log: selects and writes, given a Session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from digest.store.bulk import chunked
from digest.store.models import FetchLog, Listing, Source


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
    fresh: int = 0,
    current: bool = True,
) -> None:
    """Write a fetch log entry and, unless the fetch is not ``current`` (then it is only logged),
    the source's last status, in the caller's transaction: its consecutive failures, when it last
    brought ``fresh`` items (ones it had never listed), and after a success the ``validators``
    (ETag, Last-Modified) of its own URL when given (they are given only once its papers are
    stored)."""
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
            fresh=fresh,
            error=error,
        )
    )
    row = session.get(Source, source_id)
    if row is None or not current:  # a past day fetched again says nothing of the source's state
        return
    row.last_fetched_at = finished
    if fresh:
        row.last_new_at = started
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


def recent_fetches(session: Session, source_ids: Sequence[int], since: datetime) -> dict[int, list[FetchLog]]:
    """Each source's fetch log entries started since ``since``, oldest first."""
    found: dict[int, list[FetchLog]] = {source_id: [] for source_id in source_ids}
    query = (
        select(FetchLog)
        .where(FetchLog.source_id.in_(list(source_ids)), FetchLog.started_at >= since)
        .order_by(FetchLog.started_at)
    )
    for entry in session.scalars(query):
        found[entry.source_id].append(entry)
    return found


def listed_by(session: Session, source_id: int, paper_ids: Sequence[str]) -> set[str]:
    """Those of ``paper_ids`` that source ``source_id`` has listed on any date."""
    listed: set[str] = set()
    for chunk in chunked(list(paper_ids)):
        query = select(Listing.paper_id).where(Listing.source_id == source_id, Listing.paper_id.in_(chunk))
        listed.update(session.scalars(query.distinct()))
    return listed
