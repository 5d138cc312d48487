"""The ranking kernel made ready before it is needed: Numba compiles it on its first use on a
machine (several seconds) and loads it from its on-disk cache afterwards."""

from __future__ import annotations

from digest.score.index import Doc, Weights, build_index, corpus_from
from digest.score.interests import parse_interests
from digest.score.rank import Profile, ProfileSet, rank


def warm_ranking() -> None:
    """Rank a few made-up papers, so the kernel is compiled (or loaded) now. No I/O of its own;
    Numba writes its cache."""
    docs = [
        Doc(
            id=f"0000.{number:05d}",
            title="A model of kernels made ready early",
            abstract="We model kernels that are compiled before use. " * 4,
            authors=("A. Author", "B. Author"),
            categories=("cs.LG", "cs.AI"),
            upvotes=number,
            comments=number % 3,
            stars=None if number % 2 else number * 10,
        )
        for number in range(20)
    ]
    profiles = ProfileSet.build([Profile(parse_interests("model"))])
    corpus = corpus_from((doc.title, doc.abstract) for doc in docs)
    rank(build_index(docs, corpus, Weights(), profiles.atoms), profiles)
