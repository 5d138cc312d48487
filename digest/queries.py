"""Selects and bulk writes that take a Session; portable between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.models import (
    Delivery,
    DeliveryPaper,
    FetchLog,
    Listing,
    MetricSnapshot,
    Paper,
    Source,
    Subscriber,
)

CHUNK = 500
HISTORY_DAYS = 90  # how far back a digest's start is looked for; windows never reach past it
PAPER_FIELDS = (
    "version",
    "title",
    "abstract",
    "authors",
    "published",
    "abs_url",
    "pdf_url",
    "hf_url",
    "categories",
    "github_repo",
    "project_page",
    "ai_keywords",
)


def chunked(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_for(session: Session, model: type) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def existing_papers(session: Session, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Stored fields of the papers among ``ids`` that exist, by id."""
    columns = [Paper.id, *(getattr(Paper, name) for name in PAPER_FIELDS)]
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunked(ids):
        for row in session.execute(select(*columns).where(Paper.id.in_(chunk))).mappings():
            found[row["id"]] = dict(row)
    return found


def insert_papers(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert new papers; a row another process inserted meanwhile is left as it is."""
    for chunk in chunked(rows):
        session.execute(insert_for(session, Paper).on_conflict_do_nothing(index_elements=["id"]), list(chunk))


def update_papers(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-paper changes; each dict holds ``id`` and the fields to set."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        by_shape.setdefault(tuple(sorted(change)), []).append(change)
    for group in by_shape.values():
        for chunk in chunked(group):
            session.execute(update(Paper), list(chunk))


def insert_listings(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for chunk in chunked(rows):
        session.execute(
            insert_for(session, Listing).on_conflict_do_nothing(
                index_elements=["source_id", "paper_id", "listed_on"]
            ),
            list(chunk),
        )


def latest_metrics(
    session: Session, ids: Sequence[str]
) -> dict[str, tuple[int | None, int | None, int | None]]:
    """The newest (upvotes, comments, github_stars) snapshot of each paper among ``ids`` that has one."""
    latest: dict[str, tuple[int | None, int | None, int | None]] = {}
    for chunk in chunked(ids):
        newest = (
            select(func.max(MetricSnapshot.id))
            .where(MetricSnapshot.paper_id.in_(chunk))
            .group_by(MetricSnapshot.paper_id)
            .scalar_subquery()
        )
        query = select(
            MetricSnapshot.paper_id,
            MetricSnapshot.upvotes,
            MetricSnapshot.comments,
            MetricSnapshot.github_stars,
        ).where(MetricSnapshot.id.in_(newest))
        for paper_id, upvotes, comments, stars in session.execute(query):
            latest[paper_id] = (upvotes, comments, stars)
    return latest


def insert_snapshots(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for chunk in chunked(rows):
        session.execute(insert_for(session, MetricSnapshot), list(chunk))


def source_by_name(session: Session, name: str) -> Source | None:
    return session.scalar(select(Source).where(Source.name == name))


def all_sources(session: Session) -> list[Source]:
    return list(session.scalars(select(Source).order_by(Source.name)))


def add_fetch_log(session: Session, **fields: Any) -> FetchLog:
    entry = FetchLog(**fields)
    session.add(entry)
    return entry


def papers_query(
    *, since: date | None = None, source: Source | None = None, limit: int | None = None
) -> Select[tuple[Paper]]:
    """Papers newest first; those first seen together by their best listing rank.

    Optionally only those listed since a date, or by one source.
    """
    query = select(Paper)
    if since is not None or source is not None:
        listed = select(Listing.paper_id)
        if since is not None:
            listed = listed.where(Listing.listed_on >= since)
        if source is not None:
            listed = listed.where(Listing.source_id == source.id)
        query = query.where(Paper.id.in_(listed))
    best_rank = select(func.min(Listing.rank)).where(Listing.paper_id == Paper.id).scalar_subquery()
    query = query.order_by(Paper.first_seen_at.desc(), best_rank.asc().nulls_last(), Paper.id)
    return query.limit(limit) if limit else query


def paper_listings(session: Session, paper_id: str) -> list[tuple[str, date, int | None, str | None]]:
    """(source name, listed on, rank, announce type) of every listing of a paper, oldest first."""
    query = (
        select(Source.name, Listing.listed_on, Listing.rank, Listing.announce_type)
        .join(Source, Source.id == Listing.source_id)
        .where(Listing.paper_id == paper_id)
        .order_by(Listing.listed_on, Source.name)
    )
    return [tuple(row) for row in session.execute(query)]


def paper_metrics(
    session: Session, paper_id: str
) -> list[tuple[datetime, int | None, int | None, int | None]]:
    query = (
        select(
            MetricSnapshot.taken_at,
            MetricSnapshot.upvotes,
            MetricSnapshot.comments,
            MetricSnapshot.github_stars,
        )
        .where(MetricSnapshot.paper_id == paper_id)
        .order_by(MetricSnapshot.taken_at)
    )
    return [tuple(row) for row in session.execute(query)]


def listed_papers(session: Session, day: date | None) -> list[Paper]:
    """Papers first announced on ``day`` by any source (arXiv replacements excluded); every stored
    paper when ``day`` is None."""
    query = select(Paper).order_by(Paper.id)
    if day is not None:
        listed = select(Listing.paper_id).where(
            Listing.listed_on == day,
            or_(Listing.announce_type.is_(None), Listing.announce_type.not_in(("replace", "replace-cross"))),
        )
        query = query.where(Paper.id.in_(listed))
    return list(session.scalars(query))


def latest_listing_day(session: Session, up_to: date) -> date | None:
    return session.scalar(select(func.max(Listing.listed_on)).where(Listing.listed_on <= up_to))


def paper_texts(session: Session) -> Iterator[tuple[str, str]]:
    """(title, abstract) of every stored paper, streamed: the corpus IDF is computed from them."""
    yield from session.execute(select(Paper.title, Paper.abstract).execution_options(yield_per=2000))


def subscriber_by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email == email))


def all_subscribers(session: Session, status: str | None = None) -> list[Subscriber]:
    query = select(Subscriber).order_by(Subscriber.email)
    if status:
        query = query.where(Subscriber.status == status)
    return list(session.scalars(query))


def papers_first_seen(session: Session, after: datetime, until: datetime) -> list[Paper]:
    """Papers first stored in (after, until], by id."""
    query = select(Paper).where(Paper.first_seen_at > after, Paper.first_seen_at <= until).order_by(Paper.id)
    return list(session.scalars(query))


def newest_first_seen(session: Session, up_to: datetime) -> datetime | None:
    return session.scalar(select(func.max(Paper.first_seen_at)).where(Paper.first_seen_at <= up_to))


def previous_papers_until(
    session: Session, subscriber_ids: Sequence[int], before: date
) -> dict[int, datetime]:
    """Per subscriber, where their next digest (dated ``before``) should start: the ``papers_until``
    of their latest digest that was sent, skipped or is being sent, unless a later one failed for
    good, whose papers the next digest then covers again (from that one's ``papers_after``)."""
    ok_statuses = ("sent", "skipped", "sending")
    rows: dict[int, list[tuple[date, str, datetime | None, datetime | None]]] = {}
    for chunk in chunked(subscriber_ids):
        query = (
            select(
                Delivery.subscriber_id,
                Delivery.digest_date,
                Delivery.status,
                Delivery.papers_after,
                Delivery.papers_until,
            )
            .where(
                Delivery.subscriber_id.in_(chunk),
                Delivery.digest_date < before,
                Delivery.digest_date >= before - timedelta(days=HISTORY_DAYS),
                Delivery.papers_until.is_not(None),
            )
            .order_by(Delivery.subscriber_id, Delivery.digest_date)
        )
        for subscriber_id, day, status, after, until in session.execute(query):
            rows.setdefault(subscriber_id, []).append((day, status, after, until))
    found: dict[int, datetime] = {}
    for subscriber_id, history in rows.items():
        resume: datetime | None = None
        for _day, status, after, until in history:  # oldest first
            if status in ok_statuses:
                resume = until
            elif status == "failed-permanent" and after is not None:
                resume = after if resume is None else min(resume, after)
        if resume is not None:
            found[subscriber_id] = resume
    return found


def sending_before(session: Session, rows: Sequence[tuple[int, int, date]]) -> dict[int, str | None]:
    """The delivery ids among ``rows`` ((id, subscriber id, digest date) triples) whose subscriber has
    an earlier digest still being sent, each with who is sending that one: their papers are chosen
    once it is done."""
    dates: dict[int, list[tuple[int, date]]] = {}
    for row_id, subscriber_id, day in rows:
        dates.setdefault(subscriber_id, []).append((row_id, day))
    earliest: dict[int, tuple[date, str | None]] = {}
    for chunk in chunked(list(dates)):
        query = select(Delivery.subscriber_id, Delivery.digest_date, Delivery.claimed_by).where(
            Delivery.subscriber_id.in_(chunk), Delivery.status == "sending"
        )
        for subscriber_id, day, claimant in session.execute(query):
            if subscriber_id not in earliest or day < earliest[subscriber_id][0]:
                earliest[subscriber_id] = (day, claimant)
    return {
        row_id: earliest[subscriber_id][1]
        for subscriber_id, days in dates.items()
        if subscriber_id in earliest
        for row_id, day in days
        if earliest[subscriber_id][0] < day
    }


def sent_pairs(
    session: Session, subscriber_ids: Sequence[int], paper_ids: Sequence[str], after: datetime
) -> set[tuple[int, str]]:
    """(subscriber, paper) pairs among these where the paper, first seen after ``after``, was in a
    digest sent to the subscriber. Only digests whose window ended after ``after`` can hold such a
    paper (a paper's first_seen_at is set once, when it is stored), so only those are read, by
    subscriber: the cost follows these subscribers' recent digests, not how often the papers were
    sent to everyone."""
    wanted = set(paper_ids)
    pairs: set[tuple[int, str]] = set()
    if not subscriber_ids or not wanted:
        return pairs
    for subscribers in chunked(subscriber_ids):
        query = (
            select(Delivery.subscriber_id, DeliveryPaper.paper_id)
            .join(DeliveryPaper, DeliveryPaper.delivery_id == Delivery.id)
            .where(
                Delivery.subscriber_id.in_(subscribers),
                Delivery.status == "sent",
                or_(Delivery.papers_until.is_(None), Delivery.papers_until > after),
            )
        )
        pairs.update((subscriber, paper) for subscriber, paper in session.execute(query) if paper in wanted)
    return pairs
