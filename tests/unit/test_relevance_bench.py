"""The relevance benchmark's measures and its shipped judged set (the run itself is a system test)."""

from __future__ import annotations

import pytest

from digest.bench.relevance import judged_set, ndcg, precision
from digest.score.interests import parse_interests


def test_ndcg_is_one_for_the_ideal_order_and_lower_for_any_other() -> None:
    grades = {"a": 2, "b": 1, "c": 1}
    pool = ["a", "b", "c", "d", "e"]
    assert ndcg(["a", "b", "c", "d"], grades, pool) == pytest.approx(1.0)
    assert ndcg(["d", "c", "b", "a"], grades, pool) < ndcg(["b", "a", "c"], grades, pool) < 1.0
    assert ndcg(["d", "e"], grades, pool) == 0.0
    assert precision(["a", "d", "b"], grades) == pytest.approx(0.2)


def test_every_judged_paper_is_a_fixture_paper_and_every_line_parses() -> None:
    docs, lines = judged_set()
    ids = {doc.id for doc in docs}
    assert len(lines) >= 30 and all(set(line["grades"]) <= ids for line in lines)
    assert all(parse_interests(line["interest"]) for line in lines)
