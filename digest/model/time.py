"""Time: every function that needs "now" takes it; a ``Clock`` gives it where time must move on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real time, aware UTC."""
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """``moment`` as aware UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_date(moment: datetime) -> date:
    """The UTC calendar date of ``moment``."""
    return utc(moment).date()


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``. Raises ZoneInfoNotFoundError (a KeyError) or ValueError."""
    return ZoneInfo(name)
