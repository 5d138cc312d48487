"""The papers of a window as matrices: BM25F weights of every term (and of the phrases, authors and
categories the interests ask for), bitsets of which paper holds which feature, and each paper's
trending signal. No I/O. See the README ("Scoring") for the formula.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy import sparse

from digest.model.figures import Figures
from digest.score import acronyms, text
from digest.score.acronyms import Expansion
from digest.score.interests import Atom

VARIANT_WEIGHT = (
    0.5  # an acronym's long form (or the reverse) counts half an occurrence of the word asked for
)


@dataclass(frozen=True, slots=True)
class Weights:
    """The knobs of the formula (settings ``title_weight`` and the like)."""

    title: float = 2.0
    abstract: float = 1.0
    k1: float = 1.2
    b: float = 0.75
    relevance: float = 1.0
    trending: float = 0.5
    upvotes: float = 1.0
    comments: float = 0.5
    stars: float = 0.25
    rank: float = 2.0
    lift: float = 1.0  # how far nearness to a liked paper lifts a matched one (x 1 + lift * nearness)
    sink: float = 1.0  # and to a disliked one sinks it
    related: float = 4.0  # the relevance of a paper as near a liked one as can be, matched by no line
    phrase_words: float = 0.5  # the share of a phrase's score that comes from its words (0: the phrase alone)

    @classmethod
    def of(cls, settings: Any) -> Weights:
        """The weights the settings give (``title_weight``, ``bm25_k1``, ...)."""
        return cls(
            title=settings.title_weight,
            abstract=settings.abstract_weight,
            k1=settings.bm25_k1,
            b=settings.bm25_b,
            relevance=settings.relevance_weight,
            trending=settings.trending_weight,
            upvotes=settings.upvotes_weight,
            comments=settings.comments_weight,
            stars=settings.stars_weight,
            rank=settings.trending_rank_weight,
            lift=settings.feedback_lift,
            sink=settings.feedback_sink,
            related=settings.related_relevance,
        )


@dataclass(frozen=True, slots=True)
class Doc:
    """What scoring needs of a paper."""

    id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    upvotes: int | None = None
    comments: int | None = None
    stars: int | None = None
    trending_rank: int | None = None


@dataclass(frozen=True, slots=True)
class Corpus:
    """Document frequencies over every stored paper, so a small day's scores stay stable, and the
    acronyms the papers define (both ways: by the acronym's stems and by its long form's)."""

    size: int
    df: dict[str, int]
    acronyms: dict[tuple[str, ...], Expansion] = field(default_factory=dict)

    def idf(self, stem: str) -> float:
        df = self.df.get(stem, 0)
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def variant(self, terms: tuple[str, ...]) -> tuple[tuple[str, ...], str] | None:
        """The other form of an acronym or of its long form (stems, and text as written), if known."""
        expansion = self.acronyms.get(terms)
        if expansion is None:
            return None
        if terms == expansion.short:
            return expansion.long, expansion.long_text
        return expansion.short, expansion.short_text


Definition = tuple[str, str, str, str]  # an acronym definition as counted (acronyms.Counts.rows)


@dataclass(frozen=True, slots=True)
class CorpusCounts:
    """What some papers add to the corpus statistics (digest.store.corpus keeps their sum): how many
    papers, how many of them hold each stem, and the acronym definitions they make (acronyms.Counts.
    rows)."""

    papers: int
    df: Counter[str]
    definitions: Counter[Definition]


def corpus_counts(texts: Iterable[tuple[str, str]]) -> CorpusCounts:
    """Count, for every stem, how many (title, abstract) pairs contain it, and the acronyms they define."""
    df: Counter[str] = Counter()
    definitions = acronyms.Counts()
    size = 0
    for title, abstract in texts:
        size += 1
        df.update(set(text.analyze(title)) | set(text.analyze(abstract)))
        definitions.add(title, abstract)
    return CorpusCounts(size, df, definitions.rows())


def corpus_from(texts: Iterable[tuple[str, str]]) -> Corpus:
    """The corpus of the papers whose (title, abstract) are ``texts``."""
    counts = corpus_counts(texts)
    return corpus_of(counts.papers, counts.df, counts.definitions.items())


def corpus_of(
    size: int,
    df: Mapping[str, int],
    definitions: Iterable[tuple[Definition, int]],
    asked: Iterable[tuple[str, ...]] | None = None,
) -> Corpus:
    """The corpus from its stored counts: ``df`` may hold only the stems to be weighed, and
    ``definitions`` only the rows that bear on the ``asked`` term sequences (whose expansions alone
    are then kept)."""
    expansions = acronyms.Counts.of_rows(definitions).expansions()
    if asked is not None:
        wanted = set(asked)
        expansions = {key: found for key, found in expansions.items() if key in wanted}
    return Corpus(size, dict(df), expansions)


class PaperText(Protocol):
    """What a Doc is made from: a stored paper's text and lists."""

    id: str
    title: str
    abstract: str
    authors: Sequence[str]
    categories: Sequence[str]


