"""Papers, their listings and their metric snapshots: selects and bulk writes, given a Session."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from digest.model.figures import Figures
from digest.store.bulk import chunked, insert_for
from digest.store.models import Listing, MetricSnapshot, Paper, PaperText, Source

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
    "ai_summary",
    "text_authority",
    "listed",
)


def existing_papers(session: Session, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Stored fields of the papers among ``ids`` that exist, by id."""
    columns = [Paper.id, *(getattr(Paper, name) for name in PAPER_FIELDS)]
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunked(ids):
        for row in session.execute(select(*columns).where(Paper.id.in_(chunk))).mappings():
            found[row["id"]] = dict(row)
    return found


def insert_papers(session: Session, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Insert new papers; a row another process inserted meanwhile is left as it is, except that
    one stored meanwhile for a reader's library (not listed) becomes listed, first seen now.
    Returns the ids inserted here."""
    inserted: list[str] = []
    for chunk in chunked(rows):
        query = insert_for(session, Paper).on_conflict_do_nothing(index_elements=["id"]).returning(Paper.id)
        inserted.extend(session.scalars(query, list(chunk)))
    taken = set(inserted)
    meanwhile = [row for row in rows if row["id"] not in taken]
    table = Paper.__table__
    for chunk in chunked(meanwhile):
        session.execute(
            update(table)
            .where(table.c.id == bindparam("paper"), table.c.listed.is_(False))
            .values(listed=True, first_seen_at=bindparam("seen")),
            [{"paper": row["id"], "seen": row["first_seen_at"]} for row in chunk],
        )
    return inserted


def texts_to_change(session: Session, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(title, abstract) of the papers among ``ids``, locked until the transaction ends (on
    PostgreSQL; SQLite's writer holds the whole database), so that what their new text replaces is
    what is stored."""
    found: dict[str, tuple[str, str]] = {}
    for chunk in chunked(sorted(ids)):
        query = select(Paper.id, Paper.title, Paper.abstract).where(Paper.id.in_(chunk)).order_by(Paper.id)
        for paper_id, title, abstract in session.execute(query.with_for_update()):
            found[paper_id] = (title, abstract)
    return found


def update_papers(session: Session, changes: Sequence[dict[str, Any]]) -> None:
    """Apply per-paper changes; each dict holds ``id`` and the fields to set."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        by_shape.setdefault(tuple(sorted(change)), []).append(change)
    for group in by_shape.values():
        for chunk in chunked(group):
            session.execute(update(Paper), list(chunk))


def save_texts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Keep each source's version of each paper's text: one row per (paper, source), the latest."""
    for chunk in chunked(rows):
        statement = insert_for(session, PaperText)
        fields = ("version", "title", "abstract", "authors", "seen_at")
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["paper_id", "source_id"],
                set_={name: getattr(statement.excluded, name) for name in fields},
            ),
            list(chunk),
        )


def insert_listings(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for chunk in chunked(rows):
        session.execute(
            insert_for(session, Listing).on_conflict_do_nothing(
                index_elements=["source_id", "paper_id", "listed_on"]
            ),
            list(chunk),
        )


def latest_metrics(session: Session, ids: Sequence[str]) -> dict[str, Figures]:
    """The newest snapshot of each paper among ``ids`` that has one."""
    latest: dict[str, Figures] = {}
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
            MetricSnapshot.trending_rank,
        ).where(MetricSnapshot.id.in_(newest))
        for paper_id, *figures in session.execute(query):
            latest[paper_id] = Figures(*figures)
    return latest


def ranked_by(session: Session, source_id: int, since: datetime) -> set[str]:
    """The papers to which source ``source_id`` gave a trending rank at ``since`` or later."""
    query = select(MetricSnapshot.paper_id).where(
        MetricSnapshot.source_id == source_id,
        MetricSnapshot.taken_at >= since,
        MetricSnapshot.trending_rank.is_not(None),
    )
    return set(session.scalars(query.distinct()))


