"""Run sources: fetch, parse, merge, store in bulk, and record each fetch in the fetch log.

``scrape`` is the one path by which papers come in, whoever asks (``digest scrape``, ``digest run``,
the scheduler). One source's failure never stops the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from digest.errors import DigestError, FetchError
from digest.fetch.addresses import ranks_trending, takes_dates, url_for_date
from digest.fetch.http import Fetcher, FetchResult
from digest.ingest import statistics
from digest.ingest.merge import Changes, changes_for, unranked
from digest.model.source import FEED_AUTHORITY, text_authority
from digest.model.time import Clock, utc_date
from digest.parse import parse_document
from digest.parse.record import ParsedPaper
from digest.store import papers as stored_papers
from digest.store import sources as stored_sources
from digest.store.engine import Database, Session
from digest.store.models import Source

log = logging.getLogger(__name__)

RANKED_LATELY = timedelta(days=15)  # how far back a trending source's ranks are taken back when gone


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


def store_papers(
    session: Session,
    source_id: int,
    papers: Sequence[ParsedPaper],
    now: datetime,
    *,
    listed_on: date | None = None,
    write: bool = True,
    authority: int = FEED_AUTHORITY,
    ranked: bool = False,
) -> Changes:
    """Upsert ``papers`` as listed by source ``source_id`` at ``now``, believed as far as
    ``authority`` says about their text; with ``write=False`` only work out the changes. A
    ``ranked`` batch is Hugging Face's trending list: its order is recorded as each paper's
    trending place, and the papers the source ranked lately that have left the list lose theirs."""
    ids = list(dict.fromkeys(paper.id for paper in papers))
    changes = changes_for(
        papers,
        stored=stored_papers.existing_papers(session, ids),
        metrics=stored_papers.latest_metrics(session, ids),
        source_id=source_id,
        listed_on=listed_on,
        now=now,
        authority=authority,
        ranked=ranked,
    )
    if ranked:
        left = stored_papers.ranked_by(session, source_id, now - RANKED_LATELY) - set(ids)
        gone = stored_papers.latest_metrics(session, sorted(left))
        changes.snapshots += unranked(left, gone, source_id, now)
    if write:
        _write_papers(session, changes)
        stored_papers.save_texts(session, changes.texts)
        stored_papers.insert_listings(session, changes.listings)
        stored_papers.insert_snapshots(session, changes.snapshots)
    return changes


def _write_papers(session: Session, changes: Changes) -> None:
    """Insert and update the papers, and count the texts they add and replace into the corpus
    statistics."""
    inserted = set(stored_papers.insert_papers(session, changes.inserts))
    retexted = {
        change["id"]: change for change in changes.updates if "title" in change or "abstract" in change
    }
    replaced = stored_papers.texts_to_change(session, list(retexted))
    stored_papers.update_papers(session, changes.updates)
    new_texts = [
        (retexted[paper].get("title", title), retexted[paper].get("abstract", abstract))
        for paper, (title, abstract) in replaced.items()
    ]
    added = [(row["title"], row["abstract"]) for row in changes.inserts if row["id"] in inserted]
    statistics.record(session, added + new_texts, list(replaced.values()))


def scrape(
    database: Database,
    fetcher: Fetcher,
    sources: Sequence[Source],
    clock: Clock,
    *,
    dates: Sequence[date] | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _message: None,
    repoll: int = 0,
) -> list[SourceReport]:
    """Fetch and store every source, each on its own: one failure never stops the others.

    ``dates`` applies to sources that take dates (fetch.addresses.takes_dates); others are fetched
    once, and their papers are listed on the date the listing itself gives. Without ``dates``, a
    source that takes dates is fetched again for each of the ``repoll`` listing days before today,
    so the upvotes and comments of its recent papers stay current (unless that listing failed).
    Every fetch is written to the fetch log with its outcome, unless ``dry_run``. ``clock`` stamps
    the fetches and the papers' first-seen times.
    """
    reports = []
    for source in sources:
        report = SourceReport(name=source.name, kind=source.kind)
        dated = takes_dates(source.kind, source.url)
        days: Sequence[date | None] = dates if (dates and dated) else [None]
        if dates and days == [None]:
            progress(f"{source.name}: fetched once, its URL takes no date")
        for day in days:
            url = url_for_date(source.kind, source.url, day, utc_date(clock()))
            progress(f"{source.name}: {url}")
            _run_one(database, fetcher, source, url, day, report, dry_run, clock)
        if not dates and dated and repoll and report.status != "error":  # a failing host fails again
            _repoll(database, fetcher, source, report, dry_run, clock, repoll, progress)
        reports.append(report)
    return reports


def _repoll(
    database: Database,
    fetcher: Fetcher,
    source: Source,
    report: SourceReport,
    dry_run: bool,
    clock: Clock,
    days: int,
    progress: Callable[[str], None],
) -> None:
    """Fetch the ``days`` listing days before today again for their papers' current figures. Only
    the fetch log hears of these fetches: the source's status and the report's stay its current
    listing's, and a failed one costs nothing but its figures."""
    today = utc_date(clock())
    for back in range(1, days + 1):
        day = today - timedelta(days=back)
        url = url_for_date(source.kind, source.url, day, today)
        progress(f"{source.name}: {url}")
        again = SourceReport(name=source.name, kind=source.kind)
        _run_one(database, fetcher, source, url, day, again, dry_run, clock, current=False)
        report.seen += again.seen
        report.new += again.new
        report.updated += again.updated
        report.fetches += again.fetches
        report.seconds += again.seconds
        if again.error:
            log.info("fetching %s for %s again failed: %s", source.name, day.isoformat(), again.error)


