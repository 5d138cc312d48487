"""``digest bench relevance``: ranking quality on the judged set (tests/data/relevance), beside a
plain BM25 (rank_bm25) computed in the same run. No I/O beyond reading the set and the fixtures.

Four rankings of the 123 fixture papers for each judged interest line, by relevance alone (no
trending): ``bm25`` (Okapi BM25 over title and abstract, the line's words as the query),
``keywords`` (digest's matching as it was: no learned acronyms, a phrase scored by itself),
``matching`` (digest's matching now) and, for the next 10 after a simulated reader judged the top 10
of ``matching`` (liked what is relevant, disliked the rest), ``feedback`` beside ``no_feedback``
(the same next 10 without it), both on the papers not yet shown.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from digest.parse import parse_document
from digest.resources import resource_dir
from digest.score import text
from digest.score.index import Corpus, Doc, Weights, build_index, corpus_from
from digest.score.interests import parse_interests
from digest.score.rank import Profile, ProfileSet, rank
from digest.score.semantic import Space, neighbours

CUTOFF = 10
RELATED = 10  # related papers a ranking may add: enough to fill the next 10


def judged_set() -> tuple[list[Doc], list[dict[str, Any]]]:
    """The fixture papers (each id once, as first listed) and the judged lines."""
    papers: dict[str, Doc] = {}
    for path in sorted(resource_dir("fixtures").iterdir()):
        if path.suffix in {".json", ".xml", ".html"}:
            for p in parse_document(path.read_bytes()):
                papers.setdefault(
                    p.id, Doc(p.id, p.title, p.abstract, p.authors, p.categories, p.upvotes, p.comments)
                )
    lines = json.loads((resource_dir("relevance") / "judged.json").read_text(encoding="utf-8"))["lines"]
    return list(papers.values()), lines


def ndcg(ranked: Sequence[str], grades: dict[str, int], pool: Sequence[str], cutoff: int = CUTOFF) -> float:
    """NDCG@cutoff of ``ranked`` against ``grades``, the ideal made of the papers of ``pool``."""
    gains = [2 ** grades.get(paper, 0) - 1 for paper in ranked[:cutoff]]
    ideal = sorted((2 ** grades.get(paper, 0) - 1 for paper in pool), reverse=True)[:cutoff]
    best = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains)) / best if best else 0.0


def precision(ranked: Sequence[str], grades: dict[str, int], cutoff: int = CUTOFF) -> float:
    return sum(1 for paper in ranked[:cutoff] if grades.get(paper, 0) > 0) / cutoff


def bench_relevance() -> dict[str, Any]:
    """The mean NDCG@10 and P@10 of each ranking over the judged lines, and the differences the
    goals are stated in."""
    from rank_bm25 import BM25Okapi

    docs, lines = judged_set()
    ids = [doc.id for doc in docs]
    corpus = corpus_from((doc.title, doc.abstract) for doc in docs)
    plain = Corpus(corpus.size, corpus.df)  # no learned acronyms
    bm25 = BM25Okapi([text.analyze(f"{doc.title} {doc.abstract}") for doc in docs])
    space = Space.fit([(doc.id, doc.title, doc.abstract) for doc in docs])
    vectors = space.place([(doc.id, doc.title, doc.abstract) for doc in docs])
    row = {paper: number for number, paper in enumerate(ids)}
    weights = Weights(trending=0.0)
    scores: dict[str, list[tuple[float, float]]] = {
        name: [] for name in ("bm25", "keywords", "matching", "no_feedback", "feedback")
    }
    for line in lines:
        grades = line["grades"]
        parsed = parse_interests(line["interest"])
        query = [stem for atom in parsed[0].positive for stem in atom.terms]
        by_bm25 = sorted(zip(bm25.get_scores(query), ids, strict=True), key=lambda pair: (-pair[0], pair[1]))
        rankings = {
            "bm25": [paper for score, paper in by_bm25 if score > 0],
            "keywords": _ranked(
                docs, plain, dataclasses.replace(weights, phrase_words=0.0), Profile(parsed, limit=100)
            ),
            "matching": _ranked(docs, corpus, weights, Profile(parsed, limit=100)),
        }
        for name in ("bm25", "keywords", "matching"):
            scores[name].append((ndcg(rankings[name], grades, ids), precision(rankings[name], grades)))
        shown = rankings["matching"][:CUTOFF]
        rest = [paper for paper in ids if paper not in shown]
        said = tuple(sorted((paper, 1 if grades.get(paper, 0) > 0 else -1) for paper in shown))
        learned = Profile(parsed, limit=100, feedback=said, related=RELATED)
        given = [row[paper] for paper, _ in said]
        near = neighbours(vectors[given], vectors, given) if said else None
        for name, profile, nearness in (
            ("no_feedback", Profile(parsed, limit=100), None),
            ("feedback", learned, near),
        ):
            next_ten = [
                paper for paper in _ranked(docs, corpus, weights, profile, nearness) if paper not in shown
            ]
            scores[name].append((ndcg(next_ten, grades, rest), precision(next_ten, grades)))
    figures: dict[str, Any] = {"lines": len(lines), "papers": len(docs)}
    for name, values in scores.items():
        figures[f"{name}_ndcg10"] = round(sum(value for value, _ in values) / len(values), 4)
        figures[f"{name}_p10"] = round(sum(value for _, value in values) / len(values), 4)
    figures["matching_minus_bm25_ndcg10"] = round(figures["matching_ndcg10"] - figures["bm25_ndcg10"], 4)
    figures["feedback_lift_ndcg10"] = round(figures["feedback_ndcg10"] - figures["no_feedback_ndcg10"], 4)
    return figures


def _ranked(
    docs: list[Doc], corpus: Corpus, weights: Weights, profile: Profile, near: Any = None
) -> list[str]:
    profiles = ProfileSet.build([profile])
    index = build_index(docs, corpus, weights, profiles.atoms)
    return [index.docs[pick.doc].id for pick in rank(index, profiles, near)[0]]
