"""The daily send: who is due, claim ledger rows, compose, render, send, record. Ledger I/O lives here.

Exactly once comes from the ledger: one ``deliveries`` row per (subscriber, digest date), unique.
A sender claims rows (pending, due for a retry, or left ``sending`` by a process that died: its lease
ran out) by setting them ``sending`` with a lease, chooses and stores the papers, sends, and marks
each row the moment the transport answers, renewing the lease while it works. Every write after
the claim names the claim, so a sender that lost a row to another writes nothing to it. The only
way a digest goes out twice is a crash after the server accepted it and before that mark; such
rows are resent with the same Message-ID, and the takeover is logged as a possible duplicate.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from digest import mailer, metrics, queries
from digest.composer import Composed, Composer, Job, digest_of, utc, zone
from digest.config import Settings
from digest.models import Delivery, DeliveryPaper, Subscriber, Token
from digest.render import Renderer
from digest.subscribers import DAYS
from digest.tokens import new_token

log = logging.getLogger(__name__)

STATUSES = (
    "pending",
    "sending",
    "sent",
    "skipped",
    "superseded",
    "failed-temporary",
    "failed-permanent",
)
CLAIMABLE_STATUSES = ("pending", "failed-temporary", "sending")
MAX_RETRY_DELAY = 3600.0
WEEK = 7
# Row updates leave the loaded objects alone: they are read before and never written through the ORM.
NO_SYNC = {"synchronize_session": False}
WAITING: Any = object()  # a row whose papers are chosen once the subscriber's earlier digest is sent


PLAN_LOCK = 0x64696765_706C616E  # "digeplan": the PostgreSQL advisory lock planning takes
DUE_COLUMNS = ("id", "email", "timezone", "send_hour", "frequency", "weekly_day")  # what plan reads

# Where a run's time goes: planning rows, claiming batches, choosing papers, storing them and
# building the messages ("render"), waiting for the server ("send"), recording outcomes ("ledger").
STAGES = ("plan", "claim", "compose", "render", "send", "ledger")


@lru_cache(maxsize=64)
def _mine_update(keys: tuple[str, ...], unpicked: bool) -> Update:
    """UPDATE deliveries SET <keys> WHERE the row is claimed by :claimant and still sending."""
    table = Delivery.__table__
    where = [
        table.c.id == bindparam("row"),
        table.c.claimed_by == bindparam("claimant"),
        table.c.status == "sending",
    ]
    if unpicked:
        where.append(table.c.papers_until.is_(None))
    return update(table).where(*where).values({key: bindparam(f"new_{key}") for key in keys})


def local_date_if_due(subscriber: Any, now: datetime, last: date | None = None) -> date | None:
    """The local date of ``subscriber`` (a Subscriber or a row of its DUE_COLUMNS) when their send
    hour has passed there; for a weekly subscriber only on their day, or later in the week when that
    day's digest was missed (``last``, their latest digest date, is a week old or more). Else None.
    Raises ZoneInfoNotFoundError."""
    local = now.astimezone(zone(subscriber.timezone))
    if local.hour < subscriber.send_hour:
        return None
    today = local.date()
    if subscriber.frequency != "weekly" or DAYS[local.weekday()] == subscriber.weekly_day:
        return today
    missed = last is not None and (today - last).days >= WEEK
    return today if missed else None


@dataclass
class Summary:
    """What one send did."""

    planned: int = 0
    sent: int = 0
    skipped: int = 0
    failed_temporary: int = 0
    failed_permanent: int = 0
    deferred: int = 0
    possible_duplicates: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.failed_temporary + self.failed_permanent

    def count(self, status: str) -> None:
        names = {
            "sent": "sent",
            "skipped": "skipped",
            "failed-temporary": "failed_temporary",
            "deferred": "deferred",
        }
        name = names.get(status, "failed_permanent")
        setattr(self, name, getattr(self, name) + 1)


def plan(session: Session, now: datetime, only: str | None = None) -> int:
    """Add a pending row for every active subscriber who is due at ``now`` and has none for their
    local date, superseding their older rows that never went out (one digest covers what they
    missed). A subscriber whose time zone is unknown is logged and left out. Returns how many rows
    it added. Senders plan one at a time (under an advisory lock on PostgreSQL, SQLite's write lock
    on SQLite, held until the commit), so the next finds the rows the first added; commits."""
    dialect = session.get_bind().dialect.name  # senders started at once plan one after another:
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLAN_LOCK})
    elif dialect == "sqlite":  # a write that changes nothing takes the write lock until the commit
        session.execute(text("DELETE FROM deliveries WHERE 0"))
    columns = [getattr(Subscriber, name) for name in DUE_COLUMNS]
    query = select(*columns).where(Subscriber.status == "active")
    if only is not None:
        query = query.where(Subscriber.email == only)
    subscribers = session.execute(query).all()
    weekly = [s.id for s in subscribers if s.frequency == "weekly"]
    latest: dict[int, date] = {}
    for chunk in queries.chunked(weekly):
        latest.update(
            session.execute(
                select(Delivery.subscriber_id, func.max(Delivery.digest_date))
                .where(Delivery.subscriber_id.in_(chunk))
                .group_by(Delivery.subscriber_id)
            ).all()
        )
    due: list[tuple[int, date]] = []
    for subscriber in subscribers:
        try:
            day = local_date_if_due(subscriber, now, latest.get(subscriber.id))
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            log.warning(
                "%s has an unknown time zone %r (%s); fix it with `digest subscribers edit`",
                subscriber.email,
                subscriber.timezone,
                exc,
            )
            continue
        if day is not None:
            due.append((subscriber.id, day))
    if not due:
        session.commit()  # ends the transaction, and with it the planning lock
        return 0
    dates = sorted({day for _, day in due})
    existing = set(
        session.execute(
            select(Delivery.subscriber_id, Delivery.digest_date).where(Delivery.digest_date.in_(dates))
        ).all()
    )
    new = sorted((sid, day) for sid, day in due if (sid, day) not in existing)  # one lock order for all
    for chunk in queries.chunked(new):
        rows = [
            {
                "subscriber_id": subscriber_id,
                "digest_date": day,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for subscriber_id, day in chunk
        ]
        session.execute(
            queries.insert_for(session, Delivery).on_conflict_do_nothing(
                index_elements=["subscriber_id", "digest_date"]
            ),
            rows,
        )
    by_day: dict[date, list[int]] = {}
    for subscriber_id, day in new:
        by_day.setdefault(day, []).append(subscriber_id)
    for day, subscriber_ids in by_day.items():
        for chunk in queries.chunked(subscriber_ids):
            session.execute(
                update(Delivery)
                .where(
                    Delivery.subscriber_id.in_(chunk),
                    Delivery.digest_date < day,
                    Delivery.status.in_(("pending", "failed-temporary")),
                )
                .values(status="superseded", last_error=f"covered by the digest of {day}", updated_at=now)
                .execution_options(synchronize_session=False)
            )
    session.commit()
    return len(new)


def _claimable(now: datetime, clock: datetime) -> ColumnElement[bool]:
    return or_(
        Delivery.status == "pending",
        and_(Delivery.status == "failed-temporary", Delivery.next_attempt_at <= now),
        and_(Delivery.status == "sending", Delivery.lease_until < clock),
    )


def claim(
    session: Session,
    claimant: str,
    now: datetime,
    batch: int,
    lease: float,
    deadline: float,
    only: str | None = None,
) -> list[tuple[int, str]]:
    """Claim up to ``batch`` rows (pending, due for a retry at ``now``, or abandoned by a sender whose
    lease ran out on the real clock) for ``claimant``, giving each ``deadline`` hours from its first
    claim to go out; returns (id, status before) of each. Commits.
    Safe with several senders: PostgreSQL skips rows another sender has locked, and the update
    re-checks that each row is still free; when another took them all first, it looks again."""
    while True:
        clock = datetime.now(UTC)  # anew each round: a round may wait for SQLite's write lock
        query = (
            select(Delivery.id, Delivery.status)
            .where(Delivery.status.in_(CLAIMABLE_STATUSES), _claimable(now, clock))  # SQLite's index
            .order_by(Delivery.id)
            .limit(batch)
        )
        if only is not None:
            query = query.join(Subscriber).where(Subscriber.email == only)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Delivery)
        found = {row_id: status for row_id, status in session.execute(query)}
        if not found:
            session.commit()
            return []
        claimed = session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(list(found)), _claimable(now, clock))
            .values(
                status="sending",
                claimed_by=claimant,
                lease_until=clock + timedelta(seconds=lease),
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
        # Another sender claimed every row found between the select and the update (SQLite has
        # no SKIP LOCKED): look again rather than end the run while rows are still due.


def retry_delay(settings: Settings, attempts: int) -> float:
    """Seconds before the next try: retry_delay doubled per attempt, at most an hour, ±10 % jitter."""
    base = min(MAX_RETRY_DELAY, settings.retry_delay * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.9, 1.1)


def new_claimant() -> str:
    """Who claims: this host and process, and a random part so each run's claims are its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Sender:
    """Runs sends: plan, then claim, compose, render, send and record batch after batch."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        transport: mailer.Transport,
        *,
        renderer: Renderer | None = None,
        progress: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.transport = transport
        self.renderer = renderer or Renderer(settings.mail_from_name)
        self.sender = mailer.sender_for(settings)
        self.claimant = new_claimant()
        self._waiting: dict[int, str | None] = {}
        self._deferred: set[int] = set()
        self.progress = progress or (lambda _message: None)
        self.stop = stop or threading.Event()
        self.stages: dict[str, float] = dict.fromkeys(STAGES, 0.0)  # seconds spent in each, for benchmarks
        self._rows: dict[type, list[dict[str, Any]]] = {DeliveryPaper: [], Token: []}

    def run(self, now: datetime | None = None, only: str | None = None) -> Summary:
        """Send everything due at ``now`` (default: the current time). Returns the counts.

        If anything unexpected stops the run, the rows it claimed but never handed to the transport
        are released for a retry (failed-temporary, with the error) before the error propagates.
        Setting ``stop`` ends the run early the same way, once the messages in flight are recorded.
        """
        now = utc(now or datetime.now(UTC))
        summary = Summary()
        with self.sessions() as session:
            started = time.perf_counter()
            summary.planned = plan(session, now, only)
            composer = Composer(self.settings, session)
            composer.expect(
                session.scalars(select(Subscriber.interests).where(Subscriber.status == "active").distinct())
            )
            settings = self.settings
            self._clock("plan", started)
            while not self.stop.is_set() and (
                claimed := self._timed(
                    "claim",
                    claim,
                    session,
                    self.claimant,
                    now,
                    settings.claim_batch,
                    settings.claim_lease,
                    settings.retry_deadline,
                    only,
                )
            ):
                pending = {row_id for row_id, _ in claimed}
                try:
                    self._batch(session, composer, claimed, pending, now, summary)
                except BaseException as exc:
                    session.rollback()
                    self._rows = {DeliveryPaper: [], Token: []}  # rolled back with the batch
                    self._release(session, pending, now, repr(exc))
                    raise
                if self.stop.is_set():
                    self._release(session, pending, now, "the sender was asked to stop")
        return summary

    def _batch(
        self,
        session: Session,
        composer: Composer,
        claimed: list[tuple[int, str]],
        pending: set[int],
        now: datetime,
        summary: Summary,
    ) -> None:
        """Compose, send and record one claimed batch; ``pending`` holds the rows not yet handed
        to the transport (they are released if the batch is interrupted)."""
        ids = [row_id for row_id, _ in claimed]
        taken_over = {row_id for row_id, status in claimed if status == "sending"}
        rows = session.execute(
            select(Delivery, Subscriber)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
        ).all()
        by_id = {delivery.id: (delivery, subscriber) for delivery, subscriber in rows}
        composed = self._timed("compose", self._compose, session, composer, rows, now)
        started = time.perf_counter()
        built = {d.id: self._build(d, s, composed.get(d.id), now) for d, s in rows}  # before any write
        outgoing: list[mailer.Outgoing] = []
        for delivery, subscriber in rows:
            queued = len(outgoing)
            result, made = composed.get(delivery.id), built[delivery.id]
            status = self._prepare(session, delivery, subscriber, result, made, now, outgoing)
            if status is not None:
                pending.discard(delivery.id)
                summary.count(status)
            if delivery.id in taken_over:
                self._log_takeover(delivery, subscriber, len(outgoing) > queued, summary)
        self._insert_rows(session)
        session.commit()
        started = self._clock("render", started)
        handed: dict[int, float] = {}
        for outcome in self.transport.deliver(self._handing_over(session, outgoing, pending, handed)):
            metrics.SEND_SECONDS.observe(time.perf_counter() - handed.pop(outcome.key))
            metrics.mail("digest", outcome.ok)
            started = self._clock("send", started)
            delivery, subscriber = by_id[outcome.key]
            status = self._finish(session, delivery, subscriber, now, outcome)
            session.commit()
            started = self._clock("ledger", started)
            if status is not None:
                summary.count(status)
            self.progress(f"sent {summary.sent}, failed {summary.failed}")

    def _log_takeover(
        self, delivery: Delivery, subscriber: Subscriber, resent: bool, summary: Summary
    ) -> None:
        """Log a row taken over from a sender that stopped mid-send. Resent with the Message-ID that
        sender stored (it is stored before a message goes to the transport), it may be a
        duplicate: it is counted in ``summary.possible_duplicates``."""
        if resent and delivery.message_id:
            summary.possible_duplicates.append(delivery.message_id)
            log.warning(
                "delivery %d (%s, %s) was left mid-send by a sender that stopped (attempt %d); "
                "resending it: if the server had accepted it before the stop, this is a duplicate "
                "with the same Message-ID %s",
                delivery.id,
                subscriber.email,
                delivery.digest_date,
                delivery.attempts - 1,
                delivery.message_id,
            )
        else:
            log.warning(
                "delivery %d (%s, %s) was left mid-send by a sender that stopped (attempt %d); %s",
                delivery.id,
                subscriber.email,
                delivery.digest_date,
                delivery.attempts - 1,
                "it had not reached the transport" if not delivery.message_id else "not resent here",
            )

    def _clock(self, stage: str, started: float) -> float:
        """Add the time since ``started`` to ``stage``; returns now, to start the next stage."""
        now = time.perf_counter()
        self.stages[stage] += now - started
        return now

    def _timed(self, stage: str, work: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return work(*args)
        finally:
            self._clock(stage, started)

    def _handing_over(
        self, session: Session, outgoing: list[mailer.Outgoing], pending: set[int], handed: dict[int, float]
    ) -> Iterator[mailer.Outgoing]:
        """The batch's messages, each handed over only while its row is still this sender's: the
        lease of the rows not yet handed over is renewed first, and again every third of a lease.
        ``handed`` gets the time each was handed over; none is after ``stop`` is set."""
        mine: set[int] = set()
        renewed = -float("inf")
        for number, message in enumerate(outgoing):
            if self.stop.is_set():
                return
            if time.monotonic() - renewed > self.settings.claim_lease / 3:
                mine = self._renew(session, [later.key for later in outgoing[number:]])
                renewed = time.monotonic()
            pending.discard(message.key)
            if message.key not in mine:
                log.warning(
                    "delivery %d was taken over by another sender before it was sent; left to it", message.key
                )
                continue
            handed[message.key] = time.perf_counter()
            yield message

    def _compose(
        self, session: Session, composer: Composer, rows: Sequence[Any], now: datetime
    ) -> dict[int, Composed]:
        """Each active row's papers: chosen now for a new row, read back for one chosen before."""
        active = [(d, s) for d, s in rows if s.status == "active"]
        fresh = [(d, s) for d, s in active if d.papers_until is None]
        self._waiting = queries.sending_before(session, [(d.id, s.id, d.digest_date) for d, s in fresh])
        fresh = [(d, s) for d, s in fresh if d.id not in self._waiting]
        previous: dict[int, datetime] = {}
        if fresh:
            latest = max(d.digest_date for d, _ in fresh)
            previous = queries.previous_papers_until(session, [s.id for _, s in fresh], latest)
        jobs = [Job(s, d.digest_date, previous.get(s.id), d.id) for d, s in fresh]
        chosen = composer.compose(jobs, now)  # in the order of the jobs
        composed = {delivery.id: result for (delivery, _), result in zip(fresh, chosen, strict=True)}
        for delivery, subscriber in active:
            if delivery.papers_until is not None:
                job = Job(subscriber, delivery.digest_date, None, delivery.id)
                composed[delivery.id] = composer.recompose(job, delivery.papers)
        composed.update(dict.fromkeys(self._waiting, WAITING))
        return composed

    def _build(
        self, delivery: Delivery, subscriber: Subscriber, result: Composed | None, now: datetime
    ) -> Any:
        """The row's message, subject and token row (see ``_message``), or the exception building
        them raised, or None for a row that sends nothing. Writes nothing: a batch builds all its
        messages before its first write, so SQLite's write lock is not held while rendering."""
        if result is None or result is WAITING or result.error is not None:
            return None
        if result.empty and not self.settings.send_empty_digest:
            return None
        try:
            return self._message(delivery, subscriber, result, now)
        except Exception as exc:
            return exc

    def _prepare(
        self,
        session: Session,
        delivery: Delivery,
        subscriber: Subscriber,
        result: Composed | None,
        built: Any,
        now: datetime,
        outgoing: list[mailer.Outgoing],
    ) -> str | None:
        """Store the row's papers and queue its message (``built`` by ``_build``); returns the
        row's final status when it ends here (skipped, failed) instead of going to the transport."""
        if result is None:
            return self._close(session, delivery, now, "skipped", f"the subscriber is {subscriber.status}")
        if result is WAITING:
            return self._wait(session, delivery, now)
        if result.error is not None:
            return self._close(session, delivery, now, "failed-permanent", result.error)
        picks = self._picks(delivery, result, now) if delivery.papers_until is None else None
        closing = built is None or isinstance(built, Exception)  # its window is stored before it closes
        if closing and picks is not None and not self._keep(session, delivery, picks, {}):
            return None  # another sender has the row now
        if built is None:  # empty, and empty digests are not sent
            return self._close(session, delivery, now, "skipped", None)
        if isinstance(built, mailer.MessageError):
            return self._close(session, delivery, now, "failed-permanent", str(built))
        if isinstance(built, Exception):
            log.error(
                "cannot build the digest of delivery %d for %s", delivery.id, subscriber.email, exc_info=built
            )
            return self._close(
                session, delivery, now, "failed-temporary", f"cannot build the message: {built!r}", retry=True
            )
        message, subject, token_row = built
        if not self._keep(session, delivery, picks, {"message_id": message.message_id, "subject": subject}):
            return None
        self._rows[Token].append(token_row)
        outgoing.append(message)
        return None

    def _wait(self, session: Session, delivery: Delivery, now: datetime) -> str | None:
        """Put a row back until the subscriber's earlier digest is done: at once when this sender is
        the one sending that (its next batch takes the row up), else after a retry delay."""
        own = self._waiting.get(delivery.id) == self.claimant and delivery.id not in self._deferred
        self._deferred.add(delivery.id)
        retry_at = now if own else now + timedelta(seconds=retry_delay(self.settings, delivery.attempts))
        changed = session.execute(
            update(Delivery)
            .where(self._mine(delivery.id))
            .values(
                status="failed-temporary",
                last_error="waits until the subscriber's earlier digest, still being sent, is done",
                next_attempt_at=retry_at,
                attempts=Delivery.attempts - 1,  # waiting is not an attempt
                lease_until=None,
                updated_at=now,
            ),
            execution_options=NO_SYNC,
        )
        return "deferred" if changed.rowcount else None

    def _update_mine(
        self, session: Session, delivery_id: int, values: dict[str, Any], *, unpicked: bool = False
    ) -> int:
        """Set ``values`` on a row while it is this sender's (and, if ``unpicked``, has no papers
        yet); returns 1 if it was, else 0. One prepared statement per set of columns."""
        keys = tuple(sorted(values))
        params = {
            "row": delivery_id,
            "claimant": self.claimant,
            **{f"new_{key}": values[key] for key in keys},
        }
        return session.connection().execute(_mine_update(keys, unpicked), params).rowcount

    def _insert_rows(self, session: Session) -> None:
        """Insert the papers and link tokens queued while preparing a batch, a statement per table."""
        for model in (DeliveryPaper, Token):
            if self._rows[model]:
                session.connection().execute(insert(model.__table__), self._rows[model])
                self._rows[model] = []

    def _mine(self, delivery_id: int) -> ColumnElement[bool]:
        return and_(
            Delivery.id == delivery_id, Delivery.claimed_by == self.claimant, Delivery.status == "sending"
        )

    def _close(
        self,
        session: Session,
        delivery: Delivery,
        now: datetime,
        status: str,
        error: str | None,
        *,
        retry: bool = False,
    ) -> str | None:
        values: dict[str, Any] = {
            "status": status,
            "last_error": error,
            "lease_until": None,
            "updated_at": now,
        }
        if retry and delivery.give_up_at is not None and now >= delivery.give_up_at:
            values["status"] = status = "failed-permanent"
            values["last_error"] = f"gave up after {self.settings.retry_deadline:g} h of retries: {error}"
        elif retry:
            values["next_attempt_at"] = now + timedelta(seconds=retry_delay(self.settings, delivery.attempts))
        return status if self._update_mine(session, delivery.id, values) else None

    def _picks(
        self, delivery: Delivery, result: Composed, now: datetime
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The row's window and its papers' rows, to store with ``_keep``."""
        window = result.window
        values = {
            "papers_after": window.after if window else None,
            "papers_until": window.until if window else now,
        }
        rows = [
            {
                "delivery_id": delivery.id,
                "paper_id": paper_id,
                "position": position,
                "section": section,
                "score": pick.score,
                "relevance": pick.relevance,
                "trending": pick.trending,
                "line": pick.line,
            }
            for position, (paper_id, pick, section) in enumerate(result.picks)
        ]
        return values, rows

    def _keep(
        self,
        session: Session,
        delivery: Delivery,
        picks: tuple[dict[str, Any], list[dict[str, Any]]] | None,
        values: dict[str, Any],
    ) -> bool:
        """Set ``values`` on the row, with its window if ``picks`` are new, in one statement, and queue
        its papers (inserted with the batch); False if the row is no longer ours or its papers were
        stored already."""
        if picks is None:
            return bool(self._update_mine(session, delivery.id, values))
        window, rows = picks
        if not self._update_mine(session, delivery.id, {**window, **values}, unpicked=True):
            return False
        self._rows[DeliveryPaper].extend(rows)
        return True

    def _message(
        self, delivery: Delivery, subscriber: Subscriber, result: Composed, now: datetime
    ) -> tuple[mailer.Outgoing, str, dict[str, Any]]:
        """The row's message, its subject and the row of its link token (to insert once the row
        is known to be this sender's). Raises MessageError for an address or header that cannot
        be sent."""
        token, hashed = new_token()
        digest = digest_of(result, self.settings, token)
        rendered = self.renderer.render(digest)
        message_id = delivery.message_id or mailer.new_message_id(
            self.sender.domain, f"{delivery.digest_date:%Y%m%d}.{delivery.id}"
        )
        envelope = mailer.Envelope(subscriber.email, message_id, now, digest.links.unsubscribe)
        data = mailer.build_message(self.sender, envelope, rendered.subject, rendered.text, rendered.html)
        token_row = {
            "token_hash": hashed,
            "purpose": "manage",
            "subscriber_id": subscriber.id,
            "delivery_id": delivery.id,
            "created_at": now,
            "expires_at": now + timedelta(days=self.settings.link_days),
        }
        outgoing = mailer.Outgoing(
            delivery.id, self.sender.address, mailer.checked_address(subscriber.email), message_id, data
        )
        return outgoing, rendered.subject, token_row

    def _finish(
        self,
        session: Session,
        delivery: Delivery,
        subscriber: Subscriber,
        now: datetime,
        outcome: mailer.Outcome,
    ) -> str | None:
        """Record what became of a row, if it is still ours; count hard bounces and suspend after too
        many. Returns the new status, or None when another sender had taken the row."""
        values: dict[str, Any] = {"updated_at": now, "lease_until": None, "smtp_code": outcome.code}
        if outcome.ok:
            values.update(status="sent", sent_at=now, last_error=None, next_attempt_at=None)
        elif outcome.permanent:
            values.update(status="failed-permanent", last_error=outcome.error)
        elif delivery.give_up_at is not None and now >= delivery.give_up_at:
            error = f"gave up after {self.settings.retry_deadline:g} h of retries: {outcome.error}"
            values.update(status="failed-permanent", last_error=error)
        else:
            retry_at = now + timedelta(seconds=retry_delay(self.settings, delivery.attempts))
            values.update(status="failed-temporary", last_error=outcome.error, next_attempt_at=retry_at)
        if not self._update_mine(session, delivery.id, values):
            log.warning(
                "delivery %d (%s) was taken over by another sender while this one sent it; "
                "its result (%s) is not recorded here",
                delivery.id,
                subscriber.email,
                "accepted" if outcome.ok else outcome.error,
            )
            return None
        if outcome.ok and subscriber.hard_bounces:
            session.execute(
                update(Subscriber)
                .where(Subscriber.id == subscriber.id, Subscriber.hard_bounces > 0)
                .values(hard_bounces=0)
                .execution_options(synchronize_session=False)
            )
        elif outcome.permanent and outcome.code is not None:
            self._bounce(session, subscriber, outcome, now)
        return values["status"]

    def _bounce(
        self, session: Session, subscriber: Subscriber, outcome: mailer.Outcome, now: datetime
    ) -> None:
        """Count a hard bounce and suspend an active subscriber who has too many, in single statements
        (another sender, or the subscriber unsubscribing, may change the row meanwhile)."""
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber.id)
            .values(hard_bounces=Subscriber.hard_bounces + 1)
            .execution_options(synchronize_session=False)
        )
        suspended = session.execute(
            update(Subscriber)
            .where(
                Subscriber.id == subscriber.id,
                Subscriber.status == "active",
                Subscriber.hard_bounces >= self.settings.max_hard_bounces,
            )
            .values(status="bounced", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if suspended.rowcount:
            log.warning(
                "%s suspended after %d hard bounces in a row; last: %s",
                subscriber.email,
                self.settings.max_hard_bounces,
                outcome.error,
            )

    def _renew(self, session: Session, ids: list[int]) -> set[int]:
        """Extend the lease of these rows where they are still this sender's; returns those."""
        lease_until = datetime.now(UTC) + timedelta(seconds=self.settings.claim_lease)
        kept: set[int] = set()
        for chunk in queries.chunked(ids):
            kept.update(
                session.scalars(
                    update(Delivery)
                    .where(
                        Delivery.id.in_(chunk),
                        Delivery.claimed_by == self.claimant,
                        Delivery.status == "sending",
                    )
                    .values(lease_until=lease_until)
                    .returning(Delivery.id)
                    .execution_options(synchronize_session=False)
                )
            )
        session.commit()
        return kept

    def _release(self, session: Session, ids: set[int], now: datetime, why: str) -> None:
        """Give back claimed rows that never reached the transport, for a later retry."""
        if not ids:
            return
        error = f"the sender stopped before sending it: {why}"[:500]
        for chunk in queries.chunked(sorted(ids)):
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(chunk), Delivery.claimed_by == self.claimant, Delivery.status == "sending"
                )
                .values(status="failed-temporary", next_attempt_at=now, lease_until=None, last_error=error)
            )
        session.commit()


def retry(session: Session, delivery_id: int, now: datetime, deadline_hours: float) -> bool:
    """Make a failed row due again, keeping its papers and Message-ID; False if it is not failed
    (any more). Commits."""
    changed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status.in_(("failed-temporary", "failed-permanent")))
        .values(
            status="failed-temporary",
            next_attempt_at=now,
            give_up_at=now + timedelta(hours=deadline_hours),
            last_error=None,
            updated_at=now,
        )
    )
    session.commit()
    return bool(changed.rowcount)
