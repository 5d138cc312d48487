"""What a document may hold before it is parsed, and what one bad entry costs."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import ParseError, UnsafeDocument
from digest.parse import parse_document
from digest.parse.feeds import ensure_safe_xml
from digest.parse.limits import MAX_CONTAINERS, MAX_TAGS, as_text, check_budget
from digest.parse.record import (
    MAX_ABSTRACT,
    MAX_AUTHORS,
    MAX_NAME,
    MAX_TITLE,
    clean_text,
    collect,
    count,
    parse_arxiv_id,
)
from tests.support.data import FIXTURES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        ("42", 42),
        (0, 0),
        (2**31 - 1, 2**31 - 1),
        (2**31, None),
        (10**30, None),
        (-1, None),
        (True, None),
        (3.5, None),
        ("1e9", None),
        ("٣", None),
        ("9" * 5000, None),
        (None, None),
    ],
)
def test_counts_from_outside_are_kept_only_when_a_database_column_holds_them(
    value: object, expected: int | None
) -> None:
    assert count(value) == expected


def test_an_absurd_version_is_no_version() -> None:
    assert parse_arxiv_id("2401.00001v99999999999999999999") == ("2401.00001", None)
    assert parse_arxiv_id("2401.00001v3") == ("2401.00001", 3)


def test_an_entry_that_cannot_be_read_is_skipped_and_the_rest_are_kept() -> None:
    def build(entry: object, rank: int) -> object:
        return {"rank": rank, "value": 1 / entry}

    assert [paper["rank"] for paper in collect([1, 0, "x", 2], build)] == [1, 4]


def test_a_document_within_the_budget_passes_and_one_over_it_is_refused_with_the_count() -> None:
    check_budget(b"<b>" * MAX_TAGS)
    with pytest.raises(ParseError, match=f"{MAX_TAGS + 1:,} tags"):
        check_budget(b"<b>" * (MAX_TAGS + 1))
    for escaped in (b"&lt;b&gt;", b"&#60;b&#62;", b"&#060;b>", b"&#x3C;b>", b"&#X3c;b>"):
        with pytest.raises(ParseError, match="tags"):
            check_budget(escaped * (MAX_TAGS + 1))
    with pytest.raises(ParseError, match="JSON objects and arrays"):
        check_budget(b"[" + b"{}," * MAX_CONTAINERS + b"{}]")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_wide_encodings_are_recognised_and_their_entities_refused(codec: str) -> None:
    text = (
        "<?xml version='1.0'?><!DOCTYPE r [<!ENTITY a 'x'>]><rss><channel><title>&a;</title></channel></rss>"
    )
    content = text.encode(codec)
    assert as_text(content) is not None and "<!ENTITY" in as_text(content)
    with pytest.raises(UnsafeDocument):
        ensure_safe_xml(content)


def test_wide_markup_is_counted_by_its_characters() -> None:
    with pytest.raises(ParseError, match="tags"):
        check_budget(("<?xml version='1.0'?>" + "<b>" * MAX_TAGS).encode("utf-32"))


def test_a_listing_cannot_put_an_escape_sequence_or_a_megabyte_into_a_papers_text() -> None:
    listing = json.loads((FIXTURES / "hf_daily_papers_api_2024-09-16_prettified.json").read_text())
    first = listing[0]["paper"]
    first["title"] = "\x1b[2J\x1b]0;pwned\x07Clear screen " + "very " * 1000 + "long"
    first["summary"] = "a" * 30_000
    first["authors"] = [{"name": "Ada\x9b31m Lovelace" + "e" * 500}] * 6_000
    [paper, *others] = parse_document(json.dumps(listing).encode(), "hf-daily")
    assert len(paper.title) == MAX_TITLE and paper.title.endswith("…")
    assert not any(ord(char) < 32 or 127 <= ord(char) < 160 for char in paper.title + "".join(paper.authors))
    assert paper.title.startswith("[2J ]0;pwned Clear screen very")
    assert len(paper.abstract) == MAX_ABSTRACT and len(paper.authors) == MAX_AUTHORS
    assert paper.authors[0].startswith("Ada 31m Lovelace") and len(paper.authors[0]) == MAX_NAME
    assert len(others) == len(listing) - 1  # the other papers are as they were


@given(st.text(max_size=300))
def test_cleaned_text_has_no_control_characters_and_no_runs_of_space(text: str) -> None:
    cleaned = clean_text(text)
    assert not any(unicodedata.category(char) == "Cc" for char in cleaned)
    assert "  " not in cleaned and cleaned == cleaned.strip()
