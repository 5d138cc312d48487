"""The plain record every parser returns, and the helpers parsers share (ids, text clean-up).

No I/O here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, TypeVar

from digest.model.links import web_link
from digest.model.source import KINDS as KINDS  # the kinds the parsers read

# New-style ids (0704.0001 .. 2609.26811) and old-style ids (hep-th/9901001, math.GT/0309136).
_ARXIV_ID = re.compile(
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?(?![\d.])"
)
_ARXIV_URL = re.compile(r"arxiv\.org/(?:abs|pdf|html)/", re.IGNORECASE)
# White space and the C0 and C1 controls (an escape sequence in a title must not reach a terminal).
_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
MAX_COUNT = 2**31 - 1  # the largest count or version a database INTEGER column holds
log = logging.getLogger(__name__)
Entry = TypeVar("Entry")


@dataclass(frozen=True, slots=True)
class ParsedPaper:
    """One paper as one listing shows it.

    ``id`` is canonical: the arXiv id without version when the paper has one, else its URL.
    ``listed_on`` is the date of the listing (HF daily date, RSS announce date); ``rank`` is the
    1-based position in that listing.
    """

    id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    published: date | None
    url: str
    kind: str
    version: int | None = None
    pdf_url: str | None = None
    hf_url: str | None = None
    categories: tuple[str, ...] = ()
    github_repo: str | None = None
    project_page: str | None = None
    ai_keywords: tuple[str, ...] = ()
    ai_summary: str | None = None
    upvotes: int | None = None
    comments: int | None = None
    github_stars: int | None = None
    announce_type: str | None = None
    listed_on: date | None = None
    rank: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``digest parse --json`` (dates as ISO strings, tuples as lists)."""
        return {
            "id": self.id,
            "title": self.title,
            "authors": list(self.authors),
            "abstract": self.abstract,
            "published": self.published.isoformat() if self.published else None,
            "url": self.url,
            "upvotes": self.upvotes,
            "kind": self.kind,
            "version": self.version,
            "pdf_url": self.pdf_url,
            "hf_url": self.hf_url,
            "categories": list(self.categories),
            "github_repo": self.github_repo,
            "project_page": self.project_page,
            "ai_keywords": list(self.ai_keywords),
            "ai_summary": self.ai_summary,
            "comments": self.comments,
            "github_stars": self.github_stars,
            "announce_type": self.announce_type,
            "listed_on": self.listed_on.isoformat() if self.listed_on else None,
            "rank": self.rank,
        }


def paper_key(given: str) -> str:
    """The stored id of a paper given as its id, an arXiv id with or without version, or an arXiv URL."""
    found = parse_arxiv_id(given)
    return found[0] if found is not None else given.strip()


def parse_arxiv_id(text: str | None) -> tuple[str, int | None] | None:
    """Find an arXiv id in ``text`` (a bare id, an abs/pdf URL, an ``oai:arXiv.org:`` guid).

    Returns ``(id_without_version, version_or_None)``, or None when there is no arXiv id.
    """
    if not text:
        return None
    text = text.strip()
    match = _ARXIV_ID.fullmatch(text)
    if match is None:
        for prefix in ("oai:arXiv.org:", "arXiv:", "arxiv:"):
            if text.startswith(prefix):
                match = _ARXIV_ID.fullmatch(text[len(prefix) :])
                break
    if match is None and _ARXIV_URL.search(text):
        tail = _ARXIV_URL.split(text, maxsplit=1)[1]
        tail = tail.split("?", 1)[0].split("#", 1)[0].removesuffix(".pdf").rstrip("/")
        match = _ARXIV_ID.fullmatch(tail)
    if match is None:
        return None
    version = match.group("version")
    return match.group("id"), count(version) if version else None


def count(value: Any) -> int | None:
    """A count (upvotes, comments, stars, a version) from outside: a non-negative int a database
    column holds, from an int or a string of digits; anything else (a float, a bool, 10**30) is None."""
    if isinstance(value, str):
        value = int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        return None
    return value


def collect(entries: Iterable[Entry], build: Callable[[Entry, int], ParsedPaper | None]) -> list[ParsedPaper]:
    """One paper per entry, ranked by position in the listing. An entry that gives None, or whose
    values cannot be read (wrong type, out of range), is skipped: one bad entry never costs the listing."""
    papers = []
    for rank, entry in enumerate(entries, start=1):
        try:
            paper = build(entry, rank)
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError) as exc:
            log.warning("skipped entry %d of a listing: %s: %s", rank, type(exc).__name__, exc)
            continue
        if paper is not None:
            papers.append(paper)
    return papers


def with_web_links(paper: ParsedPaper) -> ParsedPaper | None:
    """``paper`` with every link that is not an http(s) URL dropped (its own link falls back to its
    arXiv abstract page, or to the URL it is known by); None for a paper known by no such URL."""
    known_by_url = _ARXIV_ID.fullmatch(paper.id) is None
    if known_by_url and web_link(paper.id) is None:
        return None
    links = (paper.url, paper.pdf_url, paper.hf_url, paper.github_repo, paper.project_page)
    url, pdf, hf, code, project = (web_link(link) for link in links)
    url = url or (paper.id if known_by_url else abs_url(paper.id))
    if (url, pdf, hf, code, project) == links:
        return paper
    return replace(paper, url=url, pdf_url=pdf, hf_url=hf, github_repo=code, project_page=project)


# The longest text a listing's paper keeps: well above any real one (arXiv takes titles of 300
# characters at most and abstracts of 1,920; its longest author lists have about 3,000 names).
MAX_TITLE = 1_000
MAX_ABSTRACT = 10_000
MAX_NAME = 200
MAX_AUTHORS = 5_000
MAX_TERMS = 200  # categories and keywords


def within_bounds(paper: ParsedPaper) -> ParsedPaper:
    """``paper`` with each text cut to what a real paper has at most (marked with "…"), so one hostile
    listing cannot make every digest that shows it megabytes long."""
    title, abstract = _cut(paper.title, MAX_TITLE), _cut(paper.abstract, MAX_ABSTRACT)
    authors = tuple(_cut(name, MAX_NAME) for name in paper.authors[:MAX_AUTHORS])
    categories = tuple(_cut(term, MAX_NAME) for term in paper.categories[:MAX_TERMS])
    keywords = tuple(_cut(term, MAX_NAME) for term in paper.ai_keywords[:MAX_TERMS])
    if (title, abstract, authors, categories, keywords) == (
        paper.title,
        paper.abstract,
        paper.authors,
        paper.categories,
        paper.ai_keywords,
    ):
        return paper
    log.warning("cut the overlong text of paper %s to size", paper.id[:MAX_NAME])
    return replace(
        paper, title=title, abstract=abstract, authors=authors, categories=categories, ai_keywords=keywords
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def clean_text(text: str | None) -> str:
    """Collapse every run of white space and control characters (line breaks and escape sequences'
    introducers included) to one space; strip the ends."""
    if not text:
        return ""
    return _SPACE.sub(" ", text).strip()


def abs_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def pdf_url(arxiv_id: str) -> str:
    return f"https://arxiv.org/pdf/{arxiv_id}"


def hf_url(arxiv_id: str) -> str:
    return f"https://huggingface.co/papers/{arxiv_id}"
