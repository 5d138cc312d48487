"""The stored papers, as ``digest papers`` shows them."""

from __future__ import annotations

from datetime import date
from typing import Any

from digest.errors import UsageError
from digest.model.figures import Figures
from digest.parse.record import paper_key
from digest.store import papers as stored
from digest.store.engine import Session
from digest.store.models import Paper
from digest.usecases.context import Context
from digest.usecases.sources import require


def paper_json(paper: Paper) -> dict[str, Any]:
    return {
        "id": paper.id,
        "version": paper.version,
        "title": paper.title,
        "authors": paper.authors,
        "abstract": paper.abstract,
        "published": paper.published.isoformat() if paper.published else None,
        "url": paper.abs_url,
        "pdf_url": paper.pdf_url,
        "hf_url": paper.hf_url,
        "categories": paper.categories,
        "github_repo": paper.github_repo,
        "project_page": paper.project_page,
        "ai_keywords": paper.ai_keywords,
        "ai_summary": paper.ai_summary,
        "first_seen_at": paper.first_seen_at.isoformat(timespec="seconds"),
        "updated_at": paper.updated_at.isoformat(timespec="seconds"),
    }


def list_papers(
    ctx: Context, *, since: date | None = None, source: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Stored papers newest first, each with its latest upvotes; optionally only those listed since
    a date or by one source. Raises UsageError for an unknown source."""
    with ctx.session() as session:
        source_id = require(session, source).id if source else None
        found = stored.list_papers(session, since=since, source_id=source_id, limit=limit)
        metrics = stored.latest_metrics(session, [paper.id for paper in found])
        return [{**paper_json(paper), "upvotes": metrics.get(paper.id, Figures()).upvotes} for paper in found]


def require_paper(session: Session, given: str) -> Paper:
    """The stored paper ``given`` names (see ``paper_key``); raises UsageError when none is stored."""
    paper_id = paper_key(given)
    # No stored id holds a NUL (PostgreSQL cannot even be asked for one).
    paper = None if "\x00" in paper_id else stored.papers_by_id(session, [paper_id]).get(paper_id)
    if paper is None:
        raise UsageError(f"No paper {paper_id!r} is stored. Find ids with `digest papers list`.")
    return paper


def show_paper(ctx: Context, paper_id: str) -> dict[str, Any]:
    """One paper with its listings and upvote history. ``paper_id`` may be an arXiv id (with or
    without version) or an arXiv URL. Raises UsageError when no such paper is stored."""
    with ctx.session() as session:
        paper = require_paper(session, paper_id)
        paper_id = paper.id
        data = paper_json(paper)
        data["listings"] = [
            {"source": name, "listed_on": day.isoformat(), "rank": rank, "announce_type": kind}
            for name, day, rank, kind in stored.paper_listings(session, paper_id)
        ]
        data["metrics"] = [
            {
                "taken_at": at.isoformat(timespec="seconds"),
                "upvotes": figures.upvotes,
                "comments": figures.comments,
                "github_stars": figures.stars,
                "trending_rank": figures.trending_rank,
            }
            for at, figures in stored.paper_metrics(session, paper_id)
        ]
    return data
