"""Digests: ranking papers for interests (``digest score``), previewing a digest, the send with its
dry run and test send, the daily run, and showing a sent digest in the browser.

A preview, a dry run and a test send make their mail by the same path as the real send
(digest.deliver.messages), from papers chosen by the same Composer, and the dry run and test send
plan and claim with the real send's planner and ledger reads (digest.deliver.sender), so none of
them can drift from what subscribers get.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from digest.compose.choose import Composed, Composer, Job, digest_of, profile_of
from digest.compose.digest import Digest, Item
from digest.compose.tldr import tldr
from digest.deliver.messages import PLACEHOLDER_TOKEN
from digest.deliver.sender import Mode, RowResult, Sender, Summary
from digest.errors import UsageError
from digest.mail.message import new_message_id
from digest.mail.transports import Outgoing, Transport, transport_for
from digest.model.subscriber import SubscriberStatus
from digest.model.time import utc, zone
from digest.render import snippet
from digest.score.explain import explain, listed_terms
from digest.score.latex import readable
from digest.store import ledger, papers
from digest.store.engine import Session
from digest.store.models import Subscriber
from digest.store.reader import StoreReader
from digest.usecases import sources
from digest.usecases.context import Context
from digest.usecases.preferences import Preferences, check_interests, normalise_email
from digest.usecases.subscribers import CHOSEN, TokenError, account_of, require_subscriber

__all__ = ["RowResult", "Summary", "TokenError", "listed_terms"]
ADHOC_EMAIL = "preview@example.org"


def _subscriber(session: Session, email: str | None, adhoc: str | None) -> Subscriber:
    """The subscriber ``email``, or one that is not stored with the ``adhoc`` interests."""
    if (email is None) == (adhoc is None):
        raise UsageError("Give a subscriber's EMAIL or --interests TEXT (one of them).")
    if email is not None:
        return require_subscriber(session, email)
    return Subscriber(
        id=0,
        email=ADHOC_EMAIL,
        interests=check_interests(adhoc or ""),
        timezone="UTC",
        send_hour=0,
        frequency="daily",
        max_papers=10,
        min_score=0.0,
        trending_section=True,
    )


def composer(ctx: Context, session: Session) -> Composer:
    """A composer over ``session``, with the process's semantic space."""
    return Composer(ctx.settings, StoreReader(session), ctx.weights, space=lambda: ctx.space(session))


