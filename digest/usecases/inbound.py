"""Mail that comes in: delivery reports and complaints, unsubscribes and commands, each acted on
once and answered at most once.

Where a message came to says what it is: ``bounce_address`` (LOCAL or LOCAL+ID) takes reports,
``unsubscribe_mailto`` unsubscribes, ``commands_address`` takes commands (digest.usecases.
mail_commands); a report is read as one whatever address it came to. A report is tied to its digest
by the return address it came to or by the Message-ID it quotes: a permanent failure counts as a
hard bounce exactly like a 5xx at send time (``max_hard_bounces``), a temporary one is recorded
only, and a complaint unsubscribes its recipient at once. Each is noted on the ledger row. A
feedback report that is no complaint (a DMARC failure report, a "not spam") is taken and left alone.

A person's message is remembered by its Message-ID (``inbound_messages``), in the transaction that
acts on it, so one handed over twice is acted on once. Answers follow RFC 3834: none to a message
sent by a program, a list or digest itself; ours say ``Auto-Submitted: auto-replied`` and go out
with a null envelope sender; at most ``inbound_answers_per_day`` to an address.
"""

from __future__ import annotations

import dataclasses
import email.policy
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from digest.inbound.letters import Letter, base_address, read_letter
from digest.inbound.reports import BOUNCE, COMPLAINT, FEEDBACK, Report, read_report, verp_token
from digest.mail.message import Envelope, build_message, message_token, new_message_id
from digest.mail.transports import Outgoing, transport_for
from digest.model.address import checked_address
from digest.store import inbound as stored_inbound
from digest.store import ledger
from digest.store import subscribers as stored
from digest.store.engine import Session
from digest.store.models import Delivery, Subscriber
from digest.usecases import mail_commands
from digest.usecases.context import Context
from digest.usecases.mail_commands import Reply
from digest.usecases.subscribers import stop_mailing

log = logging.getLogger(__name__)
REPORTS, UNSUBSCRIBE, COMMANDS = "reports", "unsubscribe", "commands"
UNREADABLE = ("malformed", "too-large")  # outcomes whose message goes to the failed folder


@dataclass(frozen=True, slots=True)
class Handled:
    """What one incoming message came to. For a report, ``outcome`` is bounced, delayed,
    complaint, repeated (a report already acted on), unattributed (names no digest or subscriber of
    ours), feedback (a feedback report that is no complaint), not-a-report or malformed; for a
    person's message, unsubscribed, unchanged, commands, help, ignored (sent by a program: not
    acted on) or repeated; too-large for either. ``answered`` says whether an answer went out."""

    outcome: str
    detail: str = ""
    delivery_id: int | None = None
    subscriber: str | None = None
    answered: bool = False


def handle(
    ctx: Context,
    raw: bytes,
    recipients: Sequence[str] = (),
    now: datetime | None = None,
    envelope_sender: str | None = None,
) -> Handled:
    """Read one whole message that came to ``recipients`` (the envelope's; the message's own
    headers when none are given) from ``envelope_sender`` and act on it (see the module). Writes in
    one transaction, then mails the answer, and logs one line of what it came to (a warning when
    the message could not be read); never raises for what the message holds."""
    handled = _handle(ctx, raw, recipients, now or ctx.now(), envelope_sender)
    level = logging.WARNING if handled.outcome in UNREADABLE else logging.INFO
    about = handled.subscriber or envelope_sender or "?"
    log.log(level, "inbound %s (%s): %s", handled.outcome, about, handled.detail)
    return handled