def docs_of(papers: Iterable[PaperText], metrics: Mapping[str, Figures]) -> list[Doc]:
    """``papers`` with their latest figures, as scoring reads them."""
    return [
        Doc(
            paper.id,
            paper.title,
            paper.abstract,
            tuple(paper.authors),
            tuple(paper.categories),
            *metrics.get(paper.id, Figures()),
        )
        for paper in papers
    ]


@dataclass
class Index:
    """The day's papers as matrices. Build with ``build_index``."""

    docs: list[Doc]
    weights: Weights
    title_stems: list[list[str]]
    abstract_stems: list[list[str]]
    columns: dict[tuple[str, tuple[str, ...]], int]
    bm25: sparse.csr_matrix  # columns x docs; an entry exists exactly where the term or phrase occurs
    authors: dict[tuple[str, ...], int] = field(default_factory=dict)
    author_docs: sparse.csr_matrix = field(default_factory=lambda: sparse.csr_matrix((0, 0)))
    cats: dict[str, int] = field(default_factory=dict)
    cat_docs: sparse.csr_matrix = field(default_factory=lambda: sparse.csr_matrix((0, 0)))
    word_bits: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.uint64))
    author_bits: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.uint64))
    cat_bits: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.uint64))
    trending: np.ndarray = field(default_factory=lambda: np.zeros(0))
    id_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # The terms and phrases asked for that have a variant, and the variant (stems, text as written).
    variants: dict[tuple[str, ...], tuple[tuple[str, ...], str]] = field(default_factory=dict)

    def column(self, atom: Atom) -> int | None:
        """The column a term or phrase atom is scored by: with its variant when one is known."""
        return self.columns.get(("either", atom.terms), self.columns.get(atom.key))


def trending_score(doc: Doc, weights: Weights) -> float:
    """w_u ln(1+upvotes) + w_c ln(1+comments) + w_s ln(1+stars) + w_r / rank, from the latest
    snapshot (the last term only for a paper on Hugging Face's trending list)."""
    return (
        weights.upvotes * math.log1p(doc.upvotes or 0)
        + weights.comments * math.log1p(doc.comments or 0)
        + weights.stars * math.log1p(doc.stars or 0)
        + (weights.rank / doc.trending_rank if doc.trending_rank else 0.0)
    )


def analyse(docs: Sequence[Doc]) -> tuple[list[list[str]], list[list[str]]]:
    """The stems of each doc's title, and of each doc's abstract, in order."""
    return [text.analyze(doc.title) for doc in docs], [text.analyze(doc.abstract) for doc in docs]


