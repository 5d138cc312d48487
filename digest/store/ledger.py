"""The ledger: the only module that writes the deliveries table (and the papers each digest held).

Every status it sets is a move of digest.model.ledger.MOVES, from the statuses that move starts
at. A claimed row is written only while it is still the claimant's (``claimed_by`` and
``sending``), so a sender that lost a row to another writes nothing to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from digest.model.ledger import CLAIMABLE, MOVES, DeliveryStatus, resume_point
from digest.store.bulk import chunked, insert_for
from digest.store.models import Delivery, DeliveryPaper, Subscriber

S = DeliveryStatus
HISTORY_DAYS = 90  # how far back a digest's start is looked for; windows never reach past it


def _sources(move: str) -> list[str]:
    return sorted(MOVES[move].sources)


# --- planning ---------------------------------------------------------------------------------


def latest_dates(session: Session, subscriber_ids: Sequence[int]) -> dict[int, date]:
    """Each subscriber's latest digest date, for those who have one."""
    latest: dict[int, date] = {}
    for chunk in chunked(subscriber_ids):
        latest.update(
            session.execute(
                select(Delivery.subscriber_id, func.max(Delivery.digest_date))
                .where(Delivery.subscriber_id.in_(chunk))
                .group_by(Delivery.subscriber_id)
            ).all()
        )
    return latest


def existing_pairs(session: Session, dates: Sequence[date]) -> set[tuple[int, date]]:
    """The (subscriber id, digest date) pairs the ledger holds for these dates."""
    query = select(Delivery.subscriber_id, Delivery.digest_date).where(Delivery.digest_date.in_(dates))
    return set(session.execute(query))


def add_pending(session: Session, pairs: Sequence[tuple[int, date]], now: datetime) -> None:
    """Add a pending row per (subscriber id, digest date); one another process added meanwhile stays.
    Give the pairs sorted, so that every sender takes row locks in one order."""
    for chunk in chunked(pairs):
        rows = [
            {
                "subscriber_id": subscriber_id,
                "digest_date": day,
                "status": S.PENDING.value,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for subscriber_id, day in chunk
        ]
        session.execute(
            insert_for(session, Delivery).on_conflict_do_nothing(
                index_elements=["subscriber_id", "digest_date"]
            ),
            rows,
        )


def supersede_older(session: Session, day: date, subscriber_ids: Sequence[int], now: datetime) -> None:
    """Rows of these subscribers older than ``day`` that never went out are superseded: the digest of
    ``day`` covers what they missed."""
    for chunk in chunked(subscriber_ids):
        session.execute(
            update(Delivery)
            .where(
                Delivery.subscriber_id.in_(chunk),
                Delivery.digest_date < day,
                Delivery.status.in_(_sources("supersede")),
            )
            .values(status=S.SUPERSEDED.value, last_error=f"covered by the digest of {day}", updated_at=now)
            .execution_options(synchronize_session=False)
        )


# --- claiming ---------------------------------------------------------------------------------


def _claimable(now: datetime, clock: datetime) -> ColumnElement[bool]:
    """Pending, due for a retry at ``now``, or left sending by a sender whose lease ran out on the
    real ``clock``."""
    return or_(
        Delivery.status == S.PENDING,
        and_(Delivery.status == S.FAILED_TEMPORARY, Delivery.next_attempt_at <= now),
        and_(Delivery.status == S.SENDING, Delivery.lease_until < clock),
    )


def _claimable_query(now: datetime, clock: datetime, only: str | None) -> Any:
    claimable = [status.value for status in CLAIMABLE]
    query = (
        select(Delivery.id, Delivery.status)
        .where(Delivery.status.in_(claimable), _claimable(now, clock))  # the partial index
        .order_by(Delivery.id)
    )
    if only is not None:
        query = query.join(Subscriber).where(Subscriber.email == only)
    return query


def claimable(
    session: Session, now: datetime, clock: datetime, only: str | None = None
) -> list[tuple[int, str, int, date]]:
    """(id, status, subscriber id, digest date) of every row ``claim`` would take now, claiming none
    (for a dry run)."""
    query = _claimable_query(now, clock, only).add_columns(Delivery.subscriber_id, Delivery.digest_date)
    return list(session.execute(query))


def claim(
    session: Session,
    claimant: str,
    now: datetime,
    clock: Callable[[], datetime],
    *,
    batch: int,
    lease: float,
    deadline: float,
    only: str | None = None,
) -> list[tuple[int, str]]:
    """Claim up to ``batch`` claimable rows for ``claimant`` with a lease of ``lease`` seconds on the
    real ``clock``, giving each ``deadline`` hours from its first claim to go out; returns (id, status
    before) of each, or [] when none is claimable. Commits. Safe with several senders: PostgreSQL
    skips rows another sender has locked, and the update re-checks that each row is still free;
    when another took them all first (SQLite has no SKIP LOCKED), it looks again."""
    while True:
        wall = clock()  # anew each round: a round may wait for SQLite's write lock
        query = _claimable_query(now, wall, only).limit(batch)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Delivery)
        found = dict(session.execute(query).all())
        if not found:
            session.commit()
            return []
        claimed = session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(list(found)), _claimable(now, wall))
            .values(
                status=MOVES["claim"].target.value,
                claimed_by=claimant,
                lease_until=wall + timedelta(seconds=lease),
                attempts=Delivery.attempts + 1,
                give_up_at=func.coalesce(Delivery.give_up_at, now + timedelta(hours=deadline)),
                updated_at=now,
            )
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        ).all()
        session.commit()
        if claimed:
            return sorted((row_id, found[row_id]) for row_id in claimed)


