"""Parsers for Hugging Face Daily Papers: the JSON API and the HTML listing page.

Pure functions over bytes, no I/O. Both raise ParseError when the document is not what they read;
single broken items (no arXiv id, no title, wrong shape) are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from bs4 import BeautifulSoup, SoupStrainer, Tag

from digest.errors import ParseError
from digest.parse.feeds import describe_document
from digest.parse.record import (
    ParsedPaper,
    abs_url,
    clean_text,
    collect,
    count,
    hf_url,
    parse_arxiv_id,
    pdf_url,
)

_DAILY_PAPERS = {"data-target": "DailyPapers"}
_PAPER_HREF = re.compile(r"^/papers/([^/?#]+)$")


def parse_daily_api(content: bytes) -> list[ParsedPaper]:
    """Read ``/api/daily_papers`` JSON: a list of items ``{paper: {...}, numComments, publishedAt, ...}``.

    Raises ParseError when the document is not a JSON list.
    """
    try:
        items = json.loads(content)
    except (ValueError, RecursionError):
        items = None
    if not isinstance(items, list):
        raise ParseError(
            f"Expected Hugging Face daily papers JSON (a list of items), found {describe_document(content)}."
        )
    return collect(items, lambda item, rank: _item_paper(item, rank, "hf-daily"))


def parse_listing_page(content: bytes) -> list[ParsedPaper]:
    """Read a ``huggingface.co/papers`` HTML page.

    Papers come from the JSON in the DailyPapers element's ``data-props``; when that is missing or
    unusable, from the visible cards (which show no abstract, authors or dates). Only the DailyPapers
    element is parsed unless the cards are needed. Raises ParseError for an XML document, and for a
    page with neither data nor cards.
    """
    head = content[:2048].lstrip().lower()
    if head.startswith(b"<?xml") and b"<html" not in head:
        raise _not_a_listing_page(content)
    strained = _soup(content, parse_only=SoupStrainer(attrs=_DAILY_PAPERS))
    props = _daily_papers_props(strained.find(attrs=_DAILY_PAPERS))
    if props is not None:
        listed_on = _date(props.get("date"))
        return collect(props["dailyPapers"], lambda item, rank: _item_paper(item, rank, "hf-page", listed_on))
    return _parse_cards(content)


def _soup(content: bytes, parse_only: SoupStrainer | None = None) -> BeautifulSoup:
    """The page parsed by lxml in the encoding it declares; as UTF-8 when lxml refuses that name (a
    control character in a damaged ``<meta charset>``)."""
    try:
        return BeautifulSoup(content, "lxml", parse_only=parse_only)
    except ValueError:
        return BeautifulSoup(content, "lxml", parse_only=parse_only, from_encoding="utf-8")


def _daily_papers_props(element: Tag | None) -> dict[str, Any] | None:
    """The DailyPapers ``data-props`` JSON when it holds a ``dailyPapers`` list, else None."""
    raw = element.get("data-props") if element is not None else None
    if not isinstance(raw, str):
        return None
    try:
        props = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(props, dict) and isinstance(props.get("dailyPapers"), list):
        return props
    return None


def _item_paper(item: Any, rank: int, kind: str, listed_on: date | None = None) -> ParsedPaper | None:
    """One API item as a paper, or None when it has no arXiv id or no title.

    ``listed_on`` is the listing page's date when given, else the paper's submittedOnDailyAt, else the
    item's publishedAt.
    """
    paper = item.get("paper") if isinstance(item, dict) else None
    if not isinstance(paper, dict):
        return None
    found = parse_arxiv_id(paper.get("id")) if isinstance(paper.get("id"), str) else None
    title = _text(paper.get("title"))
    if found is None or not title:
        return None
    arxiv_id, version = found
    return ParsedPaper(
        id=arxiv_id,
        version=version,
        title=title,
        abstract=_text(paper.get("summary")),
        authors=_author_names(paper.get("authors")),
        published=_date(paper.get("publishedAt")),
        url=abs_url(arxiv_id),
        pdf_url=pdf_url(arxiv_id),
        hf_url=hf_url(arxiv_id),
        kind=kind,
        upvotes=count(paper.get("upvotes")),
        comments=count(item.get("numComments")),
        github_repo=_text(paper.get("githubRepo")) or None,
        github_stars=count(paper.get("githubStars")),
        project_page=_text(paper.get("projectPage")) or None,
        ai_keywords=_strings(paper.get("ai_keywords")),
        ai_summary=_text(paper.get("ai_summary")) or None,
        listed_on=listed_on or _date(paper.get("submittedOnDailyAt")) or _date(item.get("publishedAt")),
        rank=rank,
    )


def _parse_cards(content: bytes) -> list[ParsedPaper]:
    """The fallback: papers from the page's visible ``<article>`` cards, dated by the page's <time>."""
    soup = _soup(content)
    cards = [(article, link) for article in soup.find_all("article") if (link := _card_link(article))]
    if not cards:
        raise _not_a_listing_page(content)
    time = soup.find("time", attrs={"datetime": True})
    listed_on = _date(time["datetime"]) if time is not None else None
    return collect(cards, lambda card, rank: _card_paper(card[0], card[1], rank, listed_on))


def _not_a_listing_page(content: bytes) -> ParseError:
    return ParseError(
        "Expected a Hugging Face Daily Papers page (DailyPapers data or paper cards), "
        f"found {describe_document(content)}."
    )


def _card_link(article: Tag) -> Tag | None:
    """The card's ``h3 > a[href="/papers/<id>"]``, or None when the article is not a paper card."""
    link = article.select_one("h3 > a[href]")
    return link if link is not None and _PAPER_HREF.match(str(link["href"])) else None


def _card_paper(article: Tag, link: Tag, rank: int, listed_on: date | None) -> ParsedPaper | None:
    """One card: title and id from its paper link, upvotes from ``div.leading-none``."""
    found = parse_arxiv_id(_PAPER_HREF.match(str(link["href"])).group(1))
    title = clean_text(link.get_text())
    if found is None or not title:
        return None
    arxiv_id, version = found
    comments = article.select('a[href$="#community"]')
    return ParsedPaper(
        id=arxiv_id,
        version=version,
        title=title,
        abstract="",
        authors=(),
        published=None,
        url=abs_url(arxiv_id),
        pdf_url=pdf_url(arxiv_id),
        hf_url=hf_url(arxiv_id),
        kind="hf-page",
        upvotes=_first_count(article.select("div.leading-none")),
        comments=_first_count(comments),
        listed_on=listed_on,
        rank=rank,
    )


def _first_count(elements: Iterable[Tag]) -> int | None:
    """The first element text that is a plain number ("94"); other texts ("Submitted by x") are skipped."""
    for element in elements:
        text = element.get_text(strip=True)
        if text.isascii() and text.isdigit():
            return count(text)
    return None


def _text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _strings(values: Any) -> tuple[str, ...]:
    """The non-empty cleaned strings of a JSON list, in order; anything else gives ()."""
    if not isinstance(values, list):
        return ()
    return tuple(text for text in map(_text, values) if text)


def _author_names(authors: Any) -> tuple[str, ...]:
    """``[a["name"] for a in authors]`` in order, hidden authors included, unnamed entries skipped."""
    if not isinstance(authors, list):
        return ()
    return _strings([author.get("name") for author in authors if isinstance(author, dict)])


def _date(value: Any) -> date | None:
    """The date of an ISO timestamp such as ``2024-05-27T03:50:58.348Z``, as written."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None
