"""Whose text a paper shows: arXiv over Hugging Face over any other feed."""

from __future__ import annotations

import pytest

from digest.ingest.merge import merge
from digest.model.source import text_authority

ARXIV_TEXT = {
    "text_authority": 3,
    "version": 2,
    "title": "Real",
    "abstract": "Real abstract",
    "authors": ["A"],
}


@pytest.mark.parametrize(
    ("kind", "location", "expected"),
    [
        ("arxiv-rss", "https://rss.arxiv.org/rss/cs.LG", 3),
        ("arxiv-api", "http://export.arxiv.org/api/query?search_query=all:x", 3),
        ("hf-daily", "https://huggingface.co/api/daily_papers", 2),
        ("arxiv-rss", "https://arxiv.org.evil.example/rss", 1),
        ("arxiv-rss", "https://evilarxiv.org/rss", 1),
        ("hf-page", "http://127.0.0.1:8000/papers", 1),
        ("arxiv-rss", "/srv/feeds/cs.LG.xml", 3),
        ("arxiv-rss", "file:///srv/feeds/cs.LG.xml", 3),
        ("feed", "https://arxiv.org/anything", 1),
    ],
)
def test_a_listing_is_believed_as_arxiv_or_hugging_face_only_from_that_site(
    kind: str, location: str, expected: int
) -> None:
    assert text_authority(kind, location) == expected


def test_a_feed_claiming_a_newer_version_only_fills_what_arxiv_left_empty() -> None:
    spoof = {"text_authority": 1, "version": 99, "title": "Spoof", "abstract": "Spoof", "categories": ["x"]}
    assert merge(ARXIV_TEXT, spoof) == {"categories": ["x"]}


def test_arxiv_replaces_a_feeds_text_whatever_version_the_feed_claimed() -> None:
    feed_text = {"text_authority": 1, "version": 99, "title": "Spoof", "abstract": "Spoof"}
    arxiv = {"text_authority": 3, "version": 1, "title": "Real", "abstract": "Real abstract"}
    assert merge(feed_text, arxiv) == {
        "text_authority": 3,
        "version": 1,
        "title": "Real",
        "abstract": "Real abstract",
    }


def test_hugging_face_replaces_a_feeds_text_and_drops_its_claimed_version() -> None:
    feed_text = {"text_authority": 1, "version": 99, "title": "Spoof", "abstract": ""}
    hf = {"text_authority": 2, "version": None, "title": "Real", "abstract": "From HF"}
    assert merge(feed_text, hf) == {
        "text_authority": 2,
        "version": None,
        "title": "Real",
        "abstract": "From HF",
    }


def test_between_arxiv_listings_the_newer_version_wins() -> None:
    newer = {**ARXIV_TEXT, "version": 3, "title": "Revised"}
    assert merge(ARXIV_TEXT, newer) == {"version": 3, "title": "Revised"}
    assert merge(newer, ARXIV_TEXT) == {}


def test_code_and_project_links_from_a_lesser_source_only_fill_in() -> None:
    hf = {"text_authority": 2, "github_repo": "https://github.com/real/repo", "project_page": None}
    feed = {
        "text_authority": 1,
        "github_repo": "https://github.com/evil/x",
        "project_page": "https://p.example",
    }
    assert merge(hf, feed) == {"project_page": "https://p.example"}


def test_a_lesser_source_fills_a_missing_version_but_never_changes_one() -> None:
    assert merge({"text_authority": 3, "version": None}, {"text_authority": 1, "version": 2}) == {
        "version": 2
    }
    assert merge({"text_authority": 3, "version": 1}, {"text_authority": 2, "version": None}) == {}
