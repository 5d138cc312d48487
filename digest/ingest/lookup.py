"""Look papers up by arXiv id through the arXiv API, for a reader's library.

Papers found are stored as not listed (digest.store.papers.insert_references): a reader's library
is no listing, so no digest takes them for new until a source lists them. Requests go through the
Fetcher, so arXiv's pace (``arxiv_min_interval``), robots.txt, timeouts and size caps all hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from digest.errors import FetchError, ParseError
from digest.fetch.http import Fetcher
from digest.ingest import statistics
from digest.ingest.merge import paper_row
from digest.model.source import AUTHORITY
from digest.parse.feeds import parse_arxiv_api
from digest.store import papers as stored_papers
from digest.store.engine import Database

BATCH = 100  # ids a request asks for; arXiv's manual suggests small pages


@dataclass
class Lookup:
    """What the arXiv API gave for the ids asked: stored (by this lookup; not those stored
    meanwhile by a source), not on arXiv, or not asked (why)."""

    stored: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    unasked: list[str] = field(default_factory=list)
    error: str | None = None


def query_url(api_url: str, ids: Sequence[str]) -> str:
    """The arXiv API URL that asks for ``ids`` by id (``id_list``), all on one page."""
    return f"{api_url}?{urlencode({'id_list': ','.join(ids), 'max_results': len(ids)}, safe=',')}"


def look_up(database: Database, fetcher: Fetcher, api_url: str, ids: Sequence[str], now: datetime) -> Lookup:
    """Fetch the arXiv papers ``ids`` (versionless arXiv ids) a batch at a time and store each one
    found as not listed, committing each batch. A fetch or parse failure stops the lookup: the ids
    not yet asked are in ``unasked`` and the reason in ``error``; what was stored stays stored."""
    done = Lookup()
    wanted = list(dict.fromkeys(ids))
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start : start + BATCH]
        try:
            result = fetcher.fetch(query_url(api_url, batch))
            found = {paper.id: paper for paper in parse_arxiv_api(result.content or b"")}
        except (FetchError, ParseError) as exc:
            done.unasked = wanted[start:]
            done.error = str(exc)
            return done
        rows = [
            {**paper_row(found[paper], AUTHORITY["arxiv-api"]), "first_seen_at": now, "updated_at": now}
            for paper in batch
            if paper in found
        ]
        with database.begin() as session:
            inserted = set(stored_papers.insert_references(session, rows))
            statistics.record(
                session, [(row["title"], row["abstract"]) for row in rows if row["id"] in inserted]
            )
        done.stored.extend(paper for paper in batch if paper in inserted)
        done.not_found.extend(paper for paper in batch if paper not in found)
    return done
