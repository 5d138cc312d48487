"""Learning from the reader on the captured papers: what a like brings, what a dislike sinks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from digest.compose.digest import select
from digest.score.index import Weights, build_index
from digest.score.interests import parse_interests
from digest.score.rank import Profile, ProfileSet, rank
from digest.score.semantic import Space, neighbours
from tests.unit.test_scoring import CORPUS, DOCS

SPACE = Space.fit([(doc.id, doc.title, doc.abstract) for doc in DOCS])
VECTORS = SPACE.place([(doc.id, doc.title, doc.abstract) for doc in DOCS])
ROW = {doc.id: row for row, doc in enumerate(DOCS)}
TORA = "2407.21705"  # Tora: trajectory-oriented diffusion transformer for video generation


def ranked(interests: str, feedback: dict[str, int], related: int = 5, limit: int = 100):
    profile = Profile(
        parse_interests(interests), limit=limit, feedback=tuple(sorted(feedback.items())), related=related
    )
    profiles = ProfileSet.build([profile])
    index = build_index(DOCS, CORPUS, Weights(trending=0.0), profiles.atoms)
    given = [ROW[paper] for paper in profiles.feedback_papers]
    near = neighbours(VECTORS[given], VECTORS, given)
    return index, rank(index, profiles, near)[0], profile


def ids(index, picks) -> list[str]:
    return [index.docs[pick.doc].id for pick in picks]


def test_liking_a_paper_brings_its_neighbours_that_no_line_matches_as_related() -> None:
    index, picks, _ = ranked("cooking", {TORA: 1})
    related = [pick for pick in picks if pick.related]
    assert related and all(pick.near == 0 and pick.line is None for pick in related)
    titles = " ".join(index.docs[pick.doc].title.lower() for pick in related)
    assert "video" in titles or "animat" in titles
    index, none, _ = ranked("cooking", {})
    assert none == []


def test_a_related_paper_is_a_neighbour_of_the_liked_one_not_the_liked_one_itself() -> None:
    index, picks, _ = ranked("cooking", {TORA: 1})
    liked = VECTORS[ROW[TORA]]
    similarity = {doc.id: float(VECTORS[row] @ liked) for row, doc in enumerate(DOCS)}
    shown = ids(index, [pick for pick in picks if pick.related])
    assert shown and TORA not in shown
    assert shown == sorted(shown, key=lambda paper: -similarity[paper])


def test_disliking_a_paper_sinks_the_matched_papers_near_it() -> None:
    index, plain, _ = ranked("video", {})
    order = ids(index, plain)
    disliked = order[0]
    index, after, _ = ranked("video", {disliked: -1})
    sunk = ids(index, after)
    assert set(sunk) == set(order)  # every line match stays
    moved_down = [paper for paper in order[1:] if sunk.index(paper) > order.index(paper)]
    assert moved_down  # (the disliked paper itself is left out of a digest, not ranked lower)


def test_liking_lifts_the_matched_papers_near_the_liked_one() -> None:
    index, plain, _ = ranked("video", {})
    order = ids(index, plain)
    liked = order[-1]
    index, after, _ = ranked("video", {liked: 1})
    lifted = ids(index, after)
    near = neighbours(VECTORS[[ROW[liked]]], VECTORS, [ROW[liked]])
    near_it = {DOCS[column].id for column in near.indices}
    moved_up = {paper for paper in order if lifted.index(paper) < order.index(paper)}
    assert moved_up and moved_up <= near_it


@pytest.mark.parametrize("feedback", [{TORA: -1}, {TORA: 1}, {"2407.21783": -1, TORA: -1}])
def test_feedback_never_drops_a_paper_a_line_matches(feedback: dict[str, int]) -> None:
    def matched(index, picks) -> set[str]:
        return {index.docs[pick.doc].id for pick in picks if not pick.related}

    index, plain, _ = ranked("diffusion\nvideo", {})
    index, after, _ = ranked("diffusion\nvideo", feedback)
    assert len(matched(index, plain)) > 10 and matched(index, after) == matched(index, plain)
    index, top, profile = ranked("diffusion\nvideo", feedback, limit=10)
    assert len(matched(index, select(index, top, profile, set(), 0).main)) == 10


def test_related_papers_come_in_addition_to_the_matched_ones_up_to_the_quota() -> None:
    index, picks, profile = ranked("video", {TORA: 1}, related=2, limit=3)
    chosen = select(index, picks, profile, set(), 0).main
    assert len([pick for pick in chosen if not pick.related]) == 3
    assert len([pick for pick in chosen if pick.related]) == 2
    assert [pick.score for pick in chosen] == sorted((pick.score for pick in chosen), reverse=True)


def test_without_nearness_feedback_changes_nothing() -> None:
    profile = Profile(parse_interests("video"), limit=20, feedback=((TORA, 1),), related=3)
    profiles = ProfileSet.build([profile])
    index = build_index(DOCS, CORPUS, Weights(), profiles.atoms)
    plain = rank(index, ProfileSet.build([replace(profile, feedback=(), related=0)]))[0]
    assert rank(index, profiles)[0] == plain
