"""Parsers for RSS/Atom documents: arXiv RSS (RSS 2.0 and the old RDF), the arXiv API (Atom), any feed.

Pure functions over bytes, no I/O. Every XML document passes ``ensure_safe_xml`` before feedparser sees
it. Each parser raises ParseError when the document is not the kind it reads; single broken entries are
skipped.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterable
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from xml.etree.ElementTree import ParseError as XMLSyntaxError

import feedparser
from bs4 import BeautifulSoup
from defusedxml import EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring as defused_fromstring

from digest.errors import ParseError, UnsafeDocument
from digest.parse.limits import as_text
from digest.parse.record import ParsedPaper, abs_url, clean_text, collect, parse_arxiv_id, pdf_url

_ANNOUNCE_PREFIX = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*Abstract:\s*", re.IGNORECASE)
_RDF_TITLE = re.compile(
    r"^(?P<title>.*?)\.?\s*\(arXiv:(?P<id>\S+)\s+\[(?P<category>[^\]]+)\]"
    r"(?:\s+(?P<flag>UPDATED|CROSS LISTED))?\)\s*$",
    re.DOTALL,
)
_RDF_ANNOUNCE_TYPES = {None: "new", "UPDATED": "replace", "CROSS LISTED": "cross"}
_AUTHOR_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")
_NAME_SUFFIXES = frozenset({"Jr", "Jr.", "Sr", "Sr.", "II", "III", "IV"})
_BLOCK_TAGS = ("p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote")
_API_ERROR_ID = re.compile(r"^https?://arxiv\.org/api/errors", re.IGNORECASE)
_LEADING = b"\xef\xbb\xbf \t\r\n"  # a UTF-8 byte order mark and white space
_JSON_NAMES = {list: "a JSON list", dict: "a JSON object"}
_ENTITY_DECLARATION = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)


def ensure_safe_xml(content: bytes) -> None:
    """Refuse XML that declares entities (billion laughs, XXE) or pulls in external references.

    Raises UnsafeDocument without expanding or fetching anything. Plain syntax errors pass: feedparser
    reads broken feeds tolerantly.
    """
    try:
        defused_fromstring(content, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except EntitiesForbidden as exc:
        raise UnsafeDocument(
            f"Refused the document: it declares XML entities ({exc.name!r}), which a feed never needs "
            "and which can expand without bound or read local files. The source was not parsed; "
            "check that its URL points at a genuine feed."
        ) from None
    except ExternalReferenceForbidden as exc:
        raise UnsafeDocument(
            f"Refused the document: it refers to an external entity ({exc.sysid!r}). The source was "
            "not parsed; check that its URL points at a genuine feed."
        ) from None
    except (XMLSyntaxError, LookupError, ValueError):
        # Broken XML reaches feedparser's strict parser first, which would expand entities that a
        # syntax error kept defusedxml from seeing (an unknown encoding such as UTF-32, junk before
        # the prolog). So look for a declaration in the bytes, and in the text of a wide encoding.
        wide = as_text(content)
        if _ENTITY_DECLARATION.search(content) or (
            wide is not None and _ENTITY_DECLARATION.search(wide.encode("utf-8", errors="replace"))
        ):
            raise UnsafeDocument(
                "Refused the document: it is not well-formed XML and declares XML entities, which a feed "
                "never needs. The source was not parsed; check that its URL points at a genuine feed."
            ) from None


def describe_document(content: bytes) -> str:
    """A few words on what ``content`` looks like, for error messages ("an HTML page", "a JSON object")."""
    head = content[:2048].lstrip(_LEADING)
    if not head:
        return "an empty document"
    if _starts_like_json(head):
        try:
            value = json.loads(content)
        except (ValueError, RecursionError):
            return "text that starts like JSON but is not valid JSON"
        return _JSON_NAMES.get(type(value), "a JSON value")
    if head.lower().startswith(b"<!doctype html") or b"<html" in head.lower():
        return "an HTML page"
    root = re.search(rb"<([A-Za-z_][\w.:-]*)", head)
    if head.startswith(b"<") and root:
        return f"XML with root element <{root.group(1).decode('ascii', 'replace')}>"
    preview = content[:40].decode("utf-8", "replace")
    return f"text starting {preview!r}"


def _starts_like_json(content: bytes) -> bool:
    return content.lstrip(_LEADING)[:1] in (b"[", b"{")


def parse_arxiv_rss(content: bytes) -> list[ParsedPaper]:
    """Read an rss.arxiv.org feed: RSS 2.0 with announce types, or the old RSS 1.0/RDF format.

    Raises ParseError when the document is not a feed, or when none of its entries names an arXiv paper.
    """
    parsed = _load_feed(content, "an arXiv RSS feed")
    listed_on = _written_date(parsed.feed.get("published") or parsed.feed.get("updated"))
    build = _rdf_paper if parsed.get("version") == "rss10" else _rss_paper
    papers = collect(parsed.entries, lambda entry, rank: build(entry, rank, listed_on))
    _require_arxiv_entries(parsed.entries, papers, "an arXiv RSS feed")
    return papers


def parse_arxiv_api(content: bytes) -> list[ParsedPaper]:
    """Read an arXiv API response (Atom, 2016 or 2026 format, or a recorded {url, status_code, body}).

    Raises ParseError with arXiv's own text when the response is an API error, and when the document
    is not an arXiv API feed.
    """
    parsed = _load_feed(_unwrap_recorded_response(content), "an arXiv API Atom feed")
    for entry in parsed.entries:
        if _API_ERROR_ID.match(entry.get("id") or ""):
            message = clean_text(entry.get("summary")) or "no details given"
            raise ParseError(f"The arXiv API answered with an error: {message}. Check the query.")
    papers = collect(parsed.entries, _api_paper)
    _require_arxiv_entries(parsed.entries, papers, "an arXiv API Atom feed")
    return papers


def parse_feed(content: bytes) -> list[ParsedPaper]:
    """Read any RSS or Atom feed; entries that link to arXiv get their canonical arXiv id.

    Raises ParseError when the document is not a feed.
    """
    parsed = _load_feed(content, "an RSS or Atom feed")
    return collect(parsed.entries, _feed_paper)


def _load_feed(content: bytes, expected: str) -> Any:
    """Check ``content`` is safe, then parse it with feedparser (from memory: never a path or a URL)."""
    if _starts_like_json(content):
        raise ParseError(f"Expected {expected}, found {describe_document(content)}.")
    ensure_safe_xml(content)
    try:
        parsed = feedparser.parse(io.BytesIO(content), sanitize_html=False, resolve_relative_uris=False)
    except ValueError as exc:  # feedparser's strict parser trips on some malformed namespaces
        raise ParseError(f"Expected {expected}, found XML feedparser cannot read ({exc}).") from None
    if not parsed.entries and (parsed.get("bozo") or not parsed.get("version")):
        raise ParseError(f"Expected {expected}, found {describe_document(content)}.")
    return parsed


def _unwrap_recorded_response(content: bytes) -> bytes:
    """Return the Atom body of a recorded {url, status_code, body} response; other content as is."""
    if not _starts_like_json(content):
        return content
    try:
        recorded = json.loads(content)
    except (ValueError, RecursionError):
        raise ParseError("Expected arXiv API Atom XML or a recorded response, found invalid JSON.") from None
    body = recorded.get("body") if isinstance(recorded, dict) else None
    if not isinstance(body, str):
        raise ParseError(
            "Expected arXiv API Atom XML or a recorded response (a JSON object with a 'body' string), "
            f"found {describe_document(content)} without a 'body' string."
        )
    return body.encode("utf-8")


def _require_arxiv_entries(entries: list[Any], papers: list[ParsedPaper], expected: str) -> None:
    if entries and not papers:
        raise ParseError(
            f"Expected {expected}, found a feed whose {len(entries)} entries name no arXiv paper."
        )


def _rss_paper(entry: Any, rank: int, listed_on: date | None) -> ParsedPaper | None:
    """An item of the current rss.arxiv.org format (guid oai:arXiv.org:IDvN, plain-text description)."""
    found = parse_arxiv_id(entry.get("id")) or parse_arxiv_id(entry.get("link"))
    title = clean_text(entry.get("title"))
    if found is None or not title:
        return None
    arxiv_id, version = found
    announce_type = clean_text(entry.get("arxiv_announce_type")) or None
    listed = _written_date(entry.get("published")) or listed_on
    return ParsedPaper(
        id=arxiv_id,
        version=version,
        title=title,
        abstract=clean_text(_ANNOUNCE_PREFIX.sub("", entry.get("summary") or "")),
        authors=tuple(name for creator in _names(_author_names(entry)) for name in split_authors(creator)),
        published=_first_announced(announce_type, version, listed),
        url=abs_url(arxiv_id),
        pdf_url=pdf_url(arxiv_id),
        kind="arxiv-rss",
        categories=_unique(tag.get("term") for tag in entry.get("tags") or ()),
        announce_type=announce_type,
        listed_on=listed,
        rank=rank,
    )


def _first_announced(announce_type: str | None, version: int | None, listed: date | None) -> date | None:
    """The listing date is the paper's publication date only for a new paper's first version; the
    feed says nothing of when a cross-listed or replaced paper first appeared."""
    return listed if announce_type == "new" and version in (None, 1) else None


def _rdf_paper(entry: Any, rank: int, listed_on: date | None) -> ParsedPaper | None:
    """An item of the old RDF format: "Title. (arXiv:IDvN [cat] UPDATED)", HTML abstract and creators."""
    match = _RDF_TITLE.match(clean_text(entry.get("title")))
    found = parse_arxiv_id(match.group("id")) if match else None
    if match is None or found is None or not clean_text(match.group("title")):
        return None
    arxiv_id, version = found
    announce_type = _RDF_ANNOUNCE_TYPES[match.group("flag")]
    return ParsedPaper(
        id=arxiv_id,
        version=version,
        title=clean_text(match.group("title")),
        abstract=html_to_text(entry.get("summary")),
        authors=_linked_authors(entry.get("author")),
        published=_first_announced(announce_type, version, listed_on),
        url=abs_url(arxiv_id),
        pdf_url=pdf_url(arxiv_id),
        kind="arxiv-rss",
        categories=(match.group("category").strip(),),
        announce_type=announce_type,
        listed_on=listed_on,
        rank=rank,
    )


def _api_paper(entry: Any, rank: int) -> ParsedPaper | None:
    """An arXiv API entry; categories list the primary one first."""
    found = parse_arxiv_id(entry.get("id")) or parse_arxiv_id(entry.get("link"))
    title = clean_text(entry.get("title"))
    if found is None or not title:
        return None
    arxiv_id, version = found
    primary = entry.get("arxiv_primary_category")
    primary_term = primary.get("term") if isinstance(primary, dict) else None
    pdf_links = [link.get("href") for link in entry.get("links") or () if link.get("title") == "pdf"]
    return ParsedPaper(
        id=arxiv_id,
        version=version,
        title=title,
        abstract=clean_text(entry.get("summary")),
        authors=_names(_author_names(entry)),
        published=_written_date(entry.get("published")),
        url=abs_url(arxiv_id),
        pdf_url=next(iter(_names(pdf_links)), None) or pdf_url(arxiv_id),
        kind="arxiv-api",
        categories=_unique([primary_term, *(tag.get("term") for tag in entry.get("tags") or ())]),
        rank=rank,
    )


def _feed_paper(entry: Any, rank: int) -> ParsedPaper | None:
    """An entry of any feed: arXiv id when its link or guid has one, else the link (else the guid)."""
    link = clean_text(entry.get("link")) or None
    guid = clean_text(entry.get("id")) or None
    title = _entry_text(entry, "title")
    found = parse_arxiv_id(guid) or parse_arxiv_id(link)
    if not title or (found is None and not (link or guid)):
        return None
    arxiv_id, version = found or (None, None)
    return ParsedPaper(
        id=arxiv_id or link or guid,
        version=version,
        title=title,
        abstract=_entry_text(entry, "summary"),
        authors=_names(_author_names(entry)),
        published=_written_date(entry.get("published") or entry.get("updated")),
        url=abs_url(arxiv_id) if arxiv_id else link or guid,
        pdf_url=pdf_url(arxiv_id) if arxiv_id else None,
        kind="feed",
        categories=_unique(tag.get("term") for tag in entry.get("tags") or ()),
        rank=rank,
    )


def _entry_text(entry: Any, key: str) -> str:
    """A text field of a feed entry as plain text: HTML content loses its tags, entities are decoded."""
    detail = entry.get(f"{key}_detail") or {}
    value = entry.get(key)
    if detail.get("type") in ("text/html", "application/xhtml+xml"):
        return html_to_text(value)
    return clean_text(value)


def html_to_text(markup: str | None) -> str:
    """Strip tags from an HTML fragment, decode entities and collapse white space."""
    if not markup or "<" not in markup:
        return clean_text(html.unescape(markup or ""))
    soup = BeautifulSoup(markup, "lxml")
    for tag in soup(["script", "style"]):
        tag.decompose()
    for tag in soup(_BLOCK_TAGS):
        tag.insert_after(" ")
    return clean_text(soup.get_text())


def split_authors(names: str | None) -> tuple[str, ...]:
    """Split "A, B, and C" / "A and B" / "A, B" into ordered names; "Jr."-style suffixes stay attached."""
    authors: list[str] = []
    for part in _AUTHOR_SEPARATOR.split(clean_text(names)):
        if part in _NAME_SUFFIXES and authors:
            authors[-1] = f"{authors[-1]}, {part}"
        elif part:
            authors.append(part)
    return tuple(authors)


def _linked_authors(creators: str | None) -> tuple[str, ...]:
    """Authors of an old-RDF item: the texts of the <a> links in order, else the comma-separated text."""
    if not creators:
        return ()
    soup = BeautifulSoup(creators, "lxml")
    linked = _names(link.get_text() for link in soup.find_all("a"))
    return linked or split_authors(soup.get_text())


def _author_names(entry: Any) -> list[Any]:
    """The raw ``name`` of each author feedparser found (one per <author> or <dc:creator>)."""
    return [author.get("name") for author in entry.get("authors") or ()]


def _names(values: Iterable[Any]) -> tuple[str, ...]:
    """The non-empty strings of ``values``, cleaned, in order (two authors may share a name)."""
    cleaned = (clean_text(value) for value in values if isinstance(value, str))
    return tuple(value for value in cleaned if value)


def _unique(values: Iterable[Any]) -> tuple[str, ...]:
    """Like ``_names`` with duplicates dropped (categories)."""
    return tuple(dict.fromkeys(_names(values)))


def _written_date(text: str | None) -> date | None:
    """The calendar date as written in an RFC 822 or ISO 8601 timestamp (not shifted to UTC)."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        return None
