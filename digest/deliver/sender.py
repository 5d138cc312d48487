"""The send loop: plan, then claim, compose, render, send and record batch after batch.

Exactly once comes from the ledger: one row per (subscriber, digest date), unique. A sender claims
rows (pending, due for a retry, or left ``sending`` by a process that died: its lease ran out),
chooses and stores the papers, sends, and records each row the moment the transport answers,
renewing the lease while it works. Every write after the claim names the claim, so a sender that
lost a row to another writes nothing to it. The only way a digest goes out twice is a crash after
the server accepted it and before that record; such rows are resent with the same Message-ID, and
the takeover is logged as a possible duplicate.

The same loop makes the dry run (``Mode.DRY_RUN``: nothing sent, nothing stored) and the test send
(``Mode.TEST``: every due digest mailed to one address, nothing stored) over a ledger that only
reads, so neither can drift from the real send.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from digest import metrics
from digest.compose.choose import Composed, Composer, Job
from digest.deliver.ledgers import LiveLedger, ReadOnlyLedger
from digest.deliver.messages import PLACEHOLDER_TOKEN, DigestMail, MailMaker
from digest.deliver.outcome import Verdict, after_failure, counts_as_bounce
from digest.errors import MessageError
from digest.mail.message import Identity, identity_for, new_message_id
from digest.mail.transports import Outcome, Outgoing, Transport
from digest.model.freshness import Standing
from digest.model.ledger import DeliveryStatus, retry_delay
from digest.model.link_tokens import new_token
from digest.model.subscriber import SubscriberStatus
from digest.model.time import Clock, system_clock, utc
from digest.render.mails import Renderer
from digest.score.index import Weights
from digest.store import subscribers as stored_subscribers
from digest.store.engine import Database, Session
from digest.store.models import Delivery, Subscriber
from digest.store.reader import StoreReader

log = logging.getLogger(__name__)
S = DeliveryStatus

# Where a run's time goes: planning rows, claiming batches, choosing papers, storing them and
# building the messages ("render"), waiting for the server ("send"), recording outcomes ("ledger").
STAGES = ("plan", "claim", "compose", "render", "send", "ledger")
DEFERRED = "deferred"  # a row put back until the subscriber's earlier digest is sent


class Mode(StrEnum):
    SEND = "send"
    DRY_RUN = "dry-run"  # list what is due and what it holds; send and store nothing
    TEST = "test"  # mail what is due to one address instead; store nothing


class SendOptions(Protocol):
    """What the send loop reads of the settings (digest.config.Settings has them all)."""

    base_url: str
    mail_from_name: str
    claim_batch: int
    claim_lease: float
    retry_deadline: float
    retry_delay: float
    send_empty_digest: bool
    max_hard_bounces: int
    link_days: int
    catch_up_days: int
    trending_papers: int
    hold_for_sources: float


@dataclass(frozen=True, slots=True)
class RowResult:
    """What one run did with one digest (kept when the run is asked to)."""

    delivery_id: int
    email: str
    day: date
    status: str  # a DeliveryStatus, "deferred", or in a dry run "due" for one it would send
    subject: str | None = None
    papers: int = 0
    error: str | None = None


@dataclass
class Summary:
    """What one send did."""

    planned: int = 0
    sent: int = 0
    skipped: int = 0
    failed_temporary: int = 0
    failed_permanent: int = 0
    deferred: int = 0
    held: int = 0  # digests due that wait for a late source (not planned yet)
    possible_duplicates: list[str] = field(default_factory=list)
    unknown_zones: list[tuple[str, str]] = field(default_factory=list)
    rows: list[RowResult] = field(default_factory=list)
    test_to: str | None = None  # where a test send mailed

    @property
    def failed(self) -> int:
        return self.failed_temporary + self.failed_permanent

    def count(self, status: str) -> None:
        name = {
            S.SENT: "sent",
            S.SKIPPED: "skipped",
            S.FAILED_TEMPORARY: "failed_temporary",
            DEFERRED: "deferred",
        }
        attribute = name.get(status, "failed_permanent")
        setattr(self, attribute, getattr(self, attribute) + 1)


# What composing gives a row, and what building its message makes of that.


@dataclass(frozen=True, slots=True)
class Waiting:
    """The subscriber's earlier digest is still being sent (by ``claimant``): papers are chosen
    once it is done."""

    claimant: str | None


@dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to send: ``reason`` is recorded (None for a digest with no papers)."""

    reason: str | None


