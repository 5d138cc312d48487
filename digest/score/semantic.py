"""A semantic space learned from the stored papers (latent semantic analysis): TF-IDF over the
stems the index uses, reduced by a truncated SVD, so that papers about the same thing in other
words lie near each other. No I/O, no model downloaded: fitted on the papers given, refitted as
they grow (digest.usecases.context keeps one per process).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from digest.score import text

if TYPE_CHECKING:  # scikit-learn takes two seconds to import: only a fit needs it
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

DIMENSIONS = 128
FIT_PAPERS = 20_000  # the newest papers a space is fitted on: enough for the words of a field, and bounded
MIN_PAPERS = 20  # below this there is too little to learn from: no paper is near another
NEAR = 0.35  # cosine similarity from which a paper counts as near another
NEIGHBOURS = 10  # near papers kept per paper that feedback was given on
BLOCK = 256  # papers whose similarities to the day's are worked out at once


def _analyzer(document: str) -> list[str]:
    return text.analyze(document)


Paper = tuple[str, str, str]  # id, title, abstract


@dataclass
class Space:
    """A fitted space; ``place`` gives papers' unit vectors in it (those it was fitted on are kept)."""

    vectorizer: TfidfVectorizer | None
    svd: TruncatedSVD | None
    fitted_on: int
    known: dict[str, int] = field(default_factory=dict)  # paper id -> row of ``vectors``
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.float32))

    @classmethod
    def fit(cls, papers: Sequence[Paper], seed: int = 0) -> Space:
        """Fit on (id, title, abstract) triples (the caller passes at most FIT_PAPERS, the newest)."""
        texts = [(title, abstract) for _, title, abstract in papers]
        if len(texts) < MIN_PAPERS:
            return cls(None, None, len(texts))
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(analyzer=_analyzer, sublinear_tf=True, min_df=2, dtype=np.float32)
        try:
            matrix = vectorizer.fit_transform(_documents(texts))
        except ValueError:  # no word in two papers: nothing to learn yet
            return cls(None, None, len(texts))
        # Few papers support few dimensions: with about as many as papers, every paper is its own
        # topic and nothing lies near anything.
        dimensions = min(DIMENSIONS, int(3 * len(texts) ** 0.5), matrix.shape[0] - 1, matrix.shape[1] - 1)
        if dimensions < 2:
            return cls(None, None, len(texts))
        svd = TruncatedSVD(n_components=dimensions, random_state=seed, algorithm="randomized", n_iter=4)
        vectors = _unit(svd.fit_transform(matrix))
        known = {paper_id: row for row, (paper_id, _, _) in enumerate(papers)}
        return cls(vectorizer, svd, len(texts), known, vectors)

    def place(self, papers: Sequence[Paper]) -> np.ndarray:
        """Unit vectors (papers x dimensions) of (id, title, abstract) triples: kept from the fit
        for the papers it was fitted on, embedded for the others."""
        rows = [self.known.get(paper_id, -1) for paper_id, _, _ in papers]
        new = [number for number, row in enumerate(rows) if row < 0]
        if not new:
            return self.vectors[rows] if rows else self.embed([])
        placed = np.empty((len(papers), self.embed([]).shape[1]), dtype=np.float32)
        old = [number for number, row in enumerate(rows) if row >= 0]
        placed[old] = self.vectors[[rows[number] for number in old]]
        placed[new] = self.embed([(papers[number][1], papers[number][2]) for number in new])
        return placed

    def embed(self, texts: Sequence[tuple[str, str]]) -> np.ndarray:
        """Unit vectors (papers x dimensions, float32) of (title, abstract) pairs; a paper the space
        cannot place (no known word) is the zero vector, near nothing."""
        if self.vectorizer is None or self.svd is None:
            return np.zeros((len(texts), 1), dtype=np.float32)
        if not texts:
            return np.zeros((0, self.svd.n_components), dtype=np.float32)
        return _unit(self.svd.transform(self.vectorizer.transform(_documents(texts))))


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def _documents(texts: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{title}\n{abstract}" for title, abstract in texts]


def neighbours(
    near_of: np.ndarray,
    docs: np.ndarray,
    itself: Sequence[int] = (),
    keep: int = NEIGHBOURS,
    least: float = NEAR,
) -> sparse.csr_matrix:
    """For each row of ``near_of`` (unit vectors of the papers feedback was given on), the ``keep``
    rows of ``docs`` most similar to it at ``least`` cosine similarity or more, as a sparse
    (papers x docs) matrix of nearness: the similarity rescaled from [least, 1] to (0, 1].
    ``itself`` gives, for each row, the row of ``docs`` that is the same paper (-1: none): a paper
    is not its own neighbour."""
    if not len(near_of) or not len(docs):
        return sparse.csr_matrix((len(near_of), len(docs)), dtype=np.float64)
    papers = np.asarray(near_of, dtype=np.float32)
    targets = np.asarray(docs, dtype=np.float32).T
    same = np.asarray(itself, dtype=np.int64) if len(itself) else np.full(len(papers), -1)
    keep = min(keep, targets.shape[1])
    top = np.empty((len(papers), keep), dtype=np.int64)
    values = np.empty((len(papers), keep), dtype=np.float32)
    # A block of rows at a time keeps the (rows x docs) temporaries in cache, not 100 MB of them.
    for start in range(0, len(papers), BLOCK):
        block = slice(start, start + BLOCK)
        distance = np.negative(papers[block] @ targets)  # negated: the nearest come first
        own = np.flatnonzero(same[block] >= 0)
        distance[own, same[block][own]] = 1.0  # a paper is not its own neighbour
        top[block] = np.argpartition(distance, keep - 1, axis=1)[:, :keep]
        values[block] = -np.take_along_axis(distance, top[block], axis=1)
    rows = np.repeat(np.arange(len(papers)), keep)
    mask = values.ravel() >= least
    nearness = np.maximum((values.ravel()[mask].astype(np.float64) - least) / (1.0 - least), 1e-6)
    matrix = sparse.csr_matrix(
        (nearness, (rows[mask], top.ravel()[mask])), shape=(len(papers), targets.shape[1]), dtype=np.float64
    )
    matrix.sort_indices()
    return matrix
