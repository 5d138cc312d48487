"""The kinds of listing digest reads, and how far each is believed about a paper's text (no I/O)."""

from __future__ import annotations

from urllib.parse import urlsplit

KINDS = ("hf-daily", "hf-page", "arxiv-rss", "arxiv-api", "feed")
# What a source has published by now (digest.model.freshness decides which).
FRESH, RESTING, LATE, STALE, FAILING = "fresh", "resting", "late", "stale", "failing"
STATES = (FRESH, RESTING, LATE, STALE, FAILING)

FEED_AUTHORITY = 1
# arXiv is where a paper's title and abstract are written; Hugging Face copies them; a feed may say anything.
AUTHORITY = {"arxiv-api": 3, "arxiv-rss": 3, "hf-daily": 2, "hf-page": 2, "feed": FEED_AUTHORITY}
OFFICIAL_HOSTS = {
    "arxiv-api": "arxiv.org",
    "arxiv-rss": "arxiv.org",
    "hf-daily": "huggingface.co",
    "hf-page": "huggingface.co",
}


def text_authority(kind: str, location: str) -> int:
    """How far a listing of ``kind`` fetched from ``location`` is believed about a paper's text: 3 for
    arXiv, 2 for Hugging Face, 1 for any other feed. A listing read as arXiv or Hugging Face counts as
    such only when it came from that site (or a subdomain), or from a local file the operator named;
    from anywhere else, whatever it looks like, it counts as a feed."""
    official = OFFICIAL_HOSTS.get(kind)
    if official is None:
        return FEED_AUTHORITY
    parts = urlsplit(location)
    if parts.scheme.lower() in {"", "file"} or len(parts.scheme) == 1:
        return AUTHORITY[kind]
    host = (parts.hostname or "").lower().rstrip(".")
    return AUTHORITY[kind] if host == official or host.endswith("." + official) else FEED_AUTHORITY
