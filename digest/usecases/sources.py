"""Sources: adding and switching them, parsing a listing, and scraping (the one path by which
papers come in)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.errors import DigestError, FetchError, UsageError
from digest.fetch.addresses import dates_since, takes_dates, url_for_date
from digest.fetch.http import Fetcher, checked_location, is_local
from digest.ingest.scrape import SourceReport, scrape
from digest.model.freshness import Behind, Fetch, Freshness, Rest, Standing, freshness
from digest.model.source import LATE, RESTING, STALE
from digest.model.time import utc_date
from digest.parse import parse_document
from digest.parse.record import KINDS, ParsedPaper
from digest.store import locks
from digest.store import sources as stored
from digest.store.engine import Session
from digest.store.models import FetchLog, Source
from digest.usecases.context import Context

__all__ = ["KINDS", "SourceReport"]
LATELY = 0.9  # a source fetched within this part of fetch_interval is not fetched again
HISTORY = timedelta(weeks=8)  # of fetch log a source's state (and a feed's rhythm) is read from


def source_json(source: Source) -> dict[str, Any]:
    return {
        "name": source.name,
        "kind": source.kind,
        "url": source.url,
        "enabled": source.enabled,
        "last_status": source.last_status,
        "last_error": source.last_error,
        "last_fetched_at": source.last_fetched_at.isoformat(timespec="seconds")
        if source.last_fetched_at
        else None,
        "consecutive_failures": source.consecutive_failures,
    }


def list_sources(ctx: Context, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every source with its last fetch and its state at ``now`` (default: the context's clock;
    digest.model.freshness), by name."""
    now = now or ctx.now()
    with ctx.session() as session:
        return _with_states(ctx, session, stored.all_sources(session), now)


def standing(ctx: Context, now: datetime) -> Standing:
    """What the enabled sources mean for a digest due at ``now`` (one read of the fetch log).

    ``behind``: those late or stale, the batches it would miss. A source that has never brought a
    batch is left out: there is nothing it is known to send. One that has missed more than its
    latest batch is not worth waiting for (``wait`` False): it stopped, and a digest only says so.
    ``resting``: every source, when each of them rests today (so nothing new is expected)."""
    with ctx.session() as session:
        states = _states(ctx, session, stored.all_sources(session, enabled_only=True), now)
    behind = tuple(
        Behind(source.name, state.due, state.zone, wait=state.missing == 1)
        for source, state in states
        if state.state in (LATE, STALE) and state.due is not None and state.last_new is not None
    )
    resting = ()
    if states and all(state.state == RESTING for _, state in states):
        resting = tuple(Rest(source.name, state.schedule, state.next_batch) for source, state in states)
    return Standing(behind, resting)


def source_state(ctx: Context, source_id: int, now: datetime) -> dict[str, Any] | None:
    """One source as ``list_sources`` gives it; None when it is gone."""
    with ctx.session() as session:
        source = stored.source_by_id(session, source_id)
        return _with_states(ctx, session, [source], now)[0] if source else None


def _with_states(
    ctx: Context, session: Session, sources: Sequence[Source], now: datetime
) -> list[dict[str, Any]]:
    states = _states(ctx, session, sources, now)
    return [source_json(source) | freshness_json(state) for source, state in states]


def _states(
    ctx: Context, session: Session, sources: Sequence[Source], now: datetime
) -> list[tuple[Source, Freshness]]:
    """Each of ``sources`` with its state at ``now``, from its last HISTORY of fetch log (one read)."""
    history = stored.recent_fetches(session, [source.id for source in sources], now - HISTORY)
    return [(source, source_freshness(ctx, source, history[source.id], now)) for source in sources]


def source_freshness(ctx: Context, source: Source, log: Sequence[FetchLog], now: datetime) -> Freshness:
    """The state of ``source`` at ``now`` from its fetch log entries ``log`` (fetches of a given
    date, back-fills, are left out: they say nothing of its current listing)."""
    current = [
        Fetch(entry.started_at, entry.status, entry.seen, entry.fresh)
        for entry in log
        if entry.url == url_for_date(source.kind, source.url, None, utc_date(entry.started_at))
    ]
    return freshness(
        source.kind,
        current,
        now,
        last_new=source.last_new_at,
        last_error=source.last_error if source.consecutive_failures else None,
        date_addressed=takes_dates(source.kind, source.url),
        extra_holidays=ctx.settings.arxiv_holidays,
    )


def freshness_json(state: Freshness) -> dict[str, Any]:
    def moment(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "state": state.state,
        "state_why": state.why,
        "schedule": state.schedule,
        "last_new_at": moment(state.last_new),
        "next_batch_at": moment(state.next_batch),
        "due_at": moment(state.due),
    }


def require(session: Session, name: str) -> Source:
    """The source ``name``; UsageError naming the known ones otherwise."""
    source = stored.source_by_name(session, name)
    if source is None:
        names = ", ".join(s.name for s in stored.all_sources(session)) or "none yet"
        raise UsageError(f"No source named {name!r}. Known sources: {names}. See `digest sources list`.")
    return source


