"""Which URLs from outside may become a link: absolute http(s) URLs and nothing else (no I/O)."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

MAX_LINK = 2048


def web_link(value: object) -> str | None:
    """``value``, stripped of ASCII white space, when it is an absolute http or https URL with a
    host, no white space, control, format or separator characters, and short enough to be a link;
    else None. ``javascript:``, ``data:``, ``vbscript:``, relative and scheme-relative URLs are None."""
    if not isinstance(value, str):
        return None
    url = value.strip(" \t\r\n\f\v")
    if not url or len(url) > MAX_LINK or not all(_plain(char) for char in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not host:
        return None
    return url


def _plain(char: str) -> bool:
    """Not white space, a control, a format character (bidi, zero-width) or a separator."""
    if " " < char < "\x7f":
        return True
    return unicodedata.category(char)[0] not in "CZ"
