"""A paper's place in Hugging Face's trending order: recorded from a sort=trending source, kept by
every other source, taken back when the paper leaves the list."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.fetch.addresses import ranks_trending
from digest.ingest.merge import changes_for, unranked
from digest.model.figures import Figures
from digest.parse.record import ParsedPaper

NOW = datetime(2026, 6, 12, 9, tzinfo=UTC)


def listed(paper_id: str, rank: int, upvotes: int = 5) -> ParsedPaper:
    return ParsedPaper(
        paper_id,
        "A title",
        "",
        (),
        None,
        "https://arxiv.org/abs/" + paper_id,
        "hf-daily",
        upvotes=upvotes,
        rank=rank,
    )


def snapshots(
    papers: list[ParsedPaper], metrics: dict[str, Figures], ranked: bool
) -> list[tuple[str, int | None]]:
    changes = changes_for(
        papers, stored={}, metrics=metrics, source_id=1, listed_on=None, now=NOW, ranked=ranked
    )
    return [(row["paper_id"], row["trending_rank"]) for row in changes.snapshots]


@pytest.mark.parametrize(
    ("kind", "url", "expected"),
    [
        ("hf-daily", "https://huggingface.co/api/daily_papers?sort=trending", True),
        ("hf-daily", "https://huggingface.co/api/daily_papers?limit=50&sort=trending", True),
        ("hf-daily", "https://huggingface.co/api/daily_papers", False),
        ("hf-daily", "https://huggingface.co/api/daily_papers?sort=publishedAt", False),
        ("feed", "https://example.org/feed?sort=trending", False),
    ],
)
def test_only_a_daily_papers_url_asking_for_the_trending_sort_ranks_by_trending(
    kind: str, url: str, expected: bool
) -> None:
    assert ranks_trending(kind, url) is expected


def test_a_trending_listing_records_each_papers_place_once_it_changes() -> None:
    papers = [listed("2606.00001", 1), listed("2606.00002", 2)]
    assert snapshots(papers, {}, ranked=True) == [("2606.00001", 1), ("2606.00002", 2)]
    same = {"2606.00001": Figures(5, None, None, 1), "2606.00002": Figures(5, None, None, 3)}
    assert snapshots(papers, same, ranked=True) == [("2606.00002", 2)]


def test_another_source_keeps_the_place_a_paper_has_so_the_two_never_take_turns() -> None:
    known = {"2606.00001": Figures(5, None, None, 4)}
    assert snapshots([listed("2606.00001", 9)], known, ranked=False) == []
    assert snapshots([listed("2606.00001", 9, upvotes=6)], known, ranked=False) == [("2606.00001", 4)]


def test_a_paper_that_left_the_trending_list_loses_its_place_and_keeps_its_figures() -> None:
    metrics = {"gone": Figures(12, 3, None, 2), "unplaced": Figures(1, None, None, None)}
    [row] = unranked({"gone", "unplaced", "unknown"}, metrics, 1, NOW)
    assert (row["paper_id"], row["upvotes"], row["comments"], row["trending_rank"]) == ("gone", 12, 3, None)
