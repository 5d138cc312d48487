"""Source parsers: bytes of a fetched document in, a list of ParsedPaper out (no I/O).

``parse_document(content, kind)`` is the entry point; ``kind="auto"`` tells the kind from the content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from digest.errors import ParseError
from digest.parse.feeds import describe_document, parse_arxiv_api, parse_arxiv_rss, parse_feed
from digest.parse.hf import parse_daily_api, parse_listing_page
from digest.parse.limits import check_budget
from digest.parse.record import KINDS, ParsedPaper, with_web_links, within_bounds

PARSERS: dict[str, Callable[[bytes], list[ParsedPaper]]] = {
    "hf-daily": parse_daily_api,
    "hf-page": parse_listing_page,
    "arxiv-rss": parse_arxiv_rss,
    "arxiv-api": parse_arxiv_api,
    "feed": parse_feed,
}

_ROOT_ELEMENT = re.compile(rb"<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_HF_PAGE_MARKERS = (b'data-target="DailyPapers"', b'href="/papers/')
_ARXIV_RSS_MARKERS = (b"oai:arXiv.org:", b"<arxiv:announce_type", b"rss.arxiv.org")


def parse_document(content: bytes, kind: str = "auto") -> list[ParsedPaper]:
    """Parse ``content`` as ``kind`` (one of KINDS, or "auto" to detect it).

    Links that are not http(s) URLs are dropped, and so is a paper known by no such URL; texts are
    cut to what a real paper has at most (record.within_bounds).
    Raises ParseError for an unknown kind, an undetectable document, a document that is not of the
    kind given, or one with more tags or JSON containers than a listing has (parse.limits).
    """
    check_budget(content)
    if kind == "auto":
        kind = detect_kind(content)
    parser = PARSERS.get(kind)
    if parser is None:
        raise ParseError(f"Unknown kind {kind!r}; use one of: auto, {', '.join(KINDS)}.")
    return [within_bounds(kept) for paper in parser(content) if (kept := with_web_links(paper)) is not None]


def detect_kind(content: bytes) -> str:
    """Tell a document's kind from its content.

    JSON list: hf-daily; JSON {"body": Atom}: arxiv-api (a recorded response); HTML with Daily Papers
    data or cards: hf-page; arXiv RSS or RDF: arxiv-rss; arXiv API Atom: arxiv-api; other RSS/Atom: feed.
    Raises ParseError when none fits.
    """
    text = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"[", b"{"):
        kind = _json_kind(content)
    elif text[:1] == b"<":
        kind = _markup_kind(content)
    else:
        kind = None
    if kind is None:
        raise ParseError(
            f"Cannot tell what kind of listing this is (found {describe_document(content)}). "
            f"Known kinds: {', '.join(KINDS)}; pass --kind to choose one."
        )
    return kind


def _json_kind(content: bytes) -> str | None:
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, list):
        return "hf-daily"
    body = value.get("body") if isinstance(value, dict) else None
    if isinstance(body, str) and _markup_kind(body.encode("utf-8")) == "arxiv-api":
        return "arxiv-api"
    return None


def _markup_kind(content: bytes) -> str | None:
    """The kind of an HTML or XML document, from its root element and a few telltale strings.

    rss.arxiv.org serves RSS and Atom; either is arxiv-rss.
    """
    root = _root_element(content)
    if root == "html":
        return "hf-page" if any(marker in content for marker in _HF_PAGE_MARKERS) else None
    if root == "rdf":
        return "arxiv-rss" if b"arxiv.org" in content else "feed"
    if root == "feed" and b"arxiv.org/api" in content.split(b"<entry", 1)[0]:
        return "arxiv-api"
    if root in ("rss", "feed"):
        return "arxiv-rss" if any(marker in content for marker in _ARXIV_RSS_MARKERS) else "feed"
    return None


def _root_element(content: bytes) -> str | None:
    """The local name (lower case) of the first element, skipping declarations, comments and doctypes."""
    text = re.sub(rb"<\?.*?\?>|<!--.*?-->|<![^>]*>", b"", content[:65536], flags=re.DOTALL)
    match = _ROOT_ELEMENT.search(text)
    return match.group(2).decode("ascii").lower() if match else None
