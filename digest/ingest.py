"""Run sources: fetch, parse, deduplicate, upsert in bulk, record metrics and a fetch log.

``plan`` is a plain function over plain data; ``store`` and ``scrape`` do the I/O around it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.orm import Session, sessionmaker

from digest import queries
from digest.errors import DigestError, FetchError
from digest.models import Source, utcnow
from digest.sources import parse_document
from digest.sources.base import ParsedPaper
from digest.sources.http import Fetcher, FetchResult, is_local

log = logging.getLogger(__name__)

DATE_ADDRESSED = frozenset({"hf-daily", "hf-page"})
UPDATE_ONLY = frozenset({"replace", "replace-cross"})
FILL_ONLY = ("pdf_url", "hf_url")
FILL_OR_REPLACE = ("github_repo", "project_page", "ai_keywords")
NEWEST_VERSION_WINS = ("title", "abstract", "authors", "categories")


@dataclass
class Plan:
    """What one batch of parsed papers changes in the database."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    listings: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    seen: int = 0

    @property
    def new(self) -> int:
        return len(self.inserts)

    @property
    def updated(self) -> int:
        return len(self.updates)


@dataclass
class SourceReport:
    """How one source's run went; one row of the scrape summary."""

    name: str
    kind: str
    status: str = "ok"
    seen: int = 0
    new: int = 0
    updated: int = 0
    seconds: float = 0.0
    error: str | None = None
    fetches: int = 0


def dedupe(papers: Sequence[ParsedPaper]) -> list[ParsedPaper]:
    """One entry per id, the first (best-ranked) one kept."""
    seen: dict[str, ParsedPaper] = {}
    for paper in papers:
        seen.setdefault(paper.id, paper)
    return list(seen.values())


def paper_row(paper: ParsedPaper) -> dict[str, Any]:
    return {
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
    }