def add_source(ctx: Context, name: str, kind: str, url: str, *, enabled: bool = True) -> str:
    """Add a source; returns its URL as stored (a local path made absolute, so a scrape from
    another folder finds it). Raises UsageError for a bad name, kind or a name taken, and for a URL
    a scrape would refuse (checked without the network: a missing file, an unknown scheme)."""
    if not name.strip() or len(name) > 100:
        raise UsageError("A source name must be 1 to 100 characters.")
    if kind not in KINDS:
        raise UsageError(f"Unknown kind {kind!r}; use one of: {', '.join(KINDS)}.")
    try:
        checked_location(url)  # what `scrape` would refuse, refused now, in its words
    except FetchError as exc:
        raise UsageError(str(exc)) from None
    if is_local(url) and not url.lower().startswith("file:"):
        url = str(Path(url).expanduser().resolve())
    with ctx.database.begin() as session:
        if stored.source_by_name(session, name) is not None:
            raise UsageError(f"A source named {name!r} exists already; pick another name or remove it first.")
        stored.add_source(session, name, kind, url, enabled, ctx.now())
    return url


def set_enabled(ctx: Context, name: str, enabled: bool) -> None:
    with ctx.database.begin() as session:
        require(session, name).enabled = enabled


def remove_source(ctx: Context, name: str) -> None:
    """Remove a source with its listings and fetch log; its papers stay."""
    with ctx.database.begin() as session:
        stored.remove_source(session, require(session, name))


def parse_location(ctx: Context, location: str, kind: str = "auto") -> list[ParsedPaper]:
    """Fetch and parse a listing (a file, file:// URL or http(s) URL); no database. An unreadable
    local file is a UsageError (bad input), an unreachable URL a FetchError."""
    with Fetcher(ctx.settings) as fetcher:
        try:
            result = fetcher.fetch(location)
        except FetchError as exc:
            if is_local(location):
                raise UsageError(str(exc)) from None
            raise
    return parse_document(result.content or b"", kind)


def chosen_sources(ctx: Context, names: Sequence[str] = ()) -> list[Source]:
    """The named sources, or every enabled one; read, then detached from their session."""
    with ctx.session() as session:
        found = (
            [require(session, name) for name in names]
            if names
            else stored.all_sources(session, enabled_only=True)
        )
        return [stored.detached(session, source) for source in found]


def scrape_sources(
    ctx: Context,
    names: Sequence[str] = (),
    *,
    day: date | None = None,
    since: date | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _message: None,
    require_any: bool = True,
) -> list[SourceReport]:
    """Fetch the named sources (default: every enabled one) and store their new papers. ``day``
    fetches one listing date of the date-addressed sources, ``since`` every date from then to today.
    Raises UsageError for both or a future ``since``, DigestError when there is no source to fetch
    (unless not ``require_any``: then nothing is fetched)."""
    if day and since:
        raise UsageError("Give --date or --since, not both.")
    today = utc_date(ctx.now())
    if since is not None and since > today:
        raise UsageError(f"--since {since.isoformat()} is in the future (today is {today.isoformat()} UTC).")
    dates = [day] if day else (dates_since(since, today) if since else None)
    sources = chosen_sources(ctx, names)
    if not sources:
        if not require_any:
            return []
        raise DigestError(
            "No enabled sources. Add one with `digest sources add` or `digest sources enable` one."
        )
    with Fetcher(ctx.settings) as fetcher:
        return scrape(
            ctx.database,
            fetcher,
            sources,
            ctx.clock,
            dates=dates,
            dry_run=dry_run,
            progress=progress,
            repoll=ctx.settings.repoll_days,
        )


def enabled_names(ctx: Context) -> dict[int, str]:
    """The enabled sources' names, by id (for the scheduler's jobs)."""
    with ctx.session() as session:
        return {source.id: source.name for source in stored.all_sources(session, enabled_only=True)}


def fetch_due(
    ctx: Context,
    source_id: int,
    stopping: Callable[[], bool] = lambda: False,
    busy: Callable[[int], None] = lambda _change: None,
    interval: float | None = None,
) -> SourceReport | None:
    """Fetch one source for the scheduler, unless it is gone or disabled, was fetched (by any
    process) within its interval (``fetch_interval``, or ``interval`` seconds for a re-poll), or
    another scheduler is fetching it now; returns its report, or None when it was not fetched.
    ``busy`` is told +1 when the fetch starts and -1 when it ends."""
    with ctx.session() as session:
        source = stored.source_by_id(session, source_id)
        if source is None or not source.enabled or stopping():
            return None
        source = stored.detached(session, source)
    database = ctx.database
    with locks.source_lock(database, source_id) as mine:
        if not mine:
            return None
        with ctx.session() as session:
            last = stored.last_fetch_started(session, source_id)
        lately = ctx.now() - timedelta(seconds=LATELY * (interval or ctx.settings.fetch_interval))
        if last is not None and last > lately:
            return None
        busy(1)
        try:
            with Fetcher(ctx.settings) as fetcher:
                [report] = scrape(database, fetcher, [source], ctx.clock, repoll=ctx.settings.repoll_days)
        finally:
            busy(-1)
    return report
