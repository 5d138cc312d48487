"""``digest bench score``: ranking every subscriber at once, beside a naive Python loop."""

from __future__ import annotations

import dataclasses
import random
import resource
import time
from collections.abc import Callable
from typing import Any

from digest.bench.data import fixture_papers, interest_vocabulary, synthetic_docs, synthetic_interests
from digest.score.explain import where
from digest.score.index import Doc, Index, Weights, build_index, corpus_from
from digest.score.interests import parse_interests
from digest.score.rank import FILTER_ONLY_RELEVANCE, Profile, ProfileSet, rank
from digest.score.semantic import Space, neighbours


def naive_rank(index: Index, profile: Profile, doc_values: list[dict[int, float]]) -> list[tuple[float, str]]:
    """The straightforward way: every line against every paper in Python, then a sort.

    ``doc_values`` maps each paper's features to their BM25 values (``paper_values``). Returns
    (-final score, paper id) pairs, best first, as ``rank`` picks them.
    """
    results = []
    for row, doc in enumerate(index.docs):
        values = doc_values[row]
        best = 0.0
        for line in profile.lines:
            wanted = [(values.get(_column(index, atom), 0.0), atom.weight) for atom in line.positive]
            if any(value == 0.0 for value, _ in wanted):
                continue
            if any(values.get(_column(index, atom), 0.0) > 0 for atom in line.excluded):
                continue
            if not _passes_filters(line, doc):
                continue
            score = sum(value * weight for value, weight in wanted) if wanted else FILTER_ONLY_RELEVANCE
            best = max(best, score)
        final = index.weights.relevance * best + index.weights.trending * index.trending[row]
        if best > 0 and final >= profile.min_score:
            results.append((-final, doc.id))
    return sorted(results)[: profile.limit]


def _column(index: Index, atom: Any) -> int:
    found = index.column(atom)
    return -1 if found is None else found


def paper_values(index: Index) -> list[dict[int, float]]:
    """For each paper, its features' BM25 values: the naive loop's view of the index."""
    by_paper = index.bm25.T.tocsr()
    return [
        dict(zip(by_paper.indices[start:end].tolist(), by_paper.data[start:end].tolist(), strict=True))
        for start, end in zip(by_paper.indptr[:-1], by_paper.indptr[1:], strict=True)
    ]


def _passes_filters(line: Any, doc: Doc) -> bool:
    for kind in ("author", "cat"):
        wanted = [atom for atom in line.filters if atom.kind == kind and not atom.exclude]
        refused = [atom for atom in line.filters if atom.kind == kind and atom.exclude]
        if wanted and not any(where(atom, doc, [], []) for atom in wanted):
            return False
        if any(where(atom, doc, [], []) for atom in refused):
            return False
    return True