# --- score ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """The ranked papers of ``digest score``: one JSON-ready row each, out of ``considered``, which
    ``chosen_from`` describes ("all listed papers", "papers listed on …" or a digest's window)."""

    rows: list[dict[str, Any]]
    considered: int
    chosen_from: str
    digest_date: date | None = None  # the digest's, unless --listed or --all chose the papers
    sent_before: int = 0  # the window's papers left out as sent to the subscriber before
    already_sent: tuple[datetime, str] | None = None  # when and with which Message-ID, that date's


def score(
    ctx: Context,
    email: str | None = None,
    adhoc: str | None = None,
    *,
    digest_date: date | None = None,
    listed: date | None = None,
    every: bool = False,
    limit: int | None = None,
) -> Scored:
    """Rank papers for a subscriber's (or ad-hoc) interests, each with why. By default the papers
    the digest for ``digest_date`` (default: their local today) chooses from, as preview and send
    choose them; or those a source listed on ``listed``; or ``every`` stored paper. Raises
    UsageError (or InterestError) for what cannot be used."""
    if every + (listed is not None) + (digest_date is not None) > 1:
        raise UsageError("Give at most one of --date, --listed and --all.")
    now = ctx.now()
    with ctx.session() as session:
        subscriber = _subscriber(session, email, adhoc)
        profile = profile_of(subscriber)
        choosing = composer(ctx, session)
        day, sent_before, already_sent = None, 0, None
        if every or listed is not None:
            pool = choosing.pool(papers.listed_papers(session, listed))
            chosen_from = "all listed papers" if every else f"papers listed on {listed}"
        else:
            job, at = _job(session, subscriber, now, digest_date)
            window, pool, sent_before = choosing.candidates(job, at)
            chosen_from = f"papers new for the digest of {job.digest_date}"
            if window is not None:
                span = f"{window.after:%Y-%m-%d %H:%M} to {window.until:%Y-%m-%d %H:%M} UTC"
                chosen_from += f" (first seen {span})"
            day, already_sent = job.digest_date, _sent_on(session, subscriber, job.digest_date)
        profile = replace(profile, limit=limit or subscriber.max_papers)
        [profile] = choosing.with_feedback([profile], [subscriber.id])
        index, picks, liked = choosing.rank(pool, profile)
    said = {paper for paper, _ in profile.feedback}  # left out, as the digest leaves them out
    rows = []
    for pick in picks:
        doc = index.docs[pick.doc]
        if doc.id in said:
            continue
        why = explain(index, pick, profile)
        near = profile.liked_for(pick)
        rows.append(
            {
                "id": doc.id,
                "title": readable(doc.title),
                "tldr": tldr(pool.papers[doc.id].ai_summary, doc.abstract),
                "score": round(pick.score, 4),
                "relevance": round(pick.relevance, 4),
                "trending": round(pick.trending, 4),
                "upvotes": doc.upvotes,
                "line": why.line,
                "matched": why.matched,
                "fields": why.fields,
                "liked": {"id": near, "title": liked.get(near, "")} if near else None,
                "snippet": snippet.text(why.snippet),
                "snippet_html": snippet.html(why.snippet),
            }
        )
    return Scored(rows, len(pool.docs), chosen_from, day, sent_before, already_sent)


def _sent_on(session: Session, subscriber: Subscriber, day: date) -> tuple[datetime, str] | None:
    """When and with which Message-ID the subscriber's digest for ``day`` went, if it did."""
    sent = ledger.sent_on(session, subscriber.id, day) if subscriber.id else None
    if sent is None or sent.sent_at is None:
        return None
    return sent.sent_at, sent.message_id or "no Message-ID"


# --- preview ----------------------------------------------------------------------------------


@dataclass
class Preview:
    """A digest as it would be mailed, with placeholder links; ``message`` is the whole MIME mail."""

    composed: Composed
    digest: Digest
    subject: str
    text: str
    html: str
    message: bytes
    outgoing: Outgoing
    already_sent: tuple[datetime, str] | None = None  # when and with which Message-ID, that date's


def _job(
    session: Session,
    subscriber: Subscriber,
    now: datetime,
    digest_date: date | None,
    liked: tuple[str, ...] = (),
) -> tuple[Job, datetime]:
    """The digest ``subscriber`` gets for ``digest_date`` (default: their local today) and the
    moment it is made: ``now`` for today, the end of that day (where they are) for a past date.
    Raises UsageError for an unknown time zone or a date after their local today."""
    now = utc(now)
    try:
        here = zone(subscriber.timezone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise UsageError(
            f"{subscriber.email} has an unknown time zone {subscriber.timezone!r}; "
            "fix it with `digest subscribers edit --tz`."
        ) from None
    today = now.astimezone(here).date()
    day = digest_date or today
    if day > today:
        raise UsageError(
            f"--date {day.isoformat()} is in the future in {subscriber.timezone} (today there is "
            f"{today.isoformat()}): a digest holds what was stored by its date. Give today or a past date."
        )
    at = now if day == today else datetime.combine(day + timedelta(days=1), datetime.min.time(), here)
    previous = ledger.previous_papers_until(session, [subscriber.id], day) if subscriber.id else {}
    return Job(subscriber, day, previous.get(subscriber.id), liked=liked), min(now, utc(at))


def preview_of(
    ctx: Context,
    session: Session,
    subscriber: Subscriber,
    now: datetime,
    digest_date: date | None = None,
    choosing: Composer | None = None,
    *,
    to: str | None = None,
    subject_prefix: str = "",
    liked: tuple[str, ...] = (),
) -> Preview:
    """What ``subscriber`` would get for ``digest_date`` (default: their local today) at ``now``,
    chosen and made as the send makes it (addressed to ``to`` instead, if given; as if they liked
    the papers ``liked`` too). Reads only. Raises UsageError for an unknown time zone or a date
    after their local today."""
    now = utc(now)
    job, at = _job(session, subscriber, now, digest_date, liked)
    [composed] = (choosing or composer(ctx, session)).compose([job], at)
    message_id = new_message_id(ctx.identity.domain, "preview")
    mail = ctx.mails.make(
        composed,
        token=PLACEHOLDER_TOKEN,
        message_id=message_id,
        now=now,
        to=to,
        subject_prefix=subject_prefix,
    )
    rendered = mail.rendered
    return Preview(
        composed, mail.digest, mail.subject, rendered.text, rendered.html, mail.outgoing.data, mail.outgoing
    )


def preview(
    ctx: Context, email: str | None = None, adhoc: str | None = None, *, digest_date: date | None = None
) -> Preview:
    """What a subscriber (or ad-hoc interests) would get for ``digest_date``, now. Raises
    UsageError for what cannot be used, including interests that do not parse."""
    now = ctx.now()
    with ctx.session() as session:
        subscriber = _subscriber(session, email, adhoc)
        result = preview_of(ctx, session, subscriber, now, digest_date)
        sent = _sent_on(session, subscriber, result.composed.job.digest_date)
    if result.composed.error:
        raise UsageError(result.composed.error)
    return dataclasses.replace(result, already_sent=sent)


@dataclass(frozen=True)
class WebPreview:
    """Today's digest as a page shows it: ``items`` matched the interests; ``trending`` is the
    "trending today" part (or everything, for empty interests)."""

    subject: str
    items: tuple[Item, ...]
    trending: tuple[Item, ...]


def web_preview(ctx: Context, wish: Preferences, now: datetime, liked: tuple[str, ...] = ()) -> WebPreview:
    """Today's digest for the (validated) preferences of a sign-up or preferences form, as if the
    reader liked the papers ``liked`` (a library given with a sign-up). Reads only."""
    subscriber = Subscriber(
        email=wish.email, status=SubscriberStatus.ACTIVE.value, created_at=now, updated_at=now, min_score=0.0
    )
    for name in CHOSEN:
        setattr(subscriber, name, getattr(wish, name))
    with ctx.session() as session:
        result = preview_of(ctx, session, subscriber, now, choosing=composer(ctx, session), liked=liked)
    digest = result.digest
    if not digest.has_interests:
        return WebPreview(result.subject, (), digest.items or digest.trending)
    return WebPreview(result.subject, digest.items, digest.trending)


def view_digest(ctx: Context, token: str, now: datetime, delivery_id: int | None = None) -> str | None:
    """The page of a sent digest: as it was mailed, with a link back to the preferences at the top
    and the subscriber's current interest lines
    for the explanations: the one manage token ``token`` came with, or the subscriber's
    ``delivery_id``. None when there is none (not theirs, not sent, or a token of no digest).
    Raises TokenError for a link that does not work."""
    with ctx.session() as session:
        account, subscriber = account_of(session, token, now, ctx.settings.link_days)
        wanted = account.delivery_id if delivery_id is None else delivery_id
        delivery = ledger.get(session, wanted) if wanted is not None else None
        if delivery is None or delivery.subscriber_id != subscriber.id:
            return None
        if delivery_id is not None and delivery.status != "sent":
            return None
        job = Job(subscriber, delivery.digest_date, None, delivery.id)
        composed = composer(ctx, session).recompose(job, delivery.papers)
    return ctx.renderer.page(digest_of(composed, ctx.settings.base_url, token))


# --- send -------------------------------------------------------------------------------------


def _sender(ctx: Context, transport: Transport | None, **options: Any) -> Sender:
    """The send loop over the context's database, identity and renderer; leases on the real time."""
    return Sender(
        ctx.settings,
        ctx.database,
        transport,
        identity=ctx.identity,
        renderer=ctx.renderer,
        clock=ctx.wall,
        **options,
    )


def send(
    ctx: Context,
    now: datetime,
    *,
    only: str | None = None,
    progress: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """Send every digest due at ``now`` (only ``only``'s, if given). Raises ConfigError for mail
    settings that cannot be used."""
    only = normalise_email(only) if only else None
    with transport_for(ctx.settings) as transport:
        return _sender(ctx, transport, progress=progress, stop=stop).run(
            now, only, sources.standing(ctx, now)
        )


def dry_run(ctx: Context, now: datetime, *, only: str | None = None) -> Summary:
    """What ``send`` would do at ``now``: each digest it would send or skip (``Summary.rows``), with
    its subject and papers. Sends and stores nothing."""
    only = normalise_email(only) if only else None
    return _sender(ctx, None, mode=Mode.DRY_RUN).run(now, only, sources.standing(ctx, now))


def test_send(ctx: Context, now: datetime, to: str, *, only: str | None = None) -> Summary:
    """Mail every digest due at ``now`` to ``to`` instead, subject marked "[test]"; records nothing.
    With ``only``, that subscriber's digest goes even when none is due (sent already today, or
    before their hour): the one preview makes for their local today. Raises UsageError for an
    unknown ``only``."""
    only = normalise_email(only) if only else None
    recipient = normalise_email(to)
    with transport_for(ctx.settings) as transport:
        summary = _sender(ctx, transport, mode=Mode.TEST, test_to=recipient).run(now, only)
        if only and not summary.rows:
            summary.rows = [_test_preview(ctx, transport, only, recipient, now)]
    return summary


def _test_preview(ctx: Context, transport: Transport, email: str, to: str, now: datetime) -> RowResult:
    """Mail ``email``'s digest for their local today to ``to``, as preview makes it."""
    with ctx.session() as session:
        subscriber = _subscriber(session, email, None)
        made = preview_of(ctx, session, subscriber, now, to=to, subject_prefix="[test] ")
    day, papers = made.composed.job.digest_date, len(made.digest.items)
    if made.digest.empty:
        return RowResult(0, email, day, "skipped", error="no new paper matched")
    outcome = transport.deliver_one(made.outgoing)
    status = "sent" if outcome.ok else "failed-temporary"
    return RowResult(0, email, day, status, subject=made.subject, papers=papers, error=outcome.error)
