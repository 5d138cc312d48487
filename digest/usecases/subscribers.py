"""Subscribers: the one path that writes them, for the command line and the web front alike.

Operators add, edit, import and remove subscribers; readers sign up, confirm, change their
preferences and unsubscribe with the link tokens their mails carry. A change of status does the
same whoever makes it (digest.model.subscriber.status_change): a bounced subscriber made active
again from the command line or from their preferences page starts with a clean slate either way.

A token is looked up by its SHA-256 only; every refusal is a TokenError saying what the reader can
do, and says the same for a token that never existed as for one that expired, so links cannot be
probed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from digest.errors import DigestError, UsageError
from digest.mail.message import Envelope, build_message, new_message_id
from digest.mail.transports import Outcome, Outgoing, transport_for
from digest.model.address import checked_address
from digest.model.feedback import FeedbackOrigin, Verdict
from digest.model.ledger import CLAIMABLE
from digest.model.link_tokens import new_token, token_hash
from digest.model.subscriber import STATUSES, SubscriberStatus, next_digest_at, status_change
from digest.model.time import zone
from digest.store import feedback as stored_feedback
from digest.store import ledger
from digest.store import papers as stored_papers
from digest.store import subscribers as stored
from digest.store import tokens as stored_tokens
from digest.store.engine import Session
from digest.store.models import Delivery, Subscriber, Token
from digest.usecases.context import Context
from digest.usecases.preferences import COLUMNS, Preferences, from_csv, normalise_email, to_csv

__all__ = ["STATUSES", "Preferences", "TokenError"]
log = logging.getLogger(__name__)

# What a sign-up may set; the address and status are never taken from a form.
CHOSEN = ("interests", "timezone", "send_hour", "frequency", "weekly_day", "max_papers", "trending_section")
PAST_DIGESTS = 30
LIKED = "liked"  # the confirmation payload's papers the sign-up named


class TokenError(DigestError):
    """A link that does not (or no longer) work."""

    exit_code = 2


REFUSED = (
    "This link does not work: it may have expired or been mistyped. "
    "The links in your latest digest always work; or sign up again to get a new one."
)
USED = (
    "This confirmation link was used already. If it was you, your subscription is active: "
    "the links in any digest manage it."
)


# --- the one write path -----------------------------------------------------------------------


def preferences_of(subscriber: Subscriber) -> Preferences:
    """A subscriber's current preferences (every CSV column)."""
    return Preferences(
        email=subscriber.email,
        status=subscriber.status,
        interests=subscriber.interests,
        timezone=subscriber.timezone,
        send_hour=subscriber.send_hour,
        frequency=subscriber.frequency,
        weekly_day=subscriber.weekly_day or "",
        max_papers=subscriber.max_papers,
        min_score=subscriber.min_score,
        trending_section=subscriber.trending_section,
    )


def _apply(subscriber: Subscriber, record: Preferences, now: datetime, *, confirming: bool = False) -> None:
    """Store validated preferences on a row, its status moving by the one rule of status changes."""
    values: dict[str, Any] = {
        name: (getattr(record, name) or None) if name == "weekly_day" else getattr(record, name)
        for name in COLUMNS
        if name not in ("email", "status")
    }
    current = subscriber.status or SubscriberStatus.PENDING
    values.update(status_change(current, record.status, subscriber.confirmed_at, now, confirming=confirming))
    stored.set_values(subscriber, values)


def require_subscriber(session: Session, email: str) -> Subscriber:
    """The subscriber ``email``; raises UsageError naming `digest subscribers list` when none."""
    subscriber = stored.subscriber_by_email(session, normalise_email(email))
    if subscriber is None:
        raise UsageError(f"No subscriber {email!r}. See `digest subscribers list`.")
    return subscriber


def subscriber_json(subscriber: Subscriber) -> dict[str, Any]:
    data = asdict(preferences_of(subscriber))
    for name in ("created_at", "confirmed_at", "unsubscribed_at", "updated_at"):
        value = getattr(subscriber, name)
        data[name] = value.isoformat(timespec="seconds") if value else None
    return data


def add(ctx: Context, email: str, changes: dict[str, Any], *, active: bool = False) -> Preferences:
    """Add a subscriber, pending until confirmed (or ``active``). Raises UsageError (or
    InterestError) for what cannot be used, and for an address subscribed already."""
    record = Preferences(email=email, status="active" if active else "pending", **changes).validated()
    now = ctx.now()
    with ctx.database.begin() as session:
        if stored.subscriber_by_email(session, record.email) is not None:
            raise UsageError(
                f"{record.email} is subscribed already; change it with `digest subscribers edit`."
            )
        subscriber = stored.new_subscriber(record.email, now, {})
        _apply(subscriber, record, now)
        stored.add(session, subscriber)
    return record