def insert_snapshots(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for chunk in chunked(rows):
        session.execute(insert_for(session, MetricSnapshot), list(chunk))


def list_papers(
    session: Session, *, since: date | None = None, source_id: int | None = None, limit: int | None = None
) -> list[Paper]:
    """Papers newest first; those first seen together by their best listing rank.

    Optionally only those listed since a date, or by one source.
    """
    query = select(Paper)
    if since is not None or source_id is not None:
        listed = select(Listing.paper_id)
        if since is not None:
            listed = listed.where(Listing.listed_on >= since)
        if source_id is not None:
            listed = listed.where(Listing.source_id == source_id)
        query = query.where(Paper.id.in_(listed))
    best_rank = select(func.min(Listing.rank)).where(Listing.paper_id == Paper.id).scalar_subquery()
    query = query.order_by(Paper.first_seen_at.desc(), best_rank.asc().nulls_last(), Paper.id)
    return list(session.scalars(query.limit(limit) if limit else query))


def paper_listings(session: Session, paper_id: str) -> list[tuple[str, date, int | None, str | None]]:
    """(source name, listed on, rank, announce type) of every listing of a paper, oldest first."""
    query = (
        select(Source.name, Listing.listed_on, Listing.rank, Listing.announce_type)
        .join(Source, Source.id == Listing.source_id)
        .where(Listing.paper_id == paper_id)
        .order_by(Listing.listed_on, Source.name)
    )
    return [tuple(row) for row in session.execute(query)]


def paper_metrics(session: Session, paper_id: str) -> list[tuple[datetime, Figures]]:
    """Every snapshot of a paper's figures, oldest first."""
    query = (
        select(
            MetricSnapshot.taken_at,
            MetricSnapshot.upvotes,
            MetricSnapshot.comments,
            MetricSnapshot.github_stars,
            MetricSnapshot.trending_rank,
        )
        .where(MetricSnapshot.paper_id == paper_id)
        .order_by(MetricSnapshot.taken_at, MetricSnapshot.id)
    )
    return [(at, Figures(*figures)) for at, *figures in session.execute(query)]


def listed_papers(session: Session, day: date | None) -> list[Paper]:
    """Papers first announced on ``day`` by any source (arXiv replacements excluded); every stored
    paper a source listed when ``day`` is None."""
    query = select(Paper).where(Paper.listed.is_(True)).order_by(Paper.id)
    if day is not None:
        listed = select(Listing.paper_id).where(
            Listing.listed_on == day,
            or_(Listing.announce_type.is_(None), Listing.announce_type.not_in(("replace", "replace-cross"))),
        )
        query = query.where(Paper.id.in_(listed))
    return list(session.scalars(query))


def paper_texts(session: Session) -> Iterator[tuple[str, str]]:
    """(title, abstract) of every stored paper, streamed: the corpus IDF is computed from them."""
    yield from session.execute(select(Paper.title, Paper.abstract).execution_options(yield_per=2000))


def newest_paper_texts(session: Session, limit: int) -> list[tuple[str, str, str]]:
    """(id, title, abstract) of the ``limit`` papers sources listed last: what a semantic space is
    fitted on (a reader's library, stored unlisted, must not crowd out the field's new papers)."""
    query = (
        select(Paper.id, Paper.title, Paper.abstract)
        .where(Paper.listed.is_(True))
        .order_by(Paper.first_seen_at.desc(), Paper.id)
    )
    return [(paper_id, title, abstract) for paper_id, title, abstract in session.execute(query.limit(limit))]


def papers_first_seen(session: Session, after: datetime, until: datetime) -> list[Paper]:
    """Papers a source first listed in (after, until], by id."""
    query = (
        select(Paper)
        .where(Paper.first_seen_at > after, Paper.first_seen_at <= until, Paper.listed.is_(True))
        .order_by(Paper.id)
    )
    return list(session.scalars(query))


def newest_first_seen(session: Session, up_to: datetime) -> datetime | None:
    """When a source last listed a paper new to the database, up to ``up_to``."""
    query = select(func.max(Paper.first_seen_at)).where(Paper.first_seen_at <= up_to, Paper.listed.is_(True))
    return session.scalar(query)


def insert_references(session: Session, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Store papers no source has listed (a reader's library names them), as not listed; a paper
    stored meanwhile is left as it is. Returns the ids inserted."""
    inserted: list[str] = []
    for chunk in chunked(rows):
        query = insert_for(session, Paper).on_conflict_do_nothing(index_elements=["id"]).returning(Paper.id)
        inserted.extend(session.scalars(query, [{**row, "listed": False} for row in chunk]))
    return inserted


def papers_by_id(session: Session, ids: Sequence[str]) -> dict[str, Paper]:
    """The stored papers among ``ids``, by id."""
    found: dict[str, Paper] = {}
    for chunk in chunked(ids):
        found.update((paper.id, paper) for paper in session.scalars(select(Paper).where(Paper.id.in_(chunk))))
    return found


def titles(session: Session, ids: Sequence[str]) -> dict[str, str]:
    """The titles of the stored papers among ``ids``, by id."""
    found: dict[str, str] = {}
    for chunk in chunked(ids):
        found.update(session.execute(select(Paper.id, Paper.title).where(Paper.id.in_(chunk))).all())
    return found
