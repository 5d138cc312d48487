"""The ledgers the send loop works over: the one a real send writes, and the one its dry run and
test send read (it writes nothing, and sees what the real send would)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from digest.deliver import planner
from digest.model.ledger import MOVES, DeliveryStatus
from digest.model.time import Clock, utc
from digest.store import ledger, tokens
from digest.store import subscribers as stored_subscribers
from digest.store.engine import Session
from digest.store.models import Delivery, Subscriber

log = logging.getLogger(__name__)
S = DeliveryStatus


BOUNCES_FORGOTTEN = timedelta(days=7)  # with reports by mail: no hard bounce for this long clears the count


class LedgerOptions(Protocol):
    """What the ledgers read of the settings."""

    claim_batch: int
    claim_lease: float
    retry_deadline: float
    max_hard_bounces: int
    bounce_address: str | None


class LiveLedger:
    """The ledger a real send writes, over one session (see digest.store.ledger)."""

    live = True

    def __init__(self, session: Session, claimant: str, options: LedgerOptions, clock: Clock) -> None:
        self.session = session
        self.claimant = claimant
        self.options = options
        self.clock = clock
        self._papers: list[dict[str, Any]] = []
        self._tokens: list[dict[str, Any]] = []

    def plan(self, now: datetime, only: str | None, hold: timedelta = timedelta(0)) -> planner.Plan:
        return planner.plan(self.session, now, only, hold)

    def claim(self, now: datetime, only: str | None) -> list[tuple[int, str]]:
        options = self.options
        return ledger.claim(
            self.session,
            self.claimant,
            now,
            self.clock,
            batch=options.claim_batch,
            lease=options.claim_lease,
            deadline=options.retry_deadline,
            only=only,
        )

    def rows(self, ids: Sequence[int]) -> list[tuple[Delivery, Subscriber]]:
        return ledger.rows(self.session, ids)

    def update(self, delivery_id: int, values: dict[str, Any], *, unpicked: bool = False) -> bool:
        return ledger.update_mine(self.session, self.claimant, delivery_id, values, unpicked=unpicked)

    def put_back(self, delivery_id: int, values: dict[str, Any]) -> bool:
        """Set ``values`` and give back the attempt the claim counted (waiting is not an attempt)."""
        return ledger.update_mine(self.session, self.claimant, delivery_id, values, not_an_attempt=True)

    def sending_before(self, rows: Sequence[tuple[int, int, date]]) -> dict[int, str | None]:
        return ledger.sending_before(self.session, rows)

    def previous_papers_until(self, subscriber_ids: Sequence[int], before: date) -> dict[int, datetime]:
        return ledger.previous_papers_until(self.session, subscriber_ids, before)

    def again(self, delivery_id: int) -> None:
        """A row put back to be taken up again at once (a real ledger finds it due)."""

    def queue(self, papers: list[dict[str, Any]], token: dict[str, Any] | None) -> None:
        self._papers.extend(papers)
        if token is not None:
            self._tokens.append(token)

    def flush(self) -> None:
        """Insert the papers and link tokens queued while preparing a batch, a statement each."""
        ledger.insert_papers(self.session, self._papers)
        tokens.insert_many(self.session, self._tokens)
        self._papers, self._tokens = [], []

    def forget(self) -> None:
        """Drop what was queued (the batch was rolled back)."""
        self._papers, self._tokens = [], []

    def renew(self, ids: Sequence[int]) -> set[int]:
        lease_until = self.clock() + timedelta(seconds=self.options.claim_lease)
        return ledger.renew(self.session, self.claimant, ids, lease_until)

    def release(self, ids: set[int], now: datetime, why: str) -> None:
        if ids:
            ledger.release(
                self.session,
                self.claimant,
                sorted(ids),
                now,
                f"the sender stopped before sending it: {why}"[:500],
            )

    def bounced(self, subscriber: Subscriber, now: datetime, error: str | None) -> None:
        if stored_subscribers.record_bounce(self.session, subscriber.id, self.options.max_hard_bounces, now):
            log.warning(
                "%s suspended after %d hard bounces in a row; last: %s",
                subscriber.email,
                self.options.max_hard_bounces,
                error,
            )

    def accepted(self, subscriber: Subscriber, now: datetime) -> None:
        """The server took a message: hard bounces in a row start again from zero. When reports
        come back later (``bounce_address``), taking a message says nothing yet of delivering it,
        so only a subscriber with no hard bounce for BOUNCES_FORGOTTEN starts again."""
        if not subscriber.hard_bounces:
            return
        last = subscriber.bounced_at
        if self.options.bounce_address is None or last is None or utc(last) <= now - BOUNCES_FORGOTTEN:
            stored_subscribers.clear_bounces(self.session, subscriber.id)

    def commit(self) -> None:
        self.session.commit()


class ReadOnlyLedger(LiveLedger):
    """The ledger of a dry run or test send: reads what a real send would plan and claim, and writes
    nothing. Digests due but without a row yet get rows of their own, numbered below zero."""

    live = False

    def __init__(self, session: Session, claimant: str, options: LedgerOptions, clock: Clock) -> None:
        super().__init__(session, claimant, options, clock)
        self._virtual: dict[int, tuple[Delivery, Subscriber]] = {}
        self._left: list[tuple[int, str]] | None = None
        self._taken: dict[int, tuple[int, date]] = {}  # rows taken up: (subscriber id, digest date)
        self._batch: set[int] = set()  # those of the batch being made
        self._covered: dict[int, datetime] = {}  # per subscriber, where the rows taken up stopped

    def plan(self, now: datetime, only: str | None, hold: timedelta = timedelta(0)) -> planner.Plan:
        plan = planner.due(self.session, now, only, hold)
        for number, item in enumerate(plan.due, start=1):
            subscriber = stored_subscribers.subscriber_by_id(self.session, item.subscriber_id)
            row = Delivery(id=-number, subscriber_id=item.subscriber_id, digest_date=item.day, attempts=1)
            row.status, row.papers_until, row.message_id, row.give_up_at = S.PENDING, None, None, None
            self._virtual[-number] = (row, subscriber)
        return plan

    def claim(self, now: datetime, only: str | None) -> list[tuple[int, str]]:
        if self._left is None:
            due = {delivery.subscriber_id: delivery.digest_date for delivery, _ in self._virtual.values()}
            existing = [
                (row_id, status)
                for row_id, status, subscriber_id, day in ledger.claimable(
                    self.session, now, self.clock(), only
                )
                if not (status in MOVES["supersede"].sources and day < due.get(subscriber_id, day))
            ]  # what planning would supersede is not sent
            self._left = [
                (row_id, S.PENDING.value) for row_id in sorted(self._virtual, reverse=True)
            ] + existing
        batch, self._left = self._left[: self.options.claim_batch], self._left[self.options.claim_batch :]
        self._batch = {row_id for row_id, _ in batch}
        return batch

    def rows(self, ids: Sequence[int]) -> list[tuple[Delivery, Subscriber]]:
        stored = ledger.rows(self.session, [row_id for row_id in ids if row_id > 0])
        found = [self._virtual[row_id] for row_id in ids if row_id < 0] + stored
        self._taken.update((d.id, (s.id, d.digest_date)) for d, s in found)
        return found

    def sending_before(self, rows: Sequence[tuple[int, int, date]]) -> dict[int, str | None]:
        """As the real send would see it: the rows of this batch are being sent by this sender, and
        those of earlier batches are done."""
        waiting = {
            row_id: claimant
            for row_id, claimant in ledger.sending_before(self.session, rows).items()
            if not self._earlier_taken(row_id, rows)
        }
        for row_id, subscriber_id, day in rows:
            if any(
                taken in self._batch and other == subscriber_id and earlier < day
                for taken, (other, earlier) in self._taken.items()
            ):
                waiting[row_id] = self.claimant
        return waiting

    def _earlier_taken(self, row_id: int, rows: Sequence[tuple[int, int, date]]) -> bool:
        """Whether every earlier row of this row's subscriber still sending is one taken up here."""
        subscriber_id, day = next((s, d) for r, s, d in rows if r == row_id)
        return any(other == subscriber_id and earlier < day for other, earlier in self._taken.values())

    def previous_papers_until(self, subscriber_ids: Sequence[int], before: date) -> dict[int, datetime]:
        found = ledger.previous_papers_until(self.session, subscriber_ids, before)
        for subscriber_id in subscriber_ids:
            if subscriber_id in self._covered:
                found[subscriber_id] = max(
                    found.get(subscriber_id, self._covered[subscriber_id]), self._covered[subscriber_id]
                )
        return found

    def again(self, delivery_id: int) -> None:
        if self._left is not None:
            self._left.append((delivery_id, S.FAILED_TEMPORARY.value))

    def update(self, delivery_id: int, values: dict[str, Any], *, unpicked: bool = False) -> bool:
        until = values.get("papers_until")
        if until is not None and delivery_id in self._taken:
            subscriber_id = self._taken[delivery_id][0]
            self._covered[subscriber_id] = max(self._covered.get(subscriber_id, until), until)
        return True

    def put_back(self, delivery_id: int, values: dict[str, Any]) -> bool:
        return True

    def queue(self, papers: list[dict[str, Any]], token: dict[str, Any] | None) -> None:
        pass

    def flush(self) -> None:
        pass

    def renew(self, ids: Sequence[int]) -> set[int]:
        return set(ids)

    def release(self, ids: set[int], now: datetime, why: str) -> None:
        pass

    def bounced(self, subscriber: Subscriber, now: datetime, error: str | None) -> None:
        pass

    def accepted(self, subscriber: Subscriber) -> None:
        pass

    def commit(self) -> None:
        self.session.rollback()  # a read-only transaction ends here
