"""The ledger as ``digest deliveries`` shows it, and retrying a failed digest."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from digest.errors import UsageError
from digest.model.ledger import STATUSES
from digest.store import ledger, papers
from digest.store import subscribers as stored_subscribers
from digest.store.models import Delivery
from digest.usecases.context import Context

__all__ = ["STATUSES"]


def delivery_json(row: Delivery, email: str) -> dict[str, Any]:
    def stamp(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "id": row.id,
        "email": email,
        "date": row.digest_date.isoformat(),
        "status": row.status,
        "attempts": row.attempts,
        "message_id": row.message_id,
        "subject": row.subject,
        "smtp_code": row.smtp_code,
        "error": row.last_error,
        "sent_at": stamp(row.sent_at),
        "next_attempt_at": stamp(row.next_attempt_at),
        "give_up_at": stamp(row.give_up_at),
        "papers_after": stamp(row.papers_after),
        "papers_until": stamp(row.papers_until),
        "created_at": stamp(row.created_at),
        "updated_at": stamp(row.updated_at),
        "report": row.report,
        "reported_at": stamp(row.reported_at),
    }


def list_deliveries(
    ctx: Context, *, day: date | None = None, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Ledger rows, newest first."""
    with ctx.session() as session:
        return [
            delivery_json(row, email)
            for row, email in ledger.listing(session, day=day, status=status, limit=limit)
        ]


def _require(session: Any, delivery_id: int) -> Delivery:
    row = ledger.get(session, delivery_id)
    if row is None:
        raise UsageError(f"No delivery {delivery_id}. See `digest deliveries list`.")
    return row


def show_delivery(ctx: Context, delivery_id: int) -> dict[str, Any]:
    """One ledger row with the papers it held. Raises UsageError for an unknown id."""
    with ctx.session() as session:
        row = _require(session, delivery_id)
        data = delivery_json(row, stored_subscribers.subscriber_by_id(session, row.subscriber_id).email)
        titles = papers.titles(session, [paper.paper_id for paper in row.papers])
        data["papers"] = [
            {
                "id": paper.paper_id,
                "title": titles.get(paper.paper_id),
                "section": paper.section,
                "score": round(paper.score, 4),
                "line": paper.line,
            }
            for paper in row.papers
        ]
    return data


def retry(ctx: Context, delivery_id: int, now: datetime) -> None:
    """Make a failed digest due again from ``now`` (same papers, same Message-ID). Raises
    UsageError for an unknown id or a row that is not failed."""
    with ctx.session() as session:
        row = _require(session, delivery_id)
        if not ledger.retry(session, delivery_id, now, ctx.settings.retry_deadline):
            raise UsageError(f"Delivery {delivery_id} is {row.status}; only failed ones can be retried.")