def edit(ctx: Context, email: str, changes: dict[str, Any]) -> str:
    """Change what ``changes`` gives; the rest stays. Returns the address. Raises UsageError."""
    with ctx.database.begin() as session:
        subscriber = require_subscriber(session, email)
        changed = dataclasses.replace(preferences_of(subscriber), **changes).validated()
        _apply(subscriber, changed, ctx.now())
        return subscriber.email


def list_subscribers(ctx: Context, status: str | None = None) -> list[dict[str, Any]]:
    with ctx.session() as session:
        return [subscriber_json(subscriber) for subscriber in stored.all_subscribers(session, status)]


def show(ctx: Context, email: str) -> dict[str, Any]:
    with ctx.session() as session:
        return subscriber_json(require_subscriber(session, email))


def remove(ctx: Context, email: str) -> str:
    """Delete a subscriber and everything stored about them; returns the address."""
    with ctx.database.begin() as session:
        subscriber = require_subscriber(session, email)
        stored.remove(session, subscriber)
        return subscriber.email


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import did: rows read, subscribers added (and of them, made active by ``active``)
    and updated; with ``confirm``, the pending ones mailed a confirmation link, and those whose
    mail could not be sent, with why."""

    rows: int
    added: int
    activated: int
    updated: int
    pending: int = 0  # pending after the import, never confirmed
    mailed: int = 0
    awaiting: int = 0  # with ``confirm``: pending ones not mailed again, their earlier link still valid
    unsent: tuple[tuple[str, str], ...] = ()  # (email, why)
    maybe_mailed: tuple[str, ...] = ()  # the connection was lost after the mail: it may have gone


def import_csv(ctx: Context, text: str, *, active: bool = False, confirm: bool = False) -> Imported:
    """Add or update subscribers from CSV text (as ``export_csv`` writes it). Every row is checked
    first, and one bad row imports nothing: UsageError lists every bad row by line. A new
    subscriber needs a status: its row's; or, for all of them, active with ``active`` (the operator
    vouches for their consent), or pending with ``confirm``, which then mails every pending,
    never confirmed subscriber of the file a confirmation link, as a sign-up on the web front
    gets (a pending one without it would wait for a confirmation nobody mailed); one whose earlier
    link is still unused and valid is not mailed again, so the same import can be run again after
    some mails failed (a link whose mail failed is deleted)."""
    if active and confirm:
        raise UsageError("Give --active or --confirm, not both.")
    rows, problems = from_csv(text)
    added = activated = updated = 0
    now = ctx.now()
    notices = []
    with ctx.database.begin() as session:
        checked = []
        for line, email, given in rows:
            subscriber = stored.subscriber_by_email(session, email)
            no_status = subscriber is None and "status" not in given
            if no_status and (active or confirm):
                status = SubscriberStatus.ACTIVE if active else SubscriberStatus.PENDING
                given = {**given, "status": status.value}
            base = preferences_of(subscriber) if subscriber else Preferences(email=email)
            try:
                record = dataclasses.replace(base, **given).validated()
            except UsageError as exc:
                problems.append((line, str(exc)))
                continue
            if no_status and not (active or confirm):
                problems.append(
                    (
                        line,
                        f"{email} is new and has no status: give one in a status column, import with "
                        "--active if they agreed to get the digest, or with --confirm to mail them a "
                        "confirmation link.",
                    )
                )
                continue
            activated += no_status and active
            checked.append((subscriber, record))
        if problems:
            count = f"{len(problems)} rows cannot" if len(problems) > 1 else "1 row cannot"
            listed = "\n".join(f"line {line}: {problem}" for line, problem in sorted(problems))
            raise UsageError(f"{count} be imported, so nothing was:\n{listed}")
        unconfirmed = []
        for subscriber, record in checked:
            if subscriber is None:
                subscriber = stored.add(session, stored.new_subscriber(record.email, now, {}))
                added += 1
            else:
                updated += 1
            _apply(subscriber, record, now)
            if subscriber.status == SubscriberStatus.PENDING and subscriber.confirmed_at is None:
                unconfirmed.append((subscriber, record))
        if confirm:
            session.flush()  # the new subscribers' ids, for their tokens
            ids = [subscriber.id for subscriber, _ in unconfirmed]
            linked = stored_tokens.with_live_confirmation(session, ids, now)
            notices = [
                ask_confirmation(ctx, session, subscriber, record, now)
                for subscriber, record in unconfirmed
                if subscriber.id not in linked
            ]
    unsent, maybe = [], []
    if notices:
        outcomes: list[Outcome] = []
        try:
            outcomes = send_notices(ctx, notices, now)
        finally:  # also on a setting at fault or an interrupt: a link not mailed must not count as mailed
            went = {key for key, outcome in enumerate(outcomes) if outcome.ok or outcome.maybe_sent}
            discard_unsent(ctx, [notice for key, notice in enumerate(notices) if key not in went])
        for notice, outcome in zip(notices, outcomes, strict=True):
            if outcome.maybe_sent:
                maybe.append(notice.email)
            elif not outcome.ok:
                unsent.append((notice.email, outcome.error or "not sent"))
    return Imported(
        len(rows),
        added,
        activated,
        updated,
        pending=len(unconfirmed),
        mailed=len(notices) - len(unsent) - len(maybe),
        awaiting=len(unconfirmed) - len(notices) if confirm else 0,
        unsent=tuple(unsent),
        maybe_mailed=tuple(maybe),
    )


def export_csv(ctx: Context) -> str:
    with ctx.session() as session:
        return to_csv(preferences_of(subscriber) for subscriber in stored.all_subscribers(session))


# --- the reader's side: sign-up, confirmation, preferences, unsubscription --------------------


def deliverable(email: str) -> str:
    """The address as mail is sent to it; raises MessageError for one that cannot be (a part
    before the @ that is not ASCII)."""
    return checked_address(email)


@dataclass(frozen=True, slots=True)
class Notice:
    """A mail about a subscription, to send once the sign-up is stored: ``kind`` says which, ``token``
    is the link's secret (its hash is stored)."""

    kind: Literal["confirm", "manage"]
    email: str
    token: str


