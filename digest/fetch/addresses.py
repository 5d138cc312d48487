"""The URLs of date-addressed listings: Hugging Face's daily papers have one per date."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.fetch.http import is_local

DATE_ADDRESSED = frozenset({"hf-daily", "hf-page"})


def takes_dates(kind: str, url: str) -> bool:
    """True when a source can be fetched for a given listing date: its URL has ``{date}``, or it is
    a Hugging Face listing on the web (a local file is the same document whatever the date)."""
    return "{date}" in url or (kind in DATE_ADDRESSED and not is_local(url))


def ranks_trending(kind: str, url: str) -> bool:
    """True when a source's listing comes in Hugging Face's trending order: an hf-daily URL that
    asks the API for ``sort=trending``."""
    return kind == "hf-daily" and ("sort", "trending") in parse_qsl(urlsplit(url).query)


def url_for_date(kind: str, url: str, day: date | None, today: date) -> str:
    """The URL of a source of ``kind`` for listing date ``day`` (its own URL when ``day`` is None).

    ``{date}`` in a URL is replaced (by ``today`` when ``day`` is None); otherwise hf-daily gets
    ``?date=``, hf-page ``/date/YYYY-MM-DD``, and other kinds have no dates.
    """
    if day is None:
        return url.replace("{date}", today.isoformat()) if "{date}" in url else url
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
    """Every date from ``since`` to ``today``, both included."""
    return [since + timedelta(days=offset) for offset in range((today - since).days + 1)]
