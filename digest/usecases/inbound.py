"""Mail that comes back after the send: delivery reports and complaints, read and acted on.

A report is tied to its digest by the return address it came to (``bounce_address``'s
LOCAL+ID@DOMAIN) or by the Message-ID it quotes: a permanent failure counts as a hard bounce
exactly like a 5xx at send time (``max_hard_bounces``), a temporary one is recorded only, and a
complaint unsubscribes its recipient at once. Each is noted on the ledger row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.inbound.reports import BOUNCE, COMPLAINT, Report, read_report, verp_token
from digest.mail.message import message_token
from digest.store import ledger
from digest.store import subscribers as stored
from digest.store.engine import Session
from digest.store.models import Delivery, Subscriber
from digest.usecases.context import Context
from digest.usecases.subscribers import stop_mailing

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handled:
    """What one incoming message came to: ``outcome`` is bounced, delayed, complaint, repeated (a
    report already acted on), unattributed (names no digest or subscriber of ours), not-a-report,
    malformed or too-large."""

    outcome: str
    detail: str = ""
    delivery_id: int | None = None
    subscriber: str | None = None


def handle(ctx: Context, raw: bytes, recipients: Sequence[str] = (), now: datetime | None = None) -> Handled:
    """Read one whole message that came to ``recipients`` and act on it (see the module). Writes
    the subscriber and the ledger row in one transaction; never raises for what the message holds."""
    now = now or ctx.now()
    if len(raw) > ctx.settings.inbound_max_bytes:
        return Handled(
            "too-large", f"{len(raw)} bytes, over inbound_max_bytes ({ctx.settings.inbound_max_bytes})"
        )
    report = read_report(raw)
    if report.kind not in (BOUNCE, COMPLAINT):
        return Handled(report.kind, report.detail)
    tokens = [verp_token(to) for to in recipients]
    if report.original_message_id:
        tokens.append(message_token(report.original_message_id))
    with ctx.session() as session:
        delivery = _delivery(session, tokens)
        subscriber = _subscriber(session, delivery, report)
        if subscriber is None:
            return Handled("unattributed", report.detail)
        handled = _act(ctx, session, report, delivery, subscriber, now)
        session.commit()
    log.info("inbound %s for %s: %s", handled.outcome, handled.subscriber, handled.detail)
    return handled


def _act(
    ctx: Context,
    session: Session,
    report: Report,
    delivery: Delivery | None,
    subscriber: Subscriber,
    now: datetime,
) -> Handled:
    delivery_id = delivery.id if delivery is not None else None
    if report.kind == COMPLAINT:
        stop_mailing(subscriber, now)
        outcome = "complaint"
    elif report.permanent:
        outcome = "bounced"
        if delivery is not None and (delivery.report or "").startswith("bounced"):
            return Handled("repeated", report.detail, delivery_id, subscriber.email)
        if stored.record_bounce(session, subscriber.id, ctx.settings.max_hard_bounces, now):
            log.warning("%s suspended after %d hard bounces", subscriber.email, ctx.settings.max_hard_bounces)
    else:
        outcome = "delayed"
    if delivery is not None:
        ledger.record_report(session, delivery, f"{outcome}: {report.detail}", now)
    return Handled(outcome, report.detail, delivery_id, subscriber.email)


def _delivery(session: Session, tokens: Sequence[str | None]) -> Delivery | None:
    """The row whose Message-ID's left part is one of ``tokens`` (``DATE.ID.RANDOM``)."""
    for token in tokens:
        parts = (token or "").split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        delivery = ledger.get(session, int(parts[1]))
        if delivery is not None and message_token(delivery.message_id) == token:
            return delivery
    return None


def _subscriber(session: Session, delivery: Delivery | None, report: Report) -> Subscriber | None:
    """Whom the report is about: its digest's subscriber, else (a complaint only) the one whose
    address it names. A bounce naming an address but no digest of ours is not acted on: anybody can
    send one."""
    if delivery is not None:
        return session.get(Subscriber, delivery.subscriber_id)
    if report.kind == COMPLAINT:
        for address in sorted(report.complainants):
            found = stored.subscriber_by_email(session, address)
            if found is not None:
                return found
    return None