def rows(session: Session, ids: Sequence[int]) -> list[tuple[Delivery, Subscriber]]:
    """Ledger rows with their subscribers, by id (a row's ``papers`` load when first read)."""
    query = (
        select(Delivery, Subscriber)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
    )
    return [(delivery, subscriber) for delivery, subscriber in session.execute(query)]


# --- what composing reads ---------------------------------------------------------------------


def previous_papers_until(
    session: Session, subscriber_ids: Sequence[int], before: date
) -> dict[int, datetime]:
    """Per subscriber, where their next digest (dated ``before``) starts: ``resume_point`` of their
    digests of the last HISTORY_DAYS that stored their papers."""
    histories: dict[int, list[tuple[date, str, datetime | None, datetime | None]]] = {}
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
            histories.setdefault(subscriber_id, []).append((day, status, after, until))
    found = {subscriber_id: resume_point(history) for subscriber_id, history in histories.items()}
    return {subscriber_id: resume for subscriber_id, resume in found.items() if resume is not None}


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
            Delivery.subscriber_id.in_(chunk), Delivery.status == S.SENDING
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
    paper (a paper's first_seen_at is set when a source first lists it, and a digest holds only
    listed papers), so only those are read, by
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
                Delivery.status == S.SENT,
                or_(Delivery.papers_until.is_(None), Delivery.papers_until > after),
            )
        )
        pairs.update((subscriber, paper) for subscriber, paper in session.execute(query) if paper in wanted)
    return pairs


# --- writing a claimed row --------------------------------------------------------------------


def _still_mine(claimant: Any) -> list[ColumnElement[bool]]:
    """A row is still ``claimant``'s: claimed by it and still sending (the one test of it)."""
    table = Delivery.__table__
    return [table.c.claimed_by == claimant, table.c.status == S.SENDING]


@lru_cache(maxsize=64)
def _mine_update(keys: tuple[str, ...], unpicked: bool, not_an_attempt: bool) -> Update:
    """UPDATE deliveries SET <keys> WHERE the row is still :claimant's (and, if ``unpicked``, has no
    papers stored yet); with ``not_an_attempt``, the claim's attempt is given back too. One
    prepared statement per set of columns."""
    table = Delivery.__table__
    where = [table.c.id == bindparam("row"), *_still_mine(bindparam("claimant"))]
    if unpicked:
        where.append(table.c.papers_until.is_(None))
    values: dict[str, Any] = {key: bindparam(f"new_{key}") for key in keys}
    if not_an_attempt:
        values["attempts"] = table.c.attempts - 1
    return update(table).where(*where).values(values)


def update_mine(
    session: Session,
    claimant: str,
    delivery_id: int,
    values: dict[str, Any],
    *,
    unpicked: bool = False,
    not_an_attempt: bool = False,
) -> bool:
    """Set ``values`` on a row while it is ``claimant``'s (and, if ``unpicked``, has no papers yet;
    with ``not_an_attempt``, giving back the attempt its claim counted); False when it is not. A
    ``status`` among ``values`` must be a move from ``sending``."""
    status = values.get("status")
    assert status is None or S.SENDING in _move_to(status).sources, f"no move from sending to {status}"
    keys = tuple(sorted(values))
    params = {"row": delivery_id, "claimant": claimant, **{f"new_{key}": values[key] for key in keys}}
    return bool(session.connection().execute(_mine_update(keys, unpicked, not_an_attempt), params).rowcount)


def _move_to(status: str) -> Any:
    return next(move for move in MOVES.values() if move.target == status and S.SENDING in move.sources)


