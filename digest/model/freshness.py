"""Whether a source has what it should have published by now: fresh, resting, late, stale or
failing, from its schedule (digest.model.calendar) and its recent fetches. No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from digest.model.calendar import LOOK_BACK, Schedule, schedule_for
from digest.model.source import FAILING, FRESH, LATE, RESTING, STALE
from digest.model.time import utc, zone


@dataclass(frozen=True, slots=True)
class Fetch:
    """One fetch of a source's current listing, as the fetch log keeps it."""

    started: datetime
    status: str  # "ok", "not-modified" or "error"
    seen: int
    fresh: int  # items the source had never listed before


@dataclass(frozen=True, slots=True)
class Freshness:
    """A source's state now, with the batch it is about (late, stale: the missing one) and why."""

    state: str
    why: str
    schedule: str
    last_new: datetime | None
    next_batch: datetime | None
    due: datetime | None
    zone: str = "UTC"  # the schedule's: the one its batches' days are named in
    missing: int = 0  # batches due since the last one it brought (late or stale: 1 or more)


@dataclass(frozen=True, slots=True)
class Behind:
    """A source whose batch ``due`` (named in ``zone``) is missing: late or stale."""

    source: str
    due: datetime
    zone: str
    wait: bool = True  # worth waiting for: only this batch is missing, not a source that stopped

    def note(self, now: datetime, reader_zone: str) -> str:
        """The one line a digest sent without the batch carries, ``now`` read in the reader's zone."""
        day = utc(self.due).astimezone(zone(self.zone))
        local = utc(now).astimezone(zone(reader_zone))
        return (
            f"The {self.source} listing of {day:%a} {day.day} {day:%b} had not arrived by {local:%H:%M}; "
            "what it brings will be in your next digest."
        )


@dataclass(frozen=True, slots=True)
class Rest:
    """A source with no batch scheduled today: its schedule, and when its next batch is due."""

    source: str
    schedule: str
    next_batch: datetime | None


@dataclass(frozen=True, slots=True)
class Standing:
    """What the enabled sources mean for the digests sent now: those late or stale (``behind``),
    and, when every one of them rests today, each with its schedule (``resting``; else empty)."""

    behind: tuple[Behind, ...] = ()
    resting: tuple[Rest, ...] = ()

    @property
    def waiting(self) -> bool:
        """Whether a digest due now should wait for a source."""
        return any(late.wait for late in self.behind)

    def notes(self, now: datetime, reader_zone: str) -> tuple[str, ...]:
        """The lines a digest sent now says of the sources behind."""
        return tuple(late.note(now, reader_zone) for late in self.behind)

    def quiet(self, reader_zone: str) -> str:
        """Why a digest with no new paper at all has none, when the sources rest ("" when they do
        not): the one line it says instead of "nothing matched"."""
        if not self.resting:
            return ""
        schedules = "; ".join(f"{rest.source}: {rest.schedule}" for rest in self.resting)
        line = f"No new papers since your last digest: none of the listings publishes today ({schedules})."
        coming = [utc(rest.next_batch) for rest in self.resting if rest.next_batch is not None]
        if coming:
            local = min(coming).astimezone(zone(reader_zone))
            line += f" The next listing is due {local:%a} {local.day} {local:%b} at {local:%H:%M}."
        return line


def freshness(
    kind: str,
    fetches: Sequence[Fetch],
    now: datetime,
    *,
    last_new: datetime | None = None,
    last_error: str | None = None,
    date_addressed: bool = False,
    extra_holidays: Iterable[date] = (),
) -> Freshness:
    """The state of a source of ``kind`` at ``now`` from its ``fetches`` (any order) and the moment
    it last brought an item it had not listed (``last_new``; the newest such fetch otherwise).

    failing: its last fetch failed (``last_error``). late: a batch is due (its grace passed) and no
    new item came since. stale: likewise, but a fetch after that grace answered with the previous
    batch again, nothing, or 304 Not Modified (a date-addressed listing that is empty is late: it
    fills later). resting: nothing is scheduled today. fresh: otherwise. Fetches after ``now``,
    and a ``last_new`` after it, are not counted.
    """
    fetches = [fetch for fetch in fetches if utc(fetch.started) <= utc(now)]  # as it stood at ``now``
    arrivals = [utc(fetch.started) for fetch in fetches if fetch.fresh > 0]
    known = [utc(last_new)] if last_new and utc(last_new) <= utc(now) else []
    newest = max([*arrivals, *known], default=None)
    schedule = schedule_for(kind, arrivals, now, extra_holidays)
    due = schedule.last_due(now)
    coming = schedule.next_batch(now)
    missing = 0
    if due is not None and (newest is None or newest < due - schedule.early):
        after = newest + schedule.early if newest else utc(now) - timedelta(days=LOOK_BACK)
        missing = len(schedule.batches(after, due + timedelta(microseconds=1)))

    def said(state: str, why: str, about: datetime | None = None) -> Freshness:
        return Freshness(state, why, schedule.describe, newest, coming, about, schedule.zone, missing)

    if last_error:
        return said(FAILING, f"its last fetch failed: {last_error}")
    if missing:
        # A fetch within the grace may rightly show the previous batch: only one after it tells.
        since = [
            fetch
            for fetch in fetches
            if utc(fetch.started) >= due + schedule.grace and fetch.status != "error"
        ]
        if since and not date_addressed:
            last = max(since, key=lambda fetch: fetch.started)
            if last.status == "not-modified":
                answer = "answered 304 Not Modified"
            elif last.seen:
                answer = f"served the previous batch again ({last.seen} items, none new)"
            else:
                answer = "served an empty listing"
            lacking = f"the batch due {when(due, schedule)} is missing"
            return said(STALE, f"{lacking}: the fetch at {when(last.started, schedule)} {answer}", due)
        return said(LATE, f"the batch due {when(due, schedule)} has not arrived", due)
    if not schedule.known:
        return said(FRESH, schedule.describe)
    if schedule.rests(now):
        return said(RESTING, f"no batch is expected today ({schedule.describe})")
    return said(FRESH, "its latest batch has arrived")


def when(moment: datetime, schedule: Schedule) -> str:
    """``moment`` in the schedule's zone, as an operator reads it: "Tue 1 Dec 20:00 EST"."""
    local = utc(moment).astimezone(zone(schedule.zone))
    return f"{local:%a} {local.day} {local:%b %H:%M} {local.tzname()}"