def _handle(
    ctx: Context, raw: bytes, recipients: Sequence[str], now: datetime, envelope_sender: str | None
) -> Handled:
    settings = ctx.settings
    if len(raw) > settings.inbound_max_bytes:
        return Handled(
            "too-large", f"{len(raw)} bytes, over inbound_max_bytes ({settings.inbound_max_bytes})"
        )
    report = read_report(raw)
    if report.kind in (BOUNCE, COMPLAINT):
        return _report(ctx, report, recipients, now)
    if report.kind == FEEDBACK:
        return Handled(FEEDBACK, report.detail)
    role = _role(ctx, recipients or _addressed_to(raw))
    if role == REPORTS:
        return Handled(report.kind, report.detail)
    letter = read_letter(raw, envelope_sender, _ours(ctx))
    key = hashlib.sha256(letter.message_id.encode() if letter.message_id else raw).hexdigest()
    with ctx.session() as session:
        if stored_inbound.handled_before(session, key) is not None:
            return Handled("repeated", f"message {letter.message_id or key[:12]} was handled before")
        reply = _act_on_letter(ctx, session, role, letter, now)
        answer = reply.answer is not None and reply.to is not None and letter.automatic is None
        if answer and stored_inbound.answers_since(session, reply.to, now - timedelta(days=1)) >= (
            settings.inbound_answers_per_day
        ):
            log.warning(
                "inbound: no answer to %s, who had %d today", reply.to, settings.inbound_answers_per_day
            )
            answer = False
        row = stored_inbound.record(
            session, key, reply.to or letter.sender, role, reply.outcome, reply.detail, now
        )
        if row is None:  # the same message, handled at this moment by another process
            return Handled("repeated", f"message {letter.message_id or key[:12]} was handled before")
        session.commit()
        row_id = row.id
    answered = answer and _answer(ctx, role, letter, reply, now)
    if answered:
        with ctx.database.begin() as session:
            stored_inbound.mark_answered(session, row_id, now)
    return Handled(reply.outcome, reply.detail, None, reply.to, answered)


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one read of the IMAP mailbox did: the outcome of each message handled, in order, and
    how many went to the failed folder."""

    outcomes: tuple[str, ...]
    failed: int


def fetch(ctx: Context, limit: int | None = None) -> Fetched:
    """Handle each message waiting in ``inbound_imap_url``'s folder (at most ``limit``), oldest
    first, moving it to inbound_imap_done once handled, or to inbound_imap_failed when it cannot be
    read. A message is moved only after it is handled, and handled once however often it is read,
    so a crash at any point loses nothing and repeats nothing. Raises MailboxError, or what the
    database raises (the message then waits for the next read)."""
    from digest.inbound.mailbox import opened

    settings = ctx.settings
    assert settings.inbound_imap_url is not None
    outcomes: list[str] = []
    failed = 0
    with opened(settings.inbound_imap_url.get_secret_value(), settings.smtp_timeout) as mailbox:
        for waiting in mailbox.waiting()[:limit]:
            if waiting.size > settings.inbound_max_bytes:
                handled = Handled("too-large", f"{waiting.size} bytes")
                log.warning("inbound too-large: message %s of %d bytes", waiting.uid, waiting.size)
            else:
                raw = mailbox.read(waiting.uid)
                if raw is None:
                    continue  # gone meanwhile (another reader moved it)
                handled = handle(ctx, raw, (), envelope_sender=_return_path(raw))
            unreadable = handled.outcome in UNREADABLE
            mailbox.move(
                waiting.uid, settings.inbound_imap_failed if unreadable else settings.inbound_imap_done
            )
            failed += unreadable
            outcomes.append(handled.outcome)
    return Fetched(tuple(outcomes), failed)


def _return_path(raw: bytes) -> str | None:
    """The envelope sender a delivering MTA wrote into Return-Path ("" for the null sender)."""
    try:
        value = _headers(raw).get("Return-Path")
    except Exception:  # outside text: a header that cannot be read names nobody
        return None
    return None if value is None else str(value).strip().strip("<>")


def _headers(raw: bytes) -> Message:
    """The header block of ``raw`` alone (the body is not parsed)."""
    return BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)


def _act_on_letter(ctx: Context, session: Session, role: str, letter: Letter, now: datetime) -> Reply:
    """Act on a person's message; one a program sent is acted on only when it is an unsubscribe
    (a mail client's unsubscribe button may mark its message auto-submitted), never answered."""
    machine = letter.automatic is not None and not letter.automatic.startswith("Auto-Submitted")
    if letter.sender is None or (machine if role == UNSUBSCRIBE else letter.automatic is not None):
        return Reply("ignored", letter.automatic or "no sender address")
    if role == UNSUBSCRIBE:
        return mail_commands.unsubscribe(ctx, session, letter, now)
    return mail_commands.commands(ctx, session, letter, now)


def _answer(ctx: Context, role: str, letter: Letter, reply: Reply, now: datetime) -> bool:
    """Mail ``reply``'s answer from the address written to; True when the server took it."""
    assert reply.answer is not None and reply.to is not None
    settings = ctx.settings
    address = settings.unsubscribe_mailto if role == UNSUBSCRIBE else settings.commands_address
    identity = dataclasses.replace(ctx.identity, address=address or settings.mail_from, bounce_address=None)
    rendered = ctx.notices.answer(reply.answer)
    message_id = new_message_id(settings.mail_domain, f"answer.{now:%Y%m%d}")
    envelope = Envelope(reply.to, message_id, now, None, in_reply_to=letter.message_id, auto_replied=True)
    data = build_message(identity, envelope, rendered.subject, rendered.text, rendered.html)
    quick = settings.model_copy(update={"smtp_data_timeout": settings.smtp_timeout})
    with transport_for(quick) as transport:
        [outcome] = transport.deliver([Outgoing(0, "", checked_address(reply.to), message_id, data)])
    if not outcome.ok:
        log.warning("inbound: the answer to %s did not go: %s", reply.to, outcome.error)
    return outcome.ok


def takes(ctx: Context, address: str) -> bool:
    """Whether mail to ``address`` is digest's to read (its From, bounce, unsubscribe or commands
    address, with any +tag)."""
    return base_address(address) in _ours(ctx)


def _ours(ctx: Context) -> frozenset[str]:
    settings = ctx.settings
    found = (
        settings.mail_from,
        settings.bounce_address,
        settings.unsubscribe_mailto,
        settings.commands_address,
    )
    return frozenset(base_address(address) for address in found if address)


def _role(ctx: Context, addresses: Sequence[str]) -> str:
    """What the first of ``addresses`` that is one of ours takes (reports when none is)."""
    settings = ctx.settings
    roles = {
        base_address(address): role
        for address, role in (
            (settings.bounce_address, REPORTS),
            (settings.unsubscribe_mailto, UNSUBSCRIBE),
            (settings.commands_address, COMMANDS),
        )
        if address
    }
    for address in addresses:
        if base_address(address) in roles:
            return roles[base_address(address)]
    return REPORTS


def _addressed_to(raw: bytes) -> list[str]:
    """The addresses a message says it came to (Delivered-To, X-Original-To, To, Cc), for a
    message handed over without its envelope."""
    try:
        headers = _headers(raw)
        values = [
            str(value)
            for name in ("Delivered-To", "X-Original-To", "To", "Cc")
            for value in headers.get_all(name, [])
        ]
        return [address for _, address in getaddresses(values) if address]
    except Exception:  # outside text: a header that cannot be read names nobody
        return []


def _report(ctx: Context, report: Report, recipients: Sequence[str], now: datetime) -> Handled:
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
