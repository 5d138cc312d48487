"""Feedback: "more like this" and "less like this" on papers; the one path that records it, for
every entry point (the command line today)."""

from __future__ import annotations

from typing import Any

from digest.model.feedback import FeedbackOrigin, Verdict
from digest.store import feedback as stored
from digest.usecases.context import Context
from digest.usecases.papers import require_paper
from digest.usecases.subscribers import require_subscriber

__all__ = ["Verdict", "give", "listing"]

WORDS = {Verdict.UP: "up", Verdict.DOWN: "down"}


def give(
    ctx: Context, email: str, paper: str, verdict: Verdict | None, origin: FeedbackOrigin = FeedbackOrigin.CLI
) -> dict[str, Any]:
    """Record the subscriber's ``verdict`` on ``paper`` (an id as `digest score --json` prints it, an
    arXiv id or URL), or take it back when None. Returns what now stands and whether that changed.
    Raises UsageError for an unknown subscriber or paper."""
    now = ctx.now()
    with ctx.database.begin() as session:
        subscriber = require_subscriber(session, email)
        found = require_paper(session, paper)
        before = stored.of_subscribers(session, [subscriber.id]).get(subscriber.id, {}).get(found.id)
        if verdict is None:
            stored.clear(session, subscriber.id, found.id)
        else:
            stored.record(session, subscriber.id, {found.id: int(verdict)}, origin, now)
        after = None if verdict is None else int(verdict)
        return {
            "email": subscriber.email,
            "id": found.id,
            "title": found.title,
            "feedback": WORDS.get(Verdict(after)) if after is not None else None,
            "changed": before != after,
        }


def listing(ctx: Context, email: str) -> list[dict[str, Any]]:
    """The subscriber's feedback, newest first: id, title, up or down, where and when it was given.
    Raises UsageError for an unknown subscriber."""
    with ctx.session() as session:
        subscriber = require_subscriber(session, email)
        return [
            {
                "id": row.paper_id,
                "title": title,
                "feedback": WORDS[Verdict(row.value)],
                "origin": row.origin,
                "updated_at": row.updated_at.isoformat(timespec="seconds"),
            }
            for row, title in stored.of_subscriber(session, subscriber.id)
        ]
