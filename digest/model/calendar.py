"""When each kind of source publishes (no I/O beyond reading the shipped holiday list once).

arXiv announces Sunday to Thursday at 20:00 US Eastern, except on its holidays (arxiv_holidays.toml);
Hugging Face's daily list fills on weekdays, from midnight UTC; any other feed has the rhythm its
own history shows (``learn``). A batch counts as due ``grace`` after its moment: before that its
absence is no news.
"""

from __future__ import annotations

import statistics
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from importlib import resources

from digest.model.time import utc, zone

ARXIV_ZONE = "America/New_York"
SUNDAY_TO_THURSDAY = frozenset({6, 0, 1, 2, 3})  # date.weekday(): Monday is 0
WEEKDAYS = frozenset(range(5))
# rss.arxiv.org dates a batch announced at 20:00 with the next midnight (the captured feed's items
# carry "00:00:00 -0400"); the API's index lags further behind the announcement.
ARXIV_GRACE = {"arxiv-rss": timedelta(hours=4), "arxiv-api": timedelta(hours=6)}
# Hugging Face's list for a day fills from 00:00 UTC (the captured 2025-06-25 list: 14 papers
# submitted between 00:55 and 06:09 UTC).
HF_GRACE = timedelta(hours=9)
ARXIV_EARLY = timedelta(hours=1)  # a clock a little off on either side
FEED_GRACE = timedelta(hours=6)  # after the hour a feed usually brings its batch
FEED_EARLY = timedelta(hours=12)  # half its arrivals come before the median hour
LOOK_BACK = 15  # days searched for the last batch due: covers arXiv's longest pause with room
MIN_BATCHES = 4  # days with new items before a feed's rhythm is believed
MIN_HISTORY = timedelta(days=14)  # and the span of history it must cover
REGULAR = 0.5  # a weekday is in a feed's rhythm when it brought new items on at least this share of them


@dataclass(frozen=True, slots=True)
class Schedule:
    """Batches at ``at`` (local time in ``zone``) on ``weekdays`` (0 is Monday), none on
    ``holidays`` (local dates); ``grace`` after its moment a batch is due, and new items from
    ``early`` before it on count as that batch. ``known`` is False for a feed whose rhythm is not
    learned (yet): nothing is ever due from it."""

    describe: str
    zone: str = "UTC"
    weekdays: frozenset[int] = frozenset()
    at: time = time(0, 0)
    grace: timedelta = FEED_GRACE
    holidays: frozenset[date] = frozenset()
    known: bool = True
    early: timedelta = timedelta(0)  # how long before its moment a batch's items may already come

    def publishes_on(self, day: date) -> bool:
        """Whether a batch is scheduled on the local date ``day``."""
        return self.known and day.weekday() in self.weekdays and day not in self.holidays

    def batches(self, start: datetime, end: datetime) -> list[datetime]:
        """The batch moments (aware UTC) in [start, end), oldest first."""
        local = zone(self.zone)
        day = utc(start).astimezone(local).date() - timedelta(days=1)
        last = utc(end).astimezone(local).date()
        found = []
        while day <= last:
            if self.publishes_on(day):
                moment = datetime.combine(day, self.at, tzinfo=local).astimezone(UTC)
                if utc(start) <= moment < utc(end):
                    found.append(moment)
            day += timedelta(days=1)
        return found

    def last_due(self, now: datetime) -> datetime | None:
        """The moment of the newest batch due by ``now`` (its grace passed), if any in LOOK_BACK days."""
        due = self.batches(
            utc(now) - timedelta(days=LOOK_BACK), utc(now) - self.grace + timedelta(microseconds=1)
        )
        return due[-1] if due else None

    def next_batch(self, now: datetime) -> datetime | None:
        """The moment of the first batch after ``now``, if any in LOOK_BACK days."""
        coming = self.batches(utc(now) + timedelta(microseconds=1), utc(now) + timedelta(days=LOOK_BACK))
        return coming[0] if coming else None

    def rests(self, now: datetime) -> bool:
        """True when no batch is scheduled on the local date of ``now``."""
        return not self.publishes_on(utc(now).astimezone(zone(self.zone)).date())


@cache
def shipped_arxiv_holidays() -> frozenset[date]:
    """The holiday dates of arxiv_holidays.toml (each year's list names where it came from)."""
    text = resources.files("digest.model").joinpath("arxiv_holidays.toml").read_bytes()
    return frozenset(day for year in tomllib.loads(text.decode("utf-8")).values() for day in year["dates"])


def schedule_for(
    kind: str, arrivals: Sequence[datetime], now: datetime, extra_holidays: Iterable[date] = ()
) -> Schedule:
    """The schedule of a source of ``kind``; a generic feed's is learned from ``arrivals``, the
    moments its fetches brought items it had not listed before."""
    if kind in ARXIV_GRACE:
        return Schedule(
            "arXiv: Sunday to Thursday at 20:00 US Eastern, not on its holidays",
            ARXIV_ZONE,
            SUNDAY_TO_THURSDAY,
            time(20, 0),
            ARXIV_GRACE[kind],
            shipped_arxiv_holidays() | frozenset(extra_holidays),
            early=ARXIV_EARLY,
        )
    if kind in ("hf-daily", "hf-page"):
        return Schedule(
            "Hugging Face: weekdays, filled from 00:00 UTC", "UTC", WEEKDAYS, time(0, 0), HF_GRACE
        )
    return learn(arrivals, now)


def learn(arrivals: Sequence[datetime], now: datetime) -> Schedule:
    """A feed's rhythm from the moments it brought new items: the weekdays (UTC) on which it did on
    at least REGULAR of the occasions, at the median hour of its first arrival those days. Unknown
    until MIN_BATCHES days over MIN_HISTORY; a feed with no regular weekday has nothing due."""
    first: dict[date, datetime] = {}
    for moment in sorted(utc(arrival) for arrival in arrivals if utc(arrival) <= utc(now)):
        first.setdefault(moment.date(), moment)
    if len(first) < MIN_BATCHES or utc(now) - min(first.values()) < MIN_HISTORY:
        return Schedule("learning its rhythm from its first fetches", known=False)
    start, end = min(first), utc(now).date()
    occasions = [0] * 7
    for offset in range((end - start).days + 1):
        occasions[(start + timedelta(days=offset)).weekday()] += 1
    brought = [0] * 7
    for day in first:
        brought[day.weekday()] += 1
    weekdays = frozenset(
        day for day in range(7) if occasions[day] and brought[day] / occasions[day] >= REGULAR
    )
    if not weekdays:
        return Schedule("irregular: no weekday it reliably publishes on", known=False)
    minutes = statistics.median_low(
        moment.hour * 60 + moment.minute for day, moment in first.items() if day.weekday() in weekdays
    )
    at = time(minutes // 60, minutes % 60)
    names = ", ".join(DAY_NAMES[day] for day in sorted(weekdays))
    return Schedule(
        f"learned: {names} from {at:%H:%M} UTC", "UTC", weekdays, at, FEED_GRACE, early=FEED_EARLY
    )


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
