"""Sign-up, confirmation, link tokens and unsubscription: what the web front does to subscribers.

Each function takes a Session and commits. A token is looked up by its SHA-256 only; every refusal
is a TokenError saying what the reader can do, and says the same for a token that never existed as
for one that expired, so links cannot be probed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest import queries
from digest.config import Settings
from digest.errors import DigestError
from digest.models import Delivery, FetchLog, Subscriber, Token
from digest.subscribers import Preferences
from digest.tokens import new_token, token_hash

NOTICE_PURPOSES = ("confirm", "manage")
# What a sign-up may set; the address and status are never taken from a form.
CHOSEN = ("interests", "timezone", "send_hour", "frequency", "weekly_day", "max_papers", "trending_section")


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


@dataclass(frozen=True, slots=True)
class Notice:
    """A mail about a subscription, to send once the sign-up is stored: ``kind`` says which, ``token``
    is the link's secret (its hash is stored)."""

    kind: Literal["confirm", "manage"]
    email: str
    token: str


def sign_up(session: Session, wish: Preferences, now: datetime, settings: Settings) -> Notice | None:
    """Record a sign-up of the (validated) ``wish`` and return the mail to send: a confirmation for a
    new, pending or former subscriber (carrying the wished preferences, applied only on
    confirmation), a manage link for a current one. None when the address has had
    ``signup_per_address`` such mails in the last day. Nothing of an existing subscriber changes here.
    Commits."""
    subscriber = queries.subscriber_by_email(session, wish.email)
    if subscriber is None:
        subscriber = _new_pending(session, wish, now)
    # Take the subscriber's row (on SQLite, the write lock) before counting: sign-ups of one address
    # at the same moment then count each other's mails.
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber.id)
        .values(updated_at=Subscriber.updated_at)
        .execution_options(synchronize_session=False)
    )
    if mails_in_last_day(session, subscriber.id, now) >= settings.signup_per_address:
        session.rollback()
        return None
    token, hashed = new_token()
    if subscriber.status in ("active", "paused"):
        kind: Literal["confirm", "manage"] = "manage"
        expires, payload = now + timedelta(days=settings.link_days), None
    else:
        kind = "confirm"
        expires = now + timedelta(hours=settings.confirm_hours)
        payload = {name: value for name, value in asdict(wish).items() if name in CHOSEN}
    session.add(
        Token(
            token_hash=hashed,
            purpose=kind,
            subscriber_id=subscriber.id,
            created_at=now,
            expires_at=expires,
            payload=payload,
        )
    )
    session.commit()
    return Notice(kind, subscriber.email, token)


def _new_pending(session: Session, wish: Preferences, now: datetime) -> Subscriber:
    values = {name: getattr(wish, name) for name in CHOSEN}
    subscriber = Subscriber(
        email=wish.email, status="pending", created_at=now, updated_at=now, min_score=0.0, **values
    )
    session.add(subscriber)
    try:
        session.flush()
    except IntegrityError:  # the same address signed up at the same moment elsewhere
        session.rollback()
        found = queries.subscriber_by_email(session, wish.email)
        assert found is not None
        return found
    return subscriber


def mails_in_last_day(session: Session, subscriber_id: int, now: datetime) -> int:
    """Confirmation and manage mails sent to a subscriber from the web front in the last 24 hours."""
    return session.scalar(
        select(func.count())
        .select_from(Token)
        .where(
            Token.subscriber_id == subscriber_id,
            Token.purpose.in_(NOTICE_PURPOSES),
            Token.delivery_id.is_(None),
            Token.created_at > now - timedelta(days=1),
        )
    )