@dataclass(frozen=True, slots=True)
class Account:
    """What a manage link shows: whose it is, their preferences, and the digest it came with."""

    subscriber_id: int
    email: str
    status: str
    wish: Preferences
    delivery_id: int | None


def wish_of(subscriber: Subscriber) -> Preferences:
    """A subscriber's current preferences, as a form starts from."""
    return Preferences(
        email=subscriber.email,
        status=subscriber.status,
        **{name: getattr(subscriber, name) for name in CHOSEN},
        min_score=subscriber.min_score,
    )


def sign_up(ctx: Context, wish: Preferences, now: datetime, liked: Sequence[str] = ()) -> Notice | None:
    """Record a sign-up of the (validated) ``wish`` and return the mail to send: a confirmation for a
    new, pending or former subscriber (carrying the wished preferences and the papers ``liked``,
    applied only on confirmation), a manage link for a current one. None when the address has had
    ``signup_per_address`` such mails in the last day. Nothing of an existing subscriber changes here."""
    settings = ctx.settings
    with ctx.session() as session:
        subscriber = stored.subscriber_by_email(session, wish.email)
        if subscriber is None:
            values = {name: getattr(wish, name) for name in CHOSEN}
            subscriber = stored.add_pending(session, wish.email, {**values, "min_score": 0.0}, now)
        # Take the subscriber's row (on SQLite, the write lock) before counting: sign-ups of one
        # address at the same moment then count each other's mails.
        stored.lock(session, subscriber.id)
        if (
            stored_tokens.notices_since(session, subscriber.id, now - timedelta(days=1))
            >= settings.signup_per_address
        ):
            session.rollback()
            return None
        if subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
            token, hashed = new_token()
            expires = now + timedelta(days=settings.link_days)
            stored_tokens.add(session, hashed, "manage", subscriber.id, now, expires, None)
            notice = Notice("manage", subscriber.email, token)
        else:
            notice = ask_confirmation(ctx, session, subscriber, wish, now, liked)
        session.commit()
        return notice


def ask_confirmation(
    ctx: Context,
    session: Session,
    subscriber: Subscriber,
    wish: Preferences,
    now: datetime,
    liked: Sequence[str] = (),
) -> Notice:
    """Store a confirmation token for ``subscriber`` (valid ``confirm_hours``; confirming applies
    ``wish`` and likes ``liked``) and return the mail that carries it."""
    token, hashed = new_token()
    expires = now + timedelta(hours=ctx.settings.confirm_hours)
    payload: dict[str, Any] = {name: value for name, value in asdict(wish).items() if name in CHOSEN}
    if liked:
        payload[LIKED] = list(liked)
    stored_tokens.add(session, hashed, "confirm", subscriber.id, now, expires, payload)
    return Notice("confirm", subscriber.email, token)