@dataclass
class _Outcome:
    status: str = "ok"
    http_status: int | None = None
    error: str | None = None

    def fail(self, error: str, http_status: int | None) -> None:
        self.status, self.error, self.http_status = "error", error, http_status


def _run_one(
    database: Database,
    fetcher: Fetcher,
    source: Source,
    url: str,
    day: date | None,
    report: SourceReport,
    dry_run: bool,
    clock: Clock,
    current: bool = True,
) -> None:
    conditional = day is None and not dry_run
    started, timer = clock(), time.perf_counter()
    outcome = _Outcome()
    counts = Changes()
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
            kind = papers[0].kind if papers else source.kind
            authority = text_authority(kind, result.url)
            with database.begin() as session:
                # Only the current listing can bring a new batch: a given day's is a back-fill.
                ids = sorted({paper.id for paper in papers}) if day is None else []
                listed = stored_sources.listed_by(session, source.id, ids)
                counts = store_papers(
                    session,
                    source.id,
                    papers,
                    clock(),
                    listed_on=day,
                    write=not dry_run,
                    authority=authority,
                    ranked=day is None and ranks_trending(source.kind, url),
                )
                fresh = len({row["paper_id"] for row in counts.listings} - listed) if day is None else 0
                if not dry_run:
                    _record(session, source, url, started, outcome, counts, result, clock, fresh, current)
    except FetchError as exc:
        counts = Changes()
        outcome.fail(str(exc), exc.status)
    except DigestError as exc:
        counts = Changes()
        outcome.fail(str(exc), outcome.http_status)
    except Exception as exc:  # one broken source must never stop the others
        log.exception("unexpected failure in source %s", source.name)
        counts = Changes()
        outcome.fail(f"internal error: {type(exc).__name__}: {exc}", outcome.http_status)
    if not dry_run and outcome.status != "ok":
        with database.begin() as session:
            _record(session, source, url, started, outcome, counts, None, clock, current=current)
    report.fetches += 1
    report.seen += counts.seen
    report.new += counts.new
    report.updated += counts.updated
    report.seconds += time.perf_counter() - timer
    if outcome.error:
        report.status, report.error = "error", outcome.error
    elif report.status != "error":
        report.status = outcome.status


def _record(
    session: Session,
    source: Source,
    url: str,
    started: datetime,
    outcome: _Outcome,
    counts: Changes,
    result: FetchResult | None,
    clock: Clock,
    fresh: int = 0,
    current: bool = True,
) -> None:
    """Write the fetch log entry and the source's status, in the caller's transaction; ``fresh``
    counts the papers it listed that it had never listed before (none when it serves its batch
    again). The source's ETag and Last-Modified are saved only after its papers are stored
    (``result`` given); a fetch that is not ``current`` (a past day fetched again) leaves the
    source's status as it is."""
    validators = None
    if result is not None and result.status is not None:
        validators = (result.etag, result.last_modified)
    stored_sources.record_fetch(
        session,
        source.id,
        url=url,
        started=started,
        finished=clock(),
        status=outcome.status,
        http_status=outcome.http_status,
        error=outcome.error,
        counts=(counts.seen, counts.new, counts.updated),
        validators=validators,
        fresh=fresh,
        current=current,
    )