def insert_papers(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert what digests held (dicts of DeliveryPaper's columns) in one statement."""
    if rows:
        session.connection().execute(insert(DeliveryPaper.__table__), list(rows))


def renew(session: Session, claimant: str, ids: Sequence[int], lease_until: datetime) -> set[int]:
    """Extend the lease of these rows where they are still ``claimant``'s; returns those. Commits."""
    kept: set[int] = set()
    for chunk in chunked(ids):
        kept.update(
            session.scalars(
                update(Delivery)
                .where(Delivery.id.in_(chunk), *_still_mine(claimant))
                .values(lease_until=lease_until)
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            )
        )
    session.commit()
    return kept


def release(session: Session, claimant: str, ids: Sequence[int], now: datetime, error: str) -> None:
    """Give back rows of ``claimant`` that never reached the transport: due again at ``now``. Commits."""
    for chunk in chunked(sorted(ids)):
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(chunk), *_still_mine(claimant))
            .values(
                status=MOVES["fail-temporary"].target.value,
                next_attempt_at=now,
                lease_until=None,
                last_error=error,
            )
        )
    session.commit()


def retry(session: Session, delivery_id: int, now: datetime, deadline_hours: float) -> bool:
    """Make a failed row due again at ``now``, keeping its papers and Message-ID, for
    ``deadline_hours`` more; False if it is not failed (any more). Commits."""
    changed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status.in_(_sources("retry")))
        .values(
            status=MOVES["retry"].target.value,
            next_attempt_at=now,
            give_up_at=now + timedelta(hours=deadline_hours),
            last_error=None,
            updated_at=now,
        )
    )
    session.commit()
    return bool(changed.rowcount)


# --- reading ----------------------------------------------------------------------------------


def get(session: Session, delivery_id: int) -> Delivery | None:
    return session.get(Delivery, delivery_id)


def record_report(session: Session, delivery: Delivery, report: str, now: datetime) -> None:
    """Note on a row what a report that came back later said of it (in the caller's transaction)."""
    delivery.report, delivery.reported_at = report[:1000], now


def listing(
    session: Session, *, day: date | None = None, status: str | None = None, limit: int = 100
) -> list[tuple[Delivery, str]]:
    """Rows with their subscriber's address, newest first."""
    query = select(Delivery, Subscriber.email).join(Subscriber).order_by(Delivery.id.desc()).limit(limit)
    if day:
        query = query.where(Delivery.digest_date == day)
    if status:
        query = query.where(Delivery.status == status)
    return list(session.execute(query))


def latest(session: Session, subscriber_id: int) -> Delivery | None:
    """The subscriber's digest of the latest date, whatever became of it."""
    return session.scalar(
        select(Delivery)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.digest_date.desc())
        .limit(1)
    )


def sent_on(session: Session, subscriber_id: int, day: date) -> Delivery | None:
    """The subscriber's digest for ``day``, if it was sent."""
    return session.scalar(
        select(Delivery).where(
            Delivery.subscriber_id == subscriber_id, Delivery.digest_date == day, Delivery.status == "sent"
        )
    )


def sent_digests(session: Session, subscriber_id: int, limit: int) -> list[Delivery]:
    """A subscriber's sent digests, newest first."""
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.subscriber_id == subscriber_id, Delivery.status == S.SENT)
            .order_by(Delivery.digest_date.desc())
            .limit(limit)
        )
    )


def backlog(session: Session, now: datetime) -> int:
    """Digests due at ``now`` and not yet sent: pending, or failed and due for a retry."""
    return session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            or_(
                Delivery.status == S.PENDING,
                (Delivery.status == S.FAILED_TEMPORARY) & (Delivery.next_attempt_at <= now),
            )
        )
    )


def status_counts(session: Session) -> dict[str, int]:
    """How many rows are in each status."""
    query = select(Delivery.status, func.count()).group_by(Delivery.status)
    return dict(session.execute(query).all())


def sent_message_ids(session: Session) -> set[str]:
    return set(session.scalars(select(Delivery.message_id).where(Delivery.status == S.SENT)))


def claimants(session: Session) -> set[str]:
    """Who holds rows being sent now."""
    query = select(Delivery.claimed_by).where(Delivery.status == S.SENDING).distinct()
    return {claimant for claimant in session.scalars(query) if claimant}


def open_work(session: Session) -> tuple[int, int, datetime | None]:
    """(rows pending, rows being sent, the earliest lease of those being sent)."""
    return tuple(
        session.execute(
            select(
                func.count().filter(Delivery.status == S.PENDING),
                func.count().filter(Delivery.status == S.SENDING),
                func.min(Delivery.lease_until).filter(Delivery.status == S.SENDING),
            ).where(Delivery.status.in_((S.PENDING, S.SENDING)))
        ).one()
    )