def _notice_mail(ctx: Context, notice: Notice, now: datetime, key: int = 0) -> Outgoing:
    settings = ctx.settings
    path = "confirm" if notice.kind == "confirm" else "preferences"
    rendered = ctx.notices.render(
        notice.kind, f"{settings.base_url}/{path}/{notice.token}", settings.confirm_hours
    )
    message_id = new_message_id(settings.mail_domain, f"{notice.kind}.{now:%Y%m%d}")
    envelope = Envelope(notice.email, message_id, now, None)
    data = build_message(ctx.identity, envelope, rendered.subject, rendered.text, rendered.html)
    return Outgoing(key, settings.mail_from, checked_address(notice.email), message_id, data)


def send_notices(ctx: Context, notices: Sequence[Notice], now: datetime) -> list[Outcome]:
    """Mail confirm or manage links, each once; the outcomes, in the order of ``notices``, say
    whether each went and, if not, whether a later try may (not ``permanent``). Raises only for
    what is not the mail server's doing (a setting at fault)."""
    settings = ctx.settings
    # Not RFC 5321's 10 minutes for the reply to the data: a lost reply is not retried (the mail may
    # have gone), and the web front's one sending thread must not wait that long on one mail.
    quick = settings.model_copy(update={"smtp_data_timeout": settings.smtp_timeout})
    with transport_for(quick) as transport:
        mails = (_notice_mail(ctx, notice, now, key) for key, notice in enumerate(notices))
        outcomes = {outcome.key: outcome for outcome in transport.deliver(mails)}
    return [outcomes[key] for key in range(len(notices))]


def discard_unsent(ctx: Context, notices: Sequence[Notice]) -> None:
    """Delete the links of ``notices`` whose mail surely did not go, so nothing counts them as
    mailed (a later ``import --confirm`` mails those subscribers again). Writes the database."""
    if notices:
        with ctx.database.begin() as session:
            stored_tokens.discard(session, [token_hash(notice.token) for notice in notices])


def send_notice(ctx: Context, notice: Notice, now: datetime) -> Outcome:
    """Mail a confirm or manage link, once (see send_notices)."""
    [outcome] = send_notices(ctx, [notice], now)
    return outcome


def lookup(session: Session, token: str, purposes: tuple[str, ...], now: datetime, link_days: int) -> Token:
    """The stored token ``token`` of one of ``purposes``, unexpired at ``now`` (used or not). Raises
    TokenError for one that is unknown, of another purpose or expired."""
    if not token or len(token) > 100:
        raise TokenError(REFUSED)
    row = stored_tokens.by_hash(session, token_hash(token))
    if row is None or row.purpose not in purposes:
        raise TokenError(REFUSED)
    # A digest's link tokens made before expiry was stored last link_days.
    expires = row.expires_at or row.created_at + timedelta(days=link_days)
    if expires <= now:
        raise TokenError(REFUSED)
    return row


def check_confirm(ctx: Context, token: str, now: datetime) -> None:
    """Raise TokenError unless ``token`` is an unused, unexpired confirmation token. Reads only."""
    with ctx.session() as session:
        row = lookup(session, token, ("confirm",), now, ctx.settings.link_days)
        if row.used_at is not None:
            raise TokenError(USED)


def confirm(ctx: Context, token: str, now: datetime) -> str:
    """Use a confirmation token once: the subscriber becomes active with the preferences the sign-up
    asked for, liking those of its papers that are stored (leaving earlier ratings as they are).
    Returns a fresh manage token for their preferences page. Raises TokenError for a token that is
    unknown, expired or used."""
    settings = ctx.settings
    with ctx.session() as session:
        row = lookup(session, token, ("confirm",), now, settings.link_days)
        if not stored_tokens.use(session, row.id, now):
            session.rollback()
            raise TokenError(USED)
        subscriber = confirmed(session, row, now)
        manage = manage_token(session, subscriber.id, now, settings.link_days)
        session.commit()
        return manage


def confirmed(session: Session, row: Token, now: datetime) -> Subscriber:
    """Make the subscriber of the (used) confirmation token ``row`` active with the preferences it
    carries, liking its papers that are stored; in the caller's session, which commits."""
    subscriber = stored.subscriber_by_id(session, row.subscriber_id)
    wish = dataclasses.replace(
        preferences_of(subscriber),
        status=SubscriberStatus.ACTIVE.value,
        **{name: value for name, value in (row.payload or {}).items() if name in CHOSEN},
    )
    _apply(subscriber, wish, now, confirming=True)
    liked = [str(paper) for paper in (row.payload or {}).get(LIKED, [])]
    if liked:
        known = stored_papers.titles(session, liked)
        present = [paper for paper in liked if paper in known]
        stored_feedback.add_new(session, subscriber.id, present, int(Verdict.UP), FeedbackOrigin.LIBRARY, now)
    return subscriber