def build_index(
    docs: Sequence[Doc],
    corpus: Corpus,
    weights: Weights,
    atoms: Iterable[Atom] = (),
    analysed: tuple[list[list[str]], list[list[str]]] | None = None,
) -> Index:
    """Analyse ``docs`` (unless ``analysed`` gives their title and abstract stems, as analyse()
    does) and weigh every term they contain, plus the phrases, authors and categories that
    ``atoms`` (every interest line to be scored) ask for."""
    title_stems, abstract_stems = analysed or analyse(docs)
    terms: dict[str, int] = {}
    for stems in (*title_stems, *abstract_stems):
        for stem in stems:
            terms.setdefault(stem, len(terms))
    columns: dict[tuple[str, tuple[str, ...]], int] = {
        ("term", (stem,)): column for stem, column in terms.items()
    }
    atoms = list(atoms)
    variants = {
        atom.terms: found
        for atom in atoms
        if atom.kind in ("term", "phrase") and (found := corpus.variant(atom.terms)) is not None
    }
    phrases = sorted(
        {atom.terms for atom in atoms if atom.key[0] == "phrase"}
        | {variant for variant, _ in variants.values() if len(variant) > 1}
    )
    for phrase in phrases:
        columns.setdefault(("phrase", phrase), len(columns))
    tf_title = _term_frequencies(title_stems, terms, columns, phrases)
    tf_abstract = _term_frequencies(abstract_stems, terms, columns, phrases)
    if variants:
        either = _either(columns, variants)
        tf_title, tf_abstract = tf_title @ either, tf_abstract @ either
    idf = np.zeros(len(columns))
    for (_, stems), column in columns.items():
        idf[column] = sum(corpus.idf(stem) for stem in stems)
    bm25 = _bm25f(tf_title, tf_abstract, title_stems, abstract_stems, idf, weights)
    if weights.phrase_words:
        bm25 = _with_words(bm25, columns, weights.phrase_words)
    index = Index(
        docs=list(docs),
        weights=weights,
        title_stems=title_stems,
        abstract_stems=abstract_stems,
        columns=columns,
        bm25=bm25.T.tocsr(),
        variants=variants,
    )
    _add_filters(index, atoms)
    index.word_bits = bitsets(index.bm25, len(docs))
    index.author_bits = bitsets(index.author_docs, len(docs))
    index.cat_bits = bitsets(index.cat_docs, len(docs))
    index.trending = np.array([trending_score(doc, weights) for doc in docs], dtype=np.float64)
    by_id = sorted(range(len(docs)), key=lambda row: docs[row].id)
    index.id_rank = np.empty(len(docs), dtype=np.int64)
    index.id_rank[by_id] = np.arange(len(docs))
    index.order = np.lexsort((index.id_rank, -index.trending)).astype(np.int64)
    return index


def _term_frequencies(
    fields: list[list[str]],
    terms: dict[str, int],
    columns: dict[tuple[str, tuple[str, ...]], int],
    phrases: list[tuple[str, ...]],
) -> sparse.csr_matrix:
    """docs x columns occurrence counts of every term, and of each phrase on consecutive positions."""
    rows: list[int] = []
    cols: list[int] = []
    for row, stems in enumerate(fields):
        cols.extend(map(terms.__getitem__, stems))
        rows.extend([row] * len(stems))
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        by_first.setdefault(phrase[0], []).append(phrase)
    if by_first:
        for row, stems in enumerate(fields):
            for position in [at for at, stem in enumerate(stems) if stem in by_first]:
                for phrase in by_first[stems[position]]:
                    if tuple(stems[position : position + len(phrase)]) == phrase:
                        rows.append(row)
                        cols.append(columns[("phrase", phrase)])
    counts = sparse.coo_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(fields), len(columns))
    )
    return counts.tocsr()