def bench_score(
    *,
    subscribers: int,
    papers: int,
    baseline_sample: int = 100,
    seed: int = 7,
    progress: Callable[[str], None] = print,
    feedback: int = 0,
) -> dict[str, Any]:
    """Vectorised scoring of ``subscribers`` x ``papers`` beside the naive loop on a sample.

    ``subscribers_per_s`` times the daily work: building the papers' index and ranking every
    subscriber. Compiling the subscribers' interests into arrays (done once per subscriber list,
    reused every day) is timed apart and also folded into ``subscribers_per_s_with_compile``.
    With ``feedback`` N, the same subscribers then each give N feedback items (4 likes to 1
    dislike) on older papers, and the daily work is timed again with it (``feedback_*``), placing
    the day's and the feedback papers in a semantic space fitted apart (``space_fit_s``).
    """
    rng = random.Random(seed)
    progress(f"making {papers:,} papers and {subscribers:,} subscribers (5 interest lines each)")
    docs = synthetic_docs(papers, rng)
    vocabulary = interest_vocabulary(fixture_papers())
    profiles = [
        Profile(parse_interests(synthetic_interests(vocabulary, rng)), limit=10) for _ in range(subscribers)
    ]
    corpus = corpus_from((doc.title, doc.abstract) for doc in docs)
    weights = Weights()
    warm = ProfileSet.build(profiles[:10])
    rank(build_index(docs[:50], corpus, weights, warm.atoms), warm)  # load the compiled kernel
    progress("compiling interests, building the index, ranking")
    start = time.perf_counter()
    profile_set = ProfileSet.build(profiles)
    compiled = time.perf_counter()
    index = build_index(docs, corpus, weights, profile_set.atoms)
    built = time.perf_counter()
    ranking = rank(index, profile_set)
    done = time.perf_counter()
    sample = profiles[: min(baseline_sample, subscribers)]
    progress(f"scoring {len(sample)} subscribers with the naive loop")
    values = paper_values(index)
    naive_start = time.perf_counter()
    for profile in sample:
        naive_rank(index, profile, values)
    naive_s = time.perf_counter() - naive_start
    daily_s = done - compiled
    rate = subscribers / daily_s
    baseline = len(sample) / naive_s
    picked = int((ranking.doc >= 0).sum())
    figures = {
        "subscribers": subscribers,
        "papers": papers,
        "profile_compile_s": round(compiled - start, 3),
        "index_build_s": round(built - compiled, 3),
        "rank_s": round(done - built, 3),
        "subscribers_per_s": round(rate, 1),
        "subscribers_per_s_with_compile": round(subscribers / (done - start), 1),
        "baseline_subscribers": len(sample),
        "baseline_subscribers_per_s": round(baseline, 1),
        "ratio": round(rate / baseline, 1),
        "picks_per_subscriber": round(picked / max(1, subscribers), 2),
        "peak_rss_mb": _peak_rss_mb(),
    }
    if feedback:
        del ranking
        figures.update(_with_feedback(docs, profiles, corpus, weights, feedback, rng, progress))
    return figures


FEEDBACK_POOL = 5_000  # older papers the synthetic subscribers give feedback on


def _with_feedback(
    docs: list[Doc],
    profiles: list[Profile],
    corpus: Any,
    weights: Weights,
    items: int,
    rng: random.Random,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """The daily work again, each subscriber with ``items`` feedback items on older papers."""
    progress(f"fitting the semantic space; {items} feedback items per subscriber")
    older = [
        dataclasses.replace(doc, id=f"2610.{number:05d}")
        for number, doc in enumerate(synthetic_docs(FEEDBACK_POOL, rng))
    ]
    texts = {doc.id: (doc.id, doc.title, doc.abstract) for doc in older}
    start = time.perf_counter()
    space = Space.fit([*texts.values(), *((doc.id, doc.title, doc.abstract) for doc in docs)])
    fitted = time.perf_counter()
    ids = list(texts)
    profiles = [
        dataclasses.replace(
            profile,
            feedback=tuple(
                sorted({paper: 1 if rng.random() < 0.8 else -1 for paper in rng.sample(ids, items)}.items())
            ),
            related=3,
        )
        for profile in profiles
    ]
    progress("compiling interests and feedback, building the index, placing papers, ranking")
    compile_start = time.perf_counter()
    profile_set = ProfileSet.build(profiles)
    compiled = time.perf_counter()
    index = build_index(docs, corpus, weights, profile_set.atoms)
    built = time.perf_counter()
    day = space.place([(doc.id, doc.title, doc.abstract) for doc in docs])
    given = space.place([texts[paper] for paper in profile_set.feedback_papers])
    near = neighbours(given, day)
    placed = time.perf_counter()
    ranking = rank(index, profile_set, near)
    done = time.perf_counter()
    related = int((ranking.related_doc >= 0).sum())
    return {
        "feedback_items": items,
        "space_fit_s": round(fitted - start, 3),
        "feedback_profile_compile_s": round(compiled - compile_start, 3),
        "feedback_index_build_s": round(built - compiled, 3),
        "feedback_place_s": round(placed - built, 3),
        "feedback_rank_s": round(done - placed, 3),
        "feedback_subscribers_per_s": round(len(profiles) / (done - compiled), 1),
        "near_pairs_per_feedback_paper": round(near.nnz / max(1, near.shape[0]), 1),
        "related_per_subscriber": round(related / max(1, len(profiles)), 2),
        "feedback_peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