def merge(stored: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``stored`` that ``incoming`` changes.

    A newer arXiv version replaces the text; an older one, or one without a version (Hugging Face)
    when arXiv gave one, only fills what is missing, so two sources never overwrite each other in
    turn. PDF and HF links only fill in; code and project links take the newest non-empty value;
    the publication date is kept once known.
    """
    old, new = stored.get("version"), incoming.get("version")
    older = old is not None and (new is None or new < old)
    changes: dict[str, Any] = {}
    if new is not None and (old is None or new > old):
        changes["version"] = new
    for name in NEWEST_VERSION_WINS:
        value = incoming.get(name)
        if value and value != stored.get(name) and (not older or not stored.get(name)):
            changes[name] = value
    for name in FILL_OR_REPLACE:
        value = incoming.get(name)
        if value and value != stored.get(name):
            changes[name] = value
    for name in FILL_ONLY:
        if incoming.get(name) and not stored.get(name):
            changes[name] = incoming[name]
    if stored.get("published") is None and incoming.get("published") is not None:
        changes["published"] = incoming["published"]
    return changes


def plan(
    papers: Sequence[ParsedPaper],
    *,
    stored: dict[str, dict[str, Any]],
    metrics: dict[str, tuple[int | None, int | None, int | None]],
    source_id: int,
    listed_on: date | None,
    now: datetime,
) -> Plan:
    """Decide inserts, updates, listings and snapshots for a batch; no I/O.

    An arXiv ``replace`` announcement updates a known paper and never adds one. A metric snapshot is
    recorded only when a value differs from the paper's latest snapshot, so re-running adds nothing.
    """
    result = Plan()
    for paper in dedupe(papers):
        result.seen += 1
        row = paper_row(paper)
        known = stored.get(paper.id)
        if known is None:
            if paper.announce_type in UPDATE_ONLY:
                continue
            result.inserts.append({**row, "first_seen_at": now, "updated_at": now})
        else:
            changes = merge(known, row)
            if changes:
                result.updates.append({"id": paper.id, **changes, "updated_at": now})
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
        values = (paper.upvotes, paper.comments, paper.github_stars)
        if any(value is not None for value in values) and metrics.get(paper.id) != values:
            result.snapshots.append(
                {
                    "paper_id": paper.id,
                    "source_id": source_id,
                    "taken_at": now,
                    "upvotes": values[0],
                    "comments": values[1],
                    "github_stars": values[2],
                }
            )
    return result


def store(
    session: Session,
    source_id: int,
    papers: Sequence[ParsedPaper],
    *,
    listed_on: date | None = None,
    now: datetime | None = None,
    write: bool = True,
) -> Plan:
    """Upsert ``papers`` as listed by source ``source_id``; with ``write=False`` only plan."""
    now = now or utcnow()
    ids = list(dict.fromkeys(paper.id for paper in papers))
    result = plan(
        papers,
        stored=queries.existing_papers(session, ids),
        metrics=queries.latest_metrics(session, ids),
        source_id=source_id,
        listed_on=listed_on,
        now=now,
    )
    if write:
        queries.insert_papers(session, result.inserts)
        queries.update_papers(session, result.updates)
        queries.insert_listings(session, result.listings)
        queries.insert_snapshots(session, result.snapshots)
    return result


def url_for_date(kind: str, url: str, day: date | None) -> str:
    """The URL of a date-addressed source for ``day`` (its default URL when ``day`` is None).

    ``{date}`` in a URL is replaced; otherwise hf-daily gets ``?date=``, hf-page ``/date/YYYY-MM-DD``.
    """
    if day is None:
        return url.replace("{date}", today_utc().isoformat()) if "{date}" in url else url
    if "{date}" in url:
        return url.replace("{date}", day.isoformat())
    if is_local(url):
        return url
    if kind == "hf-daily":
        parts = urlsplit(url)
        query = [(key, value) for key, value in parse_qsl(parts.query) if key != "date"]
        query.append(("date", day.isoformat()))
        return urlunsplit(parts._replace(query=urlencode(query)))
    if kind == "hf-page":
        base = url.rstrip("/")
        if "/date/" in base:
            base = base.split("/date/", 1)[0]
        return f"{base}/date/{day.isoformat()}"
    return url


def dates_since(since: date, today: date) -> list[date]:
    return [since + timedelta(days=offset) for offset in range((today - since).days + 1)]


def scrape(
    factory: sessionmaker[Session],
    fetcher: Fetcher,
    sources: Sequence[Source],
    *,
    dates: Sequence[date] | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _message: None,
) -> list[SourceReport]:
    """Fetch and store every source, each on its own: one failure never stops the others.

    ``dates`` applies to date-addressed sources (hf-daily, hf-page); others are fetched once. Every
    fetch is written to the fetch log with its outcome, unless ``dry_run``.
    """
    reports = []
    for source in sources:
        report = SourceReport(name=source.name, kind=source.kind)
        days: Sequence[date | None] = dates if (dates and source.kind in DATE_ADDRESSED) else [None]
        for day in days:
            progress(f"{source.name}: {url_for_date(source.kind, source.url, day)}")
            _run_one(factory, fetcher, source, day, report, dry_run)
        reports.append(report)
    return reports


def _run_one(
    factory: sessionmaker[Session],
    fetcher: Fetcher,
    source: Source,
    day: date | None,
    report: SourceReport,
    dry_run: bool,
) -> None:
    url = url_for_date(source.kind, source.url, day)
    conditional = day is None and not dry_run
    started, clock = utcnow(), time.perf_counter()
    outcome = _Outcome()
    counts = Plan()
    try:
        result = fetcher.fetch(
            url,
            etag=source.etag if conditional else None,
            last_modified=source.last_modified if conditional else None,
        )
        outcome.http_status = result.status
        if result.not_modified:
            outcome.status = "not-modified"
        else:
            papers = parse_document(result.content or b"", source.kind)
            with factory.begin() as session:
                counts = store(session, source.id, papers, listed_on=day, write=not dry_run)
                if not dry_run:
                    _record(session, source, url, started, outcome, counts, result)
    except FetchError as exc:
        counts = Plan()
        outcome.fail(str(exc), exc.status)
    except DigestError as exc:
        counts = Plan()
        outcome.fail(str(exc), outcome.http_status)
    except Exception as exc:  # one broken source must never stop the others
        log.exception("unexpected failure in source %s", source.name)
        counts = Plan()
        outcome.fail(f"internal error: {type(exc).__name__}: {exc}", outcome.http_status)
    if not dry_run and outcome.status != "ok":
        with factory.begin() as session:
            _record(session, source, url, started, outcome, counts, None)
    report.fetches += 1
    report.seen += counts.seen
    report.new += counts.new
    report.updated += counts.updated
    report.seconds += time.perf_counter() - clock
    if outcome.error:
        report.status, report.error = "error", outcome.error
    elif report.status != "error":
        report.status = outcome.status


@dataclass
class _Outcome:
    status: str = "ok"
    http_status: int | None = None
    error: str | None = None

    def fail(self, error: str, http_status: int | None) -> None:
        self.status, self.error, self.http_status = "error", error, http_status


def _record(
    session: Session,
    source: Source,
    url: str,
    started: datetime,
    outcome: _Outcome,
    counts: Plan,
    result: FetchResult | None,
) -> None:
    """Write the fetch log entry and the source's status, in the caller's transaction.

    The source's ETag and Last-Modified are saved only after its papers are stored (``result`` given).
    """
    finished = utcnow()
    queries.add_fetch_log(
        session,
        source_id=source.id,
        url=url,
        started_at=started,
        finished_at=finished,
        http_status=outcome.http_status,
        status=outcome.status,
        seen=counts.seen,
        new=counts.new,
        updated=counts.updated,
        error=outcome.error,
    )
    row = session.get(Source, source.id)
    if row is None:
        return
    row.last_fetched_at = finished
    row.last_status = outcome.status
    row.last_error = outcome.error
    if outcome.error:
        row.consecutive_failures += 1
        return
    row.consecutive_failures = 0
    row.last_success_at = finished
    if result is not None and url == row.url and result.status is not None:
        row.etag = result.etag
        row.last_modified = result.last_modified


def today_utc() -> date:
    return datetime.now(UTC).date()