def _feature(terms: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    return ("phrase" if len(terms) > 1 else "term", terms)


def _either(
    columns: dict[tuple[str, tuple[str, ...]], int],
    variants: Mapping[tuple[str, ...], tuple[tuple[str, ...], str]],
) -> sparse.csr_matrix:
    """Add an ``("either", terms)`` column for each term or phrase with a known variant (an acronym
    and its long form), and return the matrix that maps frequencies onto the columns: the same
    counts, and for each such column the own form's count plus VARIANT_WEIGHT times the variant's."""
    known = len(columns)
    pairs = []
    for own, (variant, _) in sorted(variants.items()):
        column = columns.setdefault(("either", own), len(columns))
        pairs.extend(
            (found, column, weight)
            for found, weight in (
                (columns.get(_feature(own)), 1.0),
                (columns.get(_feature(variant)), VARIANT_WEIGHT),
            )
            if found is not None
        )
    rows = [*range(known), *(row for row, _, _ in pairs)]
    cols = [*range(known), *(col for _, col, _ in pairs)]
    data = [1.0] * known + [weight for _, _, weight in pairs]
    return sparse.csr_matrix((data, (rows, cols)), shape=(known, len(columns)))


def _with_words(
    bm25: sparse.csr_matrix, columns: dict[tuple[str, tuple[str, ...]], int], share: float
) -> sparse.csr_matrix:
    """docs x columns BM25F with each phrase scored by its words too: (1 - share) of its own value and
    ``share`` of the sum of its words' values, where the phrase occurs; so a paper that keeps using
    the phrase's key word ranks above one that uses the phrase once in passing."""
    rows, cols = [], []
    halves = np.ones(len(columns))
    for (kind, stems), column in columns.items():
        if kind == "term" or len(stems) < 2:
            continue
        halves[column] = 1.0 - share
        for stem in stems:
            word = columns.get(("term", (stem,)))
            if word is not None:
                rows.append(word)
                cols.append(column)
    if not cols:
        return bm25
    words = sparse.csr_matrix((np.full(len(rows), share), (rows, cols)), shape=(len(columns), len(columns)))
    occurs = bm25.copy()
    occurs.data[:] = 1.0
    return (bm25 @ sparse.diags(halves) + (bm25 @ words).multiply(occurs)).tocsr()


def _bm25f(
    tf_title: sparse.csr_matrix,
    tf_abstract: sparse.csr_matrix,
    title_stems: list[list[str]],
    abstract_stems: list[list[str]],
    idf: np.ndarray,
    weights: Weights,
) -> sparse.csr_matrix:
    """docs x columns BM25F: field-weighted, length-normalised frequencies, saturated, times IDF."""
    blended = None
    for tf, stems, weight in (
        (tf_title, title_stems, weights.title),
        (tf_abstract, abstract_stems, weights.abstract),
    ):
        lengths = np.array([len(field_stems) for field_stems in stems], dtype=np.float64)
        average = lengths.mean() if len(lengths) and lengths.mean() > 0 else 1.0
        norm = weight / (1.0 - weights.b + weights.b * lengths / average)
        part = sparse.diags(norm) @ tf
        blended = part if blended is None else blended + part
    assert blended is not None
    blended = blended.tocsr()
    blended.data = blended.data * (weights.k1 + 1.0) / (weights.k1 + blended.data)
    return (blended @ sparse.diags(idf)).tocsr()


def _add_filters(index: Index, atoms: list[Atom]) -> None:
    """Author and category features (features x docs, 1 where the paper matches).

    An author atom matches a paper when all its words are words of one author's name, so
    author:Hinton finds "Geoffrey E. Hinton"; cat:cs.CV matches that category, cat:cs the archive.
    """
    names = [author_words(doc.authors) for doc in index.docs]
    by_word: dict[str, set[int]] = {}
    for row, doc_names in enumerate(names):
        for name in doc_names:
            for word in name:
                by_word.setdefault(word, set()).add(row)
    author_keys = sorted({atom.terms for atom in atoms if atom.kind == "author"})
    index.authors = {key: column for column, key in enumerate(author_keys)}
    pairs = []
    for column, key in enumerate(author_keys):
        rows = set.intersection(*(by_word.get(word, set()) for word in key))
        pairs.extend((column, row) for row in rows if any(set(key) <= name for name in names[row]))
    index.author_docs = _binary(pairs, len(author_keys), len(index.docs))
    by_cat: dict[str, set[int]] = {}
    for row, doc in enumerate(index.docs):
        for key in category_keys(doc.categories):
            by_cat.setdefault(key, set()).add(row)
    cat_keys = sorted({atom.terms[0] for atom in atoms if atom.kind == "cat"})
    index.cats = {key: column for column, key in enumerate(cat_keys)}
    pairs = [(column, row) for column, key in enumerate(cat_keys) for row in by_cat.get(key, ())]
    index.cat_docs = _binary(pairs, len(cat_keys), len(index.docs))


def author_words(authors: Iterable[str]) -> list[frozenset[str]]:
    """Each author's folded name words: author:"Name" matches when all its words are one author's."""
    return [frozenset(text.tokens(name)) for name in authors]


def category_keys(categories: Iterable[str]) -> set[str]:
    """What cat: can name to match these categories: each folded category and its archive."""
    folded = {text.fold(category) for category in categories}
    return folded | {category.split(".", 1)[0] for category in folded}


def _binary(pairs: list[tuple[int, int]], rows: int, cols: int) -> sparse.csr_matrix:
    data = np.ones(len(pairs), dtype=np.float64)
    row_ids = [row for row, _ in pairs]
    col_ids = [col for _, col in pairs]
    matrix = sparse.coo_matrix((data, (row_ids, col_ids)), shape=(rows, cols)).tocsr()
    matrix.sum_duplicates()
    return matrix


def bitsets(matrix: sparse.csr_matrix, n_docs: int) -> np.ndarray:
    """features x words uint64: bit d of row f is set when feature f occurs in doc d."""
    words = max(1, (n_docs + 63) // 64)
    bits = np.zeros((matrix.shape[0], words), dtype=np.uint64)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    columns = matrix.indices.astype(np.int64)
    np.bitwise_or.at(
        bits, (rows, columns // 64), np.left_shift(np.uint64(1), (columns % 64).astype(np.uint64))
    )
    return bits