def confirm(session: Session, token: str, now: datetime, settings: Settings) -> tuple[Subscriber, str]:
    """Use a confirmation token once: the subscriber becomes active with the preferences the sign-up
    asked for. Returns the subscriber and a fresh manage token for their preferences page. Raises
    TokenError for a token that is unknown, expired or used. Commits."""
    row = _lookup(session, token, ("confirm",), now, settings)
    used = session.execute(
        update(Token)
        .where(Token.id == row.id, Token.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not used.rowcount:
        session.rollback()
        raise TokenError(USED)
    subscriber = session.get_one(Subscriber, row.subscriber_id)
    for name, value in (row.payload or {}).items():
        if name in CHOSEN:
            setattr(subscriber, name, value)
    subscriber.status = "active"
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    subscriber.hard_bounces = 0
    subscriber.updated_at = now
    manage = issue_manage_token(session, subscriber.id, now, settings)
    session.commit()
    return subscriber, manage


def issue_manage_token(session: Session, subscriber_id: int, now: datetime, settings: Settings) -> str:
    """A new manage token for a subscriber (added to the session, not committed)."""
    token, hashed = new_token()
    session.add(
        Token(
            token_hash=hashed,
            purpose="manage",
            subscriber_id=subscriber_id,
            created_at=now,
            expires_at=now + timedelta(days=settings.link_days),
        )
    )
    return token


def check_confirm(session: Session, token: str, now: datetime, settings: Settings) -> Token:
    """The unused, unexpired confirmation token ``token``; raises TokenError. Reads only."""
    row = _lookup(session, token, ("confirm",), now, settings)
    if row.used_at is not None:
        raise TokenError(USED)
    return row


def manage(session: Session, token: str, now: datetime, settings: Settings) -> tuple[Token, Subscriber]:
    """The manage token ``token`` and its subscriber; raises TokenError. Reads only."""
    row = _lookup(session, token, ("manage",), now, settings)
    return row, session.get_one(Subscriber, row.subscriber_id)


def _lookup(
    session: Session, token: str, purposes: tuple[str, ...], now: datetime, settings: Settings
) -> Token:
    if not token or len(token) > 100:
        raise TokenError(REFUSED)
    row = session.scalar(select(Token).where(Token.token_hash == token_hash(token)))
    if row is None or row.purpose not in purposes or _expires(row, settings) <= now:
        raise TokenError(REFUSED)
    return row


def _expires(row: Token, settings: Settings) -> datetime:
    """When a token stops working; a digest's link tokens made before expiry was stored last link_days."""
    return row.expires_at or row.created_at + timedelta(days=settings.link_days)


def unsubscribe(session: Session, subscriber: Subscriber, now: datetime) -> bool:
    """Unsubscribe; True if this changed anything (a second call is harmless). Commits."""
    if subscriber.status == "unsubscribed":
        return False
    subscriber.status = "unsubscribed"
    subscriber.unsubscribed_at = now
    subscriber.updated_at = now
    session.commit()
    return True


def update_preferences(
    session: Session, subscriber: Subscriber, wish: Preferences, paused: bool, now: datetime
) -> None:
    """Store new preferences (validated) and pause or resume. An unsubscribed or bounced subscriber
    who saves is subscribed again (a bounced one with a clean slate); a pending one stays pending
    until confirmed. Commits."""
    for name in CHOSEN:
        setattr(subscriber, name, getattr(wish, name))
    if subscriber.status in ("unsubscribed", "bounced"):
        subscriber.unsubscribed_at = None
        subscriber.hard_bounces = 0
    if subscriber.status != "pending":
        subscriber.status = "paused" if paused else "active"
    subscriber.updated_at = now
    session.commit()


def wish_of(subscriber: Subscriber) -> Preferences:
    """A subscriber's current preferences, as a form starts from."""
    return Preferences(
        email=subscriber.email,
        status=subscriber.status,
        **{name: getattr(subscriber, name) for name in CHOSEN},
        min_score=subscriber.min_score,
    )


def clean_up(session: Session, now: datetime, settings: Settings) -> dict[str, int]:
    """Delete sign-ups never confirmed (pending, every confirmation link expired, no digest), then
    expired tokens and fetch log entries older than ``fetch_log_days``. Returns the counts deleted.
    Commits."""
    confirms = select(Token.subscriber_id).where(Token.purpose == "confirm")
    live = confirms.where(or_(Token.expires_at.is_(None), Token.expires_at >= now))
    unconfirmed = session.execute(
        delete(Subscriber).where(
            Subscriber.status == "pending",
            Subscriber.confirmed_at.is_(None),
            Subscriber.id.in_(confirms),
            Subscriber.id.not_in(live),
            ~exists().where(Delivery.subscriber_id == Subscriber.id),
        )
    ).rowcount
    tokens = session.execute(
        delete(Token).where(
            or_(
                Token.expires_at < now,
                Token.expires_at.is_(None) & (Token.created_at < now - timedelta(days=settings.link_days)),
            )
        )
    ).rowcount
    logs = session.execute(
        delete(FetchLog).where(FetchLog.started_at < now - timedelta(days=settings.fetch_log_days))
    ).rowcount
    session.commit()
    return {"unconfirmed": unconfirmed, "tokens": tokens, "fetch_log": logs}