@dataclass(frozen=True, slots=True)
class Fail:
    """The row fails without reaching the transport: for good, or to be tried again."""

    error: str
    permanent: bool


@dataclass(frozen=True, slots=True)
class Ready:
    """The row's message, and the row of its link token (None when no token is stored)."""

    mail: DigestMail
    token_row: dict[str, Any] | None


Built = Skip | Fail | Ready | Waiting


def new_claimant() -> str:
    """Who claims: this host and process, and a random part so each run's claims are its own."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Sender:
    """Runs sends: plan, then claim, compose, render, send and record batch after batch.

    ``clock`` is the real time, for leases (``run`` takes the time a send acts at, which may be
    another). In ``Mode.TEST`` every message goes to ``test_to``; ``collect`` keeps a RowResult of
    every digest in the summary (always in a dry run or test send).
    """

    def __init__(
        self,
        options: SendOptions,
        database: Database,
        transport: Transport | None,
        *,
        identity: Identity | None = None,
        renderer: Renderer | None = None,
        progress: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        clock: Clock = system_clock,
        mode: Mode = Mode.SEND,
        test_to: str | None = None,
        collect: bool = False,
    ) -> None:
        if mode == Mode.TEST and not test_to:
            raise ValueError("a test send needs the address to send to")
        if mode != Mode.DRY_RUN and transport is None:
            raise ValueError("sending needs a transport")
        self.options = options
        self.database = database
        self.transport = transport
        self.identity = identity or identity_for(options)
        self.mails = MailMaker(self.identity, renderer or Renderer(options.mail_from_name), options.base_url)
        self.weights = Weights.of(options)
        self.clock = clock
        self.mode = mode
        self.test_to = test_to
        self.collect = collect or mode != Mode.SEND
        self.claimant = new_claimant()
        self._deferred: set[int] = set()  # rows this sender put back to wait once already
        self._standing = Standing()  # the sources late, stale or resting in this run
        # This run's results by row: one put back to wait and taken up again keeps its later result.
        self._results: dict[int, RowResult] = {}
        self.progress = progress or (lambda _message: None)
        self.stop = stop or threading.Event()
        self.stages: dict[str, float] = dict.fromkeys(STAGES, 0.0)  # seconds spent in each, for benchmarks

    def run(
        self, now: datetime | None = None, only: str | None = None, standing: Standing | None = None
    ) -> Summary:
        """Send everything due at ``now`` (default: the clock's time); returns what it did.

        ``standing`` says which sources are late or stale now: a digest due less than
        hold_for_sources hours ago waits for those worth waiting for (it is planned once they are
        fresh, or at the limit, never past the subscriber's local day), and each digest sent
        meanwhile says in one line which listing it lacks. When every source rests, a digest with
        no new paper at all says so instead of "nothing matched".

        If anything unexpected stops the run, the rows it claimed but never handed to the transport
        are released for a retry (failed-temporary, with the error) before the error propagates.
        Setting ``stop`` ends the run early the same way, once the messages in flight are recorded.
        """
        now = utc(now or self.clock())
        summary = Summary()
        self._results = {}
        self._standing = standing or Standing()
        waiting = self._standing.waiting
        hold = timedelta(hours=self.options.hold_for_sources) if waiting else timedelta(0)
        with self.database.session() as session:
            rows = self._ledger(session)
            started = time.perf_counter()
            plan = rows.plan(now, only, hold)
            summary.planned, summary.unknown_zones, summary.test_to, summary.held = (
                len(plan.due),
                plan.unknown_zones,
                self.test_to,
                len(plan.held),
            )
            composer = Composer(self.options, StoreReader(session), self.weights)
            composer.expect(stored_subscribers.active_interests(session))
            self._clock("plan", started)
            while not self.stop.is_set() and (claimed := self._timed("claim", rows.claim, now, only)):
                pending = {row_id for row_id, _ in claimed}
                try:
                    self._batch(rows, composer, claimed, pending, now, summary)
                except BaseException as exc:
                    session.rollback()
                    rows.forget()
                    rows.release(pending, now, repr(exc))
                    raise
                if self.stop.is_set():
                    rows.release(pending, now, "the sender was asked to stop")
            rows.commit()
        summary.rows = list(self._results.values())
        return summary

    def _ledger(self, session: Session) -> LiveLedger:
        if self.mode == Mode.SEND:
            return LiveLedger(session, self.claimant, self.options, self.clock)
        return ReadOnlyLedger(session, self.claimant, self.options, self.clock)

    def _batch(
        self,
        rows: LiveLedger,
        composer: Composer,
        claimed: list[tuple[int, str]],
        pending: set[int],
        now: datetime,
        summary: Summary,
    ) -> None:
        """Compose, send and record one claimed batch; ``pending`` holds the rows not yet handed
        to the transport (they are released if the batch is interrupted)."""
        taken_over = {row_id for row_id, status in claimed if status == S.SENDING}
        batch = rows.rows([row_id for row_id, _ in claimed])
        by_id = {delivery.id: (delivery, subscriber) for delivery, subscriber in batch}
        composed = self._timed("compose", self._compose, rows, composer, batch, now)
        started = time.perf_counter()
        built = {d.id: self._build(d, s, composed.get(d.id), now) for d, s in batch}  # before any write
        outgoing: list[Outgoing] = []
        for delivery, subscriber in batch:
            queued = len(outgoing)
            result = composed.get(delivery.id)
            status = self._prepare(rows, delivery, subscriber, result, built[delivery.id], now, outgoing)
            if status is not None:
                pending.discard(delivery.id)
                self._done(summary, delivery, subscriber, status, built[delivery.id])
            if delivery.id in taken_over and rows.live:
                self._log_takeover(delivery, subscriber, len(outgoing) > queued, summary)
        rows.flush()
        rows.commit()
        started = self._clock("render", started)
        if self.mode == Mode.DRY_RUN:
            for message in outgoing:
                delivery, subscriber = by_id[message.key]
                pending.discard(message.key)
                self._done(summary, delivery, subscriber, "due", built[message.key])
            return
        handed: dict[int, float] = {}
        assert self.transport is not None
        for outcome in self.transport.deliver(self._handing_over(rows, outgoing, pending, handed)):
            seconds = time.perf_counter() - handed.pop(outcome.key)
            if self.mode == Mode.SEND:
                metrics.SEND_SECONDS.observe(seconds)
                metrics.mail("digest", outcome.ok)
            started = self._clock("send", started)
            delivery, subscriber = by_id[outcome.key]
            status = self._finish(rows, delivery, subscriber, now, outcome)
            rows.commit()
            started = self._clock("ledger", started)
            if status is not None:
                self._done(summary, delivery, subscriber, status, built[delivery.id], outcome.error)
            self.progress(f"sent {summary.sent}, failed {summary.failed}")

    def _done(
        self,
        summary: Summary,
        delivery: Delivery,
        subscriber: Subscriber,
        status: str,
        built: Built,
        error: str | None = None,
    ) -> None:
        """Count the row's final status in this run (and keep its result if collecting)."""
        if status != "due":
            summary.count(status)
        if not self.collect:
            return
        subject, papers = None, 0
        if isinstance(built, Ready):
            subject = built.mail.subject
            papers = len(built.mail.digest.items) + len(built.mail.digest.trending)
        elif isinstance(built, Fail):
            error = error or built.error
        elif isinstance(built, Skip):
            error = built.reason
        self._results[delivery.id] = RowResult(
            delivery.id, subscriber.email, delivery.digest_date, status, subject, papers, error
        )

    def _compose(
        self,
        rows: LiveLedger,
        composer: Composer,
        batch: Sequence[tuple[Delivery, Subscriber]],
        now: datetime,
    ) -> dict[int, Composed | Waiting]:
        """Each active row's papers: chosen now for a new row, read back for one chosen before."""
        active = [(d, s) for d, s in batch if s.status == SubscriberStatus.ACTIVE]
        fresh = [(d, s) for d, s in active if d.papers_until is None]
        waiting = rows.sending_before([(d.id, s.id, d.digest_date) for d, s in fresh])
        fresh = [(d, s) for d, s in fresh if d.id not in waiting]
        previous: dict[int, datetime] = {}
        if fresh:
            latest = max(d.digest_date for d, _ in fresh)
            previous = rows.previous_papers_until([s.id for _, s in fresh], latest)
        jobs = [Job(s, d.digest_date, previous.get(s.id), d.id) for d, s in fresh]
        chosen = composer.compose(jobs, now)  # in the order of the jobs
        composed: dict[int, Composed | Waiting] = {
            delivery.id: result for (delivery, _), result in zip(fresh, chosen, strict=True)
        }
        for delivery, subscriber in active:
            if delivery.papers_until is not None:
                job = Job(subscriber, delivery.digest_date, None, delivery.id)
                composed[delivery.id] = composer.recompose(job, delivery.papers)
        composed.update({row_id: Waiting(claimant) for row_id, claimant in waiting.items()})
        return composed

    def _build(
        self, delivery: Delivery, subscriber: Subscriber, result: Composed | Waiting | None, now: datetime
    ) -> Built:
        """What the row comes to: its message, or why it sends none. Writes nothing: a batch builds
        all its messages before its first write, so SQLite's write lock is not held while rendering."""
        if result is None:
            return Skip(f"the subscriber is {subscriber.status}")
        if isinstance(result, Waiting):
            return result
        if result.error is not None:
            return Fail(result.error, permanent=True)
        if result.empty and not self.options.send_empty_digest:
            return Skip(None)
        try:
            return self._message(delivery, subscriber, result, now)
        except MessageError as exc:
            return Fail(str(exc), permanent=True)
        except Exception as exc:
            log.error(
                "cannot build the digest of delivery %d for %s", delivery.id, subscriber.email, exc_info=exc
            )
            return Fail(f"cannot build the message: {exc!r}", permanent=False)

    def _message(self, delivery: Delivery, subscriber: Subscriber, result: Composed, now: datetime) -> Ready:
        """The row's message and the row of its link token (to insert once the row is known to be
        this sender's; none in a dry run or test send, whose links carry a placeholder). Raises
        MessageError for an address or header that cannot be sent."""
        live = self.mode == Mode.SEND
        token, hashed = new_token() if live else (PLACEHOLDER_TOKEN, "")
        label = f"{delivery.digest_date:%Y%m%d}.{delivery.id}" if live else "test"
        message_id = (delivery.message_id if live else None) or new_message_id(self.identity.domain, label)
        mail = self.mails.make(
            result,
            token=token,
            message_id=message_id,
            now=now,
            key=delivery.id,
            to=self.test_to,
            subject_prefix="[test] " if self.mode == Mode.TEST else "",
            notes=self._standing.notes(now, subscriber.timezone),
            quiet=self._standing.quiet(subscriber.timezone) if result.papers == 0 else "",
        )
        if not live:
            return Ready(mail, None)
        token_row = {
            "token_hash": hashed,
            "purpose": "manage",
            "subscriber_id": subscriber.id,
            "delivery_id": delivery.id,
            "created_at": now,
            "expires_at": now + timedelta(days=self.options.link_days),
        }
        return Ready(mail, token_row)

    def _prepare(
        self,
        rows: LiveLedger,
        delivery: Delivery,
        subscriber: Subscriber,
        result: Composed | Waiting | None,
        built: Built,
        now: datetime,
        outgoing: list[Outgoing],
    ) -> str | None:
        """Store the row's papers and queue its message; returns the row's final status when it ends
        here (skipped, failed, deferred) instead of going to the transport, or None (queued, or
        another sender has the row now)."""
        if isinstance(built, Waiting):
            return self._wait(rows, delivery, built, now)
        picks = None
        if isinstance(result, Composed) and result.error is None and delivery.papers_until is None:
            picks = self._picks(delivery, result, now)
        if not isinstance(built, Ready):
            if picks is not None and not self._keep(rows, delivery, picks, {}):
                return None  # its window is stored before it closes; another sender has the row now
            if isinstance(built, Skip):
                return self._close(rows, delivery, Verdict(S.SKIPPED, built.reason), now)
            verdict = after_failure(
                built.error,
                permanent=built.permanent,
                attempts=delivery.attempts,
                give_up_at=delivery.give_up_at,
                now=now,
                options=self.options,
            )
            return self._close(rows, delivery, verdict, now)
        mail = built.mail
        if not self._keep(
            rows, delivery, picks, {"message_id": mail.outgoing.message_id, "subject": mail.subject}
        ):
            return None
        rows.queue([], built.token_row)
        outgoing.append(mail.outgoing)
        return None

    def _wait(self, rows: LiveLedger, delivery: Delivery, waiting: Waiting, now: datetime) -> str | None:
        """Put a row back until the subscriber's earlier digest is done: at once when this sender is
        the one sending that (its next batch takes the row up), else after a retry delay."""
        own = waiting.claimant == self.claimant and delivery.id not in self._deferred
        self._deferred.add(delivery.id)
        later = now + timedelta(seconds=retry_delay(self.options.retry_delay, delivery.attempts))
        values = {
            "status": S.FAILED_TEMPORARY.value,
            "last_error": "waits until the subscriber's earlier digest, still being sent, is done",
            "next_attempt_at": now if own else later,
            "lease_until": None,
            "updated_at": now,
        }
        if not rows.put_back(delivery.id, values):
            return None
        if own:
            rows.again(delivery.id)
        return DEFERRED

    def _close(self, rows: LiveLedger, delivery: Delivery, verdict: Verdict, now: datetime) -> str | None:
        values: dict[str, Any] = {
            "status": verdict.status.value,
            "last_error": verdict.error,
            "lease_until": None,
            "updated_at": now,
        }
        if verdict.retry_at is not None:
            values["next_attempt_at"] = verdict.retry_at
        return verdict.status.value if rows.update(delivery.id, values) else None

    def _picks(
        self, delivery: Delivery, result: Composed, now: datetime
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The row's window and its papers' rows, to store with ``_keep``."""
        window = result.window
        values = {
            "papers_after": window.after if window else None,
            "papers_until": window.until if window else now,
        }
        papers = [
            {
                "delivery_id": delivery.id,
                "paper_id": paper_id,
                "position": position,
                "section": section,
                "score": pick.score,
                "relevance": pick.relevance,
                "trending": pick.trending,
                "line": pick.line,
                "liked_paper_id": liked,
            }
            for position, (paper_id, pick, section, liked) in enumerate(result.picks)
        ]
        return values, papers

    def _keep(
        self,
        rows: LiveLedger,
        delivery: Delivery,
        picks: tuple[dict[str, Any], list[dict[str, Any]]] | None,
        values: dict[str, Any],
    ) -> bool:
        """Set ``values`` on the row, with its window if ``picks`` are new, in one statement, and queue
        its papers (inserted with the batch); False if the row is no longer ours or its papers were
        stored already."""
        if picks is None:
            return rows.update(delivery.id, values)
        window, papers = picks
        if not rows.update(delivery.id, {**window, **values}, unpicked=True):
            return False
        rows.queue(papers, None)
        return True

    def _finish(
        self, rows: LiveLedger, delivery: Delivery, subscriber: Subscriber, now: datetime, outcome: Outcome
    ) -> str | None:
        """Record what became of a row, if it is still ours; count hard bounces and suspend after too
        many. Returns the new status, or None when another sender had taken the row."""
        values: dict[str, Any] = {"updated_at": now, "lease_until": None, "smtp_code": outcome.code}
        if outcome.ok:
            values.update(status=S.SENT.value, sent_at=now, last_error=None, next_attempt_at=None)
        else:
            verdict = after_failure(
                outcome.error or "",
                permanent=outcome.permanent,
                attempts=delivery.attempts,
                give_up_at=delivery.give_up_at,
                now=now,
                options=self.options,
            )
            values.update(status=verdict.status.value, last_error=verdict.error)
            if verdict.retry_at is not None:
                values["next_attempt_at"] = verdict.retry_at
        if not rows.update(delivery.id, values):
            log.warning(
                "delivery %d (%s) was taken over by another sender while this one sent it; "
                "its result (%s) is not recorded here",
                delivery.id,
                subscriber.email,
                "accepted" if outcome.ok else outcome.error,
            )
            return None
        if outcome.ok:
            rows.accepted(subscriber, now)
        elif counts_as_bounce(outcome.permanent, outcome.code):
            rows.bounced(subscriber, now, outcome.error)
        return values["status"]

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
        self, rows: LiveLedger, outgoing: list[Outgoing], pending: set[int], handed: dict[int, float]
    ) -> Iterator[Outgoing]:
        """The batch's messages, each handed over only while its row is still this sender's: the
        lease of the rows not yet handed over is renewed first, and again every third of a lease.
        ``handed`` gets the time each was handed over; none is after ``stop`` is set."""
        mine: set[int] = set()
        renewed = -float("inf")
        for number, message in enumerate(outgoing):
            if self.stop.is_set():
                return
            if time.monotonic() - renewed > self.options.claim_lease / 3:
                mine = rows.renew([later.key for later in outgoing[number:]])
                renewed = time.monotonic()
            pending.discard(message.key)
            if message.key not in mine:
                log.warning(
                    "delivery %d was taken over by another sender before it was sent; left to it", message.key
                )
                continue
            handed[message.key] = time.perf_counter()
            yield message
