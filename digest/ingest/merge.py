"""What a batch of parsed papers changes in the database: new papers, merged fields, listings and
metric snapshots. Plain functions over plain data; digest.ingest.scrape does the I/O around them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from digest.model.figures import Figures
from digest.model.source import FEED_AUTHORITY
from digest.parse.record import ParsedPaper

UPDATE_ONLY = frozenset({"replace", "replace-cross"})
FILL_ONLY = ("pdf_url", "hf_url")
FILL_OR_REPLACE = ("github_repo", "project_page", "ai_keywords", "ai_summary")
NEWEST_VERSION_WINS = ("title", "abstract", "authors", "categories")


@dataclass
class Changes:
    """What one batch of parsed papers changes in the database."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    listings: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)
    seen: int = 0
    surfaced: int = 0  # updates that list a paper only a reader's library had named: new to the digests

    @property
    def new(self) -> int:
        return len(self.inserts) + self.surfaced

    @property
    def updated(self) -> int:
        return len(self.updates) - self.surfaced


def dedupe(papers: Sequence[ParsedPaper]) -> list[ParsedPaper]:
    """One entry per id, the first (best-ranked) one kept."""
    seen: dict[str, ParsedPaper] = {}
    for paper in papers:
        seen.setdefault(paper.id, paper)
    return list(seen.values())


def paper_row(paper: ParsedPaper, authority: int = FEED_AUTHORITY) -> dict[str, Any]:
    return {
        "text_authority": authority,
        "id": paper.id,
        "version": paper.version,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": list(paper.authors),
        "published": paper.published,
        "abs_url": paper.url,
        "pdf_url": paper.pdf_url,
        "hf_url": paper.hf_url,
        "categories": list(paper.categories),
        "github_repo": paper.github_repo,
        "project_page": paper.project_page,
        "ai_keywords": list(paper.ai_keywords),
        "ai_summary": paper.ai_summary,
    }


def merge(stored: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``stored`` that ``incoming`` changes.

    The text (version, title, abstract, authors, categories) follows authority first
    (digest.model.source.text_authority): a source believed more than the one the stored text
    came from replaces it; one believed less only fills what is missing, so a feed can never
    rewrite what arXiv says, whatever version it claims. Between equals, a newer arXiv version
    replaces the text; an older one, or one without a version (Hugging Face) when arXiv gave one,
    only fills. PDF and HF links only fill in; code and project links take the newest non-empty
    value from a source believed as much or more; the publication date is kept once known.
    """
    held = stored.get("text_authority") or FEED_AUTHORITY
    coming = incoming.get("text_authority") or FEED_AUTHORITY
    old, new = stored.get("version"), incoming.get("version")
    if coming > held:
        replaces, fills = True, False
    elif coming < held:
        replaces, fills = False, True
    else:
        replaces = new is not None and (old is None or new > old)
        fills = old is not None and (new is None or new < old)
    changes: dict[str, Any] = {}
    if coming > held:
        changes["text_authority"] = coming
    # The version goes with the text: a source believed more brings its own (even none, so a
    # claimed v99 goes with the text it came with); a lesser one only fills a missing version.
    if new != old and (coming > held or (new is not None and (replaces or (fills and old is None)))):
        changes["version"] = new
    for name in NEWEST_VERSION_WINS:
        value = incoming.get(name)
        if value and value != stored.get(name) and (not fills or not stored.get(name)):
            changes[name] = value
    for name in FILL_OR_REPLACE:
        value = incoming.get(name)
        if value and value != stored.get(name) and (coming >= held or not stored.get(name)):
            changes[name] = value
    for name in FILL_ONLY:
        if incoming.get(name) and not stored.get(name):
            changes[name] = incoming[name]
    if stored.get("published") is None and incoming.get("published") is not None:
        changes["published"] = incoming["published"]
    return changes


def changes_for(
    papers: Sequence[ParsedPaper],
    *,
    stored: dict[str, dict[str, Any]],
    metrics: Mapping[str, Figures],
    source_id: int,
    listed_on: date | None,
    now: datetime,
    authority: int = FEED_AUTHORITY,
    ranked: bool = False,
) -> Changes:
    """Decide inserts, updates, listings and snapshots for a batch; no I/O.

    ``authority`` is how far the source is believed about the text (see ``merge``); every paper's
    text as this source gives it is kept in ``texts`` whatever the paper then shows. An arXiv
    ``replace`` announcement updates a known paper and never adds one. A metric snapshot is
    recorded only when a value differs from the paper's latest snapshot, so re-running adds nothing.
    A ``ranked`` batch is in Hugging Face's trending order: its ranks are the papers' trending
    places; any other keeps the place each paper last had.
    """
    result = Changes()
    for paper in dedupe(papers):
        result.seen += 1
        row = paper_row(paper, authority)
        known = stored.get(paper.id)
        if known is None:
            if paper.announce_type in UPDATE_ONLY:
                continue
            result.inserts.append({**row, "first_seen_at": now, "updated_at": now})
        else:
            changes = merge(known, row)
            if known.get("listed") is False and paper.announce_type not in UPDATE_ONLY:
                # only a reader's library named it: new to the digests now (a new version is not news)
                changes.update(listed=True, first_seen_at=now)
                result.surfaced += 1
            if changes:
                result.updates.append({"id": paper.id, **changes, "updated_at": now})
        result.texts.append(
            {
                "paper_id": paper.id,
                "source_id": source_id,
                "version": paper.version,
                "title": paper.title,
                "abstract": paper.abstract,
                "authors": list(paper.authors),
                "seen_at": now,
            }
        )
        result.listings.append(
            {
                "source_id": source_id,
                "paper_id": paper.id,
                "listed_on": listed_on or paper.listed_on or now.date(),
                "rank": paper.rank,
                "announce_type": paper.announce_type,
                "seen_at": now,
            }
        )
        latest = metrics.get(paper.id)
        place = paper.rank if ranked else (latest.trending_rank if latest else None)
        values = Figures(paper.upvotes, paper.comments, paper.github_stars, place)
        if any(value is not None for value in values[:3]) and latest != values:
            result.snapshots.append(snapshot(paper.id, source_id, now, values))
    return result


def unranked(
    ids: Iterable[str], metrics: Mapping[str, Figures], source_id: int, now: datetime
) -> list[dict[str, Any]]:
    """The snapshots that take a trending place from the papers among ``ids`` (those a trending
    source ranked lately but no longer lists) that still have one: their other figures as they were."""
    return [
        snapshot(paper_id, source_id, now, latest._replace(trending_rank=None))
        for paper_id in sorted(ids)
        if (latest := metrics.get(paper_id)) is not None and latest.trending_rank is not None
    ]


def snapshot(paper_id: str, source_id: int, now: datetime, figures: Figures) -> dict[str, Any]:
    """A metric_snapshots row."""
    return {
        "paper_id": paper_id,
        "source_id": source_id,
        "taken_at": now,
        "upvotes": figures.upvotes,
        "comments": figures.comments,
        "github_stars": figures.stars,
        "trending_rank": figures.trending_rank,
    }
