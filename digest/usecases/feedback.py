"""Feedback: "more like this" and "less like this" on papers; the one path that records it, for
every entry point (the command line, a digest's links, the preferences page)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from digest.model.feedback import FeedbackOrigin, Verdict
from digest.parse.record import paper_key
from digest.score.interests import InterestError, parse_with_seeds
from digest.score.latex import readable
from digest.store import feedback as stored
from digest.store.engine import Session
from digest.store.models import Subscriber
from digest.usecases.context import Context
from digest.usecases.papers import require_paper
from digest.usecases.subscribers import account_of, require_subscriber

__all__ = [
    "FeedbackOrigin",
    "Verdict",
    "about",
    "give",
    "give_by_link",
    "listing",
    "of_account",
]

WORDS = {Verdict.UP: "up", Verdict.DOWN: "down"}


def give(
    ctx: Context, email: str, paper: str, verdict: Verdict | None, origin: FeedbackOrigin = FeedbackOrigin.CLI
) -> dict[str, Any]:
    """Record the subscriber's ``verdict`` on ``paper`` (an id as `digest score --json` prints it, an
    arXiv id or URL), or take it back when None. Returns what now stands and whether that changed.
    Raises UsageError for an unknown subscriber or paper."""
    now = ctx.now()
    with ctx.database.begin() as session:
        return _give(session, require_subscriber(session, email), paper, verdict, origin, now)


def give_by_link(
    ctx: Context, token: str, paper: str, verdict: Verdict | None, origin: FeedbackOrigin, now: datetime
) -> dict[str, Any]:
    """Record (or take back, when None) the word of the owner of manage token ``token`` (a digest's
    or the preferences page's link) on ``paper``. Raises TokenError for a link that does not work,
    UsageError for a paper not stored."""
    with ctx.database.begin() as session:
        _, subscriber = account_of(session, token, now, ctx.settings.link_days)
        return _give(session, subscriber, paper, verdict, origin, now)


def about(ctx: Context, token: str, paper: str, now: datetime) -> dict[str, Any]:
    """What a feedback link is about: the paper's id and title, and the word on it that stands
    (up, down or None). Reads only. Raises TokenError for a link that does not work, UsageError for
    a paper not stored."""
    with ctx.session() as session:
        account, _ = account_of(session, token, now, ctx.settings.link_days)
        found = require_paper(session, paper)
        said = stored.one(session, account.subscriber_id, found.id)
        return {"id": found.id, "title": readable(found.title), "feedback": _word(said)}


def _give(
    session: Session,
    subscriber: Subscriber,
    paper: str,
    verdict: Verdict | None,
    origin: FeedbackOrigin,
    now: datetime,
) -> dict[str, Any]:
    found = require_paper(session, paper)
    before = stored.one(session, subscriber.id, found.id)
    if verdict is None:
        stored.clear(session, subscriber.id, found.id)
    else:
        stored.record(session, subscriber.id, {found.id: int(verdict)}, origin, now)
    after = None if verdict is None else int(verdict)
    return {
        "email": subscriber.email,
        "id": found.id,
        "title": readable(found.title),
        "feedback": _word(after),
        "changed": before != after,
        "seed": _is_seed(subscriber.interests, found.id),
    }


def _is_seed(interests: str, paper_id: str) -> bool:
    """Does a ``like:`` line of ``interests`` name the paper (so it counts as liked whatever is said)?"""
    try:
        _, seeds = parse_with_seeds(interests)
    except InterestError:
        return False
    return any(paper_key(seed) == paper_id for seed in seeds)


def _word(value: int | None) -> str | None:
    return None if value is None else WORDS[Verdict(value)]


def listing(ctx: Context, email: str) -> list[dict[str, Any]]:
    """The subscriber's feedback, newest first: id, title, up or down, where and when it was given.
    Raises UsageError for an unknown subscriber."""
    with ctx.session() as session:
        return _listing(session, require_subscriber(session, email).id)


def of_account(ctx: Context, subscriber_id: int, most: int) -> tuple[list[dict[str, Any]], int]:
    """The ``most`` newest feedback of ``subscriber_id`` (an Account's), as ``listing`` gives it,
    and how many papers they rated in all. Reads only."""
    with ctx.session() as session:
        return _listing(session, subscriber_id, most), stored.count(session, subscriber_id)


def _listing(session: Session, subscriber_id: int, most: int | None = None) -> list[dict[str, Any]]:
    return [
        {
            "id": row.paper_id,
            "title": readable(title),
            "feedback": WORDS[Verdict(row.value)],
            "origin": row.origin,
            "updated_at": row.updated_at.isoformat(timespec="seconds"),
        }
        for row, title in stored.of_subscriber(session, subscriber_id, most)
    ]