def manage_token(session: Session, subscriber_id: int, now: datetime, link_days: int) -> str:
    token, hashed = new_token()
    stored_tokens.add(session, hashed, "manage", subscriber_id, now, now + timedelta(days=link_days))
    return token


def new_manage_token(ctx: Context, subscriber_id: int, now: datetime) -> str:
    """A new link token to a subscriber's preferences, valid for ``link_days``."""
    with ctx.database.begin() as session:
        return manage_token(session, subscriber_id, now, ctx.settings.link_days)


def account_of(session: Session, token: str, now: datetime, link_days: int) -> tuple[Account, Subscriber]:
    """The account of manage token ``token`` and its subscriber row; raises TokenError."""
    row = lookup(session, token, ("manage",), now, link_days)
    subscriber = stored.subscriber_by_id(session, row.subscriber_id)
    account = Account(
        subscriber.id, subscriber.email, subscriber.status, wish_of(subscriber), row.delivery_id
    )
    return account, subscriber


def next_digest(ctx: Context, account: Account, now: datetime) -> datetime | None:
    """When ``account``'s next digest goes out, in their time zone: ``now`` or a retry's time when
    their latest one is still to go out, else by the due rule after it. None when they are not
    active, or their time zone is unknown (the preferences form says so). Reads only."""
    if account.status != SubscriberStatus.ACTIVE:
        return None
    with ctx.session() as session:
        row = ledger.latest(session, account.subscriber_id)
    try:
        here = zone(account.wish.timezone)
        if row is not None and row.status in CLAIMABLE:  # still to go out, from next_attempt_at
            return max(now, row.next_attempt_at or now).astimezone(here)
        return next_digest_at(account.wish, now, row.digest_date if row is not None else None)
    except (KeyError, ValueError):
        return None


def account(ctx: Context, token: str, now: datetime) -> Account:
    """Whose manage token ``token`` is; raises TokenError. Reads only."""
    with ctx.session() as session:
        return account_of(session, token, now, ctx.settings.link_days)[0]


def save_preferences(ctx: Context, token: str, wish: Preferences, paused: bool, now: datetime) -> None:
    """Store new preferences (validated) and pause or resume. An unsubscribed or bounced subscriber
    who saves is subscribed again, with a clean slate; a pending one stays pending until confirmed.
    Raises TokenError."""
    with ctx.session() as session:
        _, subscriber = account_of(session, token, now, ctx.settings.link_days)
        status = subscriber.status
        if status != SubscriberStatus.PENDING:
            status = SubscriberStatus.PAUSED if paused else SubscriberStatus.ACTIVE
        chosen = {name: getattr(wish, name) for name in CHOSEN}
        record = dataclasses.replace(preferences_of(subscriber), status=status, **chosen)
        _apply(subscriber, record, now)
        session.commit()


def unsubscribe(ctx: Context, token: str, now: datetime) -> bool:
    """Unsubscribe the owner of manage token ``token``; True if this changed anything (a second call
    is harmless). Raises TokenError."""
    with ctx.session() as session:
        _, subscriber = account_of(session, token, now, ctx.settings.link_days)
        changed = stop_mailing(subscriber, now)
        session.commit()
        return changed


def change(subscriber: Subscriber, changes: dict[str, Any], now: datetime) -> None:
    """Apply ``changes`` (fields of Preferences) to ``subscriber``, validated, in the caller's
    session (which commits). Raises UsageError naming a field that cannot be used."""
    _apply(subscriber, dataclasses.replace(preferences_of(subscriber), **changes).validated(), now)


def stop_mailing(subscriber: Subscriber, now: datetime) -> bool:
    """Unsubscribe ``subscriber`` (in the caller's session, which commits); True if this changed
    anything."""
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        return False
    record = dataclasses.replace(preferences_of(subscriber), status=SubscriberStatus.UNSUBSCRIBED.value)
    _apply(subscriber, record, now)
    return True


def past_digests(ctx: Context, subscriber_id: int) -> Sequence[Delivery]:
    """A subscriber's latest sent digests, newest first (detached: read their dates and ids)."""
    with ctx.session() as session:
        return ledger.sent_digests(session, subscriber_id, PAST_DIGESTS)
