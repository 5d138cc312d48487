"""Scores papers against interests: BM25F relevance, a trending signal, explanations. No I/O.

The day's papers become one sparse matrix of BM25F weights (papers x terms and phrases), built
once. All subscribers' interest lines become a sparse matrix (lines x terms); their product, in
chunks of lines, gives every line's score for every paper. Exclusions, ``author:`` and ``cat:`` are
applied to those candidates, each subscriber keeps their best line per paper, and a sort keeps the
top N per subscriber. See the README ("Scoring") for the formula.
"""

from __future__ import annotations

import gc
import html
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import sparse

from digest import kernels, text
from digest.interests import Atom, InterestLine

FILTER_ONLY_RELEVANCE = 1.0
SNIPPET_CACHE = 50_000
SNIPPET_WORDS = 40


@dataclass(frozen=True, slots=True)
class Weights:
    """The knobs of the formula; the CLI fills them from settings."""

    title: float = 2.0
    abstract: float = 1.0
    k1: float = 1.2
    b: float = 0.75
    relevance: float = 1.0
    trending: float = 0.5
    upvotes: float = 1.0
    comments: float = 0.5
    stars: float = 0.25


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


@dataclass(frozen=True, slots=True)
class Corpus:
    """Document frequencies over every stored paper, so a small day's scores stay stable."""

    size: int
    df: dict[str, int]

    def idf(self, stem: str) -> float:
        df = self.df.get(stem, 0)
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))


def corpus_from(texts: Iterable[tuple[str, str]]) -> Corpus:
    """Count, for every stem, how many (title, abstract) pairs contain it."""
    df: Counter[str] = Counter()
    size = 0
    for title, abstract in texts:
        size += 1
        df.update(set(text.analyze(title)) | set(text.analyze(abstract)))
    return Corpus(size, dict(df))


@dataclass(frozen=True, slots=True)
class Profile:
    """One subscriber (or an ad-hoc interest list) as scoring sees it."""

    lines: tuple[InterestLine, ...]
    limit: int = 10
    min_score: float = 0.0


@dataclass(frozen=True, slots=True)
class Pick:
    """A paper picked for a profile: its scores and the line (index into profile.lines) that matched."""

    doc: int
    score: float
    relevance: float
    trending: float
    line: int | None


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


def trending_score(doc: Doc, weights: Weights) -> float:
    """w_u ln(1+upvotes) + w_c ln(1+comments) + w_s ln(1+stars), from the latest snapshot."""
    return (
        weights.upvotes * math.log1p(doc.upvotes or 0)
        + weights.comments * math.log1p(doc.comments or 0)
        + weights.stars * math.log1p(doc.stars or 0)
    )


def build_index(docs: Sequence[Doc], corpus: Corpus, weights: Weights, atoms: Iterable[Atom] = ()) -> Index:
    """Analyse ``docs`` and weigh every term they contain, plus the phrases, authors and categories
    that ``atoms`` (every interest line to be scored) ask for."""
    title_stems = [text.analyze(doc.title) for doc in docs]
    abstract_stems = [text.analyze(doc.abstract) for doc in docs]
    terms: dict[str, int] = {}
    for stems in (*title_stems, *abstract_stems):
        for stem in stems:
            terms.setdefault(stem, len(terms))
    columns: dict[tuple[str, tuple[str, ...]], int] = {
        ("term", (stem,)): column for stem, column in terms.items()
    }
    atoms = list(atoms)
    phrases = sorted({atom.terms for atom in atoms if atom.key[0] == "phrase"})
    for phrase in phrases:
        columns.setdefault(("phrase", phrase), len(columns))
    tf_title = _term_frequencies(title_stems, terms, columns, phrases)
    tf_abstract = _term_frequencies(abstract_stems, terms, columns, phrases)
    idf = np.zeros(len(columns))
    for (_, stems), column in columns.items():
        idf[column] = sum(corpus.idf(stem) for stem in stems)
    bm25 = _bm25f(tf_title, tf_abstract, title_stems, abstract_stems, idf, weights)
    index = Index(
        docs=list(docs),
        weights=weights,
        title_stems=title_stems,
        abstract_stems=abstract_stems,
        columns=columns,
        bm25=bm25.T.tocsr(),
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
            for position, stem in enumerate(stems):
                for phrase in by_first.get(stem, ()):
                    if tuple(stems[position : position + len(phrase)]) == phrase:
                        rows.append(row)
                        cols.append(columns[("phrase", phrase)])
    counts = sparse.coo_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(fields), len(columns))
    )
    return counts.tocsr()


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


# The role of an atom in its line, as the ranking kernel reads it.
_ROLE = {
    ("term", False): kernels.REQUIRE,
    ("phrase", False): kernels.REQUIRE,
    ("term", True): kernels.FORBID,
    ("phrase", True): kernels.FORBID,
    ("author", False): kernels.AUTHOR_IN,
    ("author", True): kernels.AUTHOR_OUT,
    ("cat", False): kernels.CAT_IN,
    ("cat", True): kernels.CAT_OUT,
}


@dataclass
class ProfileSet:
    """Many profiles' interests as flat arrays over their distinct atoms: built once, ranked daily.

    ``atoms`` are the distinct (kind, terms) features asked for; each slot of each line refers to
    one of them with a role (require, forbid, author in/out, category in/out) and a weight.
    """

    profiles: list[Profile]
    atoms: list[Atom]
    line_ptr: np.ndarray  # profiles + 1
    slot_ptr: np.ndarray  # lines + 1
    position: np.ndarray  # per line: its index in the profile
    slot_atom: np.ndarray
    slot_role: np.ndarray
    slot_weight: np.ndarray

    @classmethod
    def build(cls, profiles: Sequence[Profile]) -> ProfileSet:
        """Compile ``profiles``; lines with the same text are compiled once."""
        with _collector_paused():
            return cls._build(profiles)

    @classmethod
    def _build(cls, profiles: Sequence[Profile]) -> ProfileSet:
        interned: dict[tuple[str, tuple[str, ...]], int] = {}
        atoms: list[Atom] = []
        line_ptr, slot_ptr, position = [0], [0], []
        slot_atom, slot_role, slot_weight = [], [], []
        compiled: dict[str, tuple[list[int], list[int], list[float]]] = {}
        for profile in profiles:
            for place, line in enumerate(profile.lines):
                position.append(place)
                slots = compiled.get(line.text)
                if slots is None:
                    slots = compiled[line.text] = ([], [], [])
                    for atom in line.atoms:
                        key = (atom.kind if atom.kind in ("author", "cat") else atom.key[0], atom.terms)
                        number = interned.get(key)
                        if number is None:
                            number = interned[key] = len(atoms)
                            atoms.append(atom)
                        slots[0].append(number)
                        slots[1].append(_ROLE[atom.kind, atom.exclude])
                        slots[2].append(atom.weight)
                slot_atom += slots[0]
                slot_role += slots[1]
                slot_weight += slots[2]
                slot_ptr.append(len(slot_atom))
            line_ptr.append(len(position))
        return cls(
            profiles=list(profiles),
            atoms=atoms,
            line_ptr=np.array(line_ptr, dtype=np.int64),
            slot_ptr=np.array(slot_ptr, dtype=np.int64),
            position=np.array(position, dtype=np.int64),
            slot_atom=np.array(slot_atom, dtype=np.int64),
            slot_role=np.array(slot_role, dtype=np.int64),
            slot_weight=np.array(slot_weight, dtype=np.float64),
        )


@dataclass
class Ranking:
    """Each profile's picks as arrays (profiles x limit); ``ranking[i]`` gives profile i's Picks."""

    index: Index
    profiles: ProfileSet
    doc: np.ndarray  # -1 where a profile has fewer picks
    score: np.ndarray
    relevance: np.ndarray
    line: np.ndarray

    def __len__(self) -> int:
        return len(self.profiles.profiles)

    def __getitem__(self, number: int) -> list[Pick]:
        profile = self.profiles.profiles[number]
        if not profile.lines:
            return _trending_only(self.index, profile)
        filled = int(np.count_nonzero(self.doc[number] >= 0))
        return [
            Pick(doc, score, relevance, float(self.index.trending[doc]), line)
            for doc, score, relevance, line in zip(
                self.doc[number, :filled].tolist(),
                self.score[number, :filled].tolist(),
                self.relevance[number, :filled].tolist(),
                self.line[number, :filled].tolist(),
                strict=True,
            )
        ]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building arrays for 100,000 profiles allocates enough to
    make it walk every profile's objects many times over, doubling the build time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _atom_features(index: Index, atoms: Sequence[Atom]) -> np.ndarray:
    """The index feature of each distinct atom; -1 for a word no paper contains today.

    Raises ValueError for a phrase, author or category the index was not built for: scoring it
    would silently match nothing (or, for a filter, everything).
    """
    features = np.empty(len(atoms), dtype=np.int64)
    for number, atom in enumerate(atoms):
        if atom.kind == "author":
            found = index.authors.get(atom.terms)
        elif atom.kind == "cat":
            found = index.cats.get(atom.terms[0])
        else:
            found = index.columns.get(atom.key)
            if found is None and atom.key[0] == "term":
                found = -1
        if found is None:
            raise ValueError(
                f"the index was built without {atom.source!r}; pass the profiles' atoms to build_index"
            )
        features[number] = found
    return features


def rank(index: Index, profiles: ProfileSet) -> Ranking:
    """Every profile's picks, best first.

    A line matches a paper when every word and phrase of it is in the title or abstract, no
    excluded one is, and its author:/cat: filters pass (any of its authors, any of its categories).
    A paper's relevance is its best line's; the final score must reach the profile's minimum; at
    most ``limit`` papers; ties are broken by paper id. Profiles without interests get the most
    trending papers.
    """
    count = len(profiles.profiles)
    limits = np.array([profile.limit for profile in profiles.profiles], dtype=np.int64)
    width = max(1, int(limits.max())) if count else 1
    ranking = Ranking(
        index=index,
        profiles=profiles,
        doc=np.full((count, width), -1, dtype=np.int64),
        score=np.zeros((count, width)),
        relevance=np.zeros((count, width)),
        line=np.zeros((count, width), dtype=np.int64),
    )
    if not index.docs or not count:
        return ranking
    features = _atom_features(index, profiles.atoms)
    slot_feature = features[profiles.slot_atom]
    required = np.unique(slot_feature[(profiles.slot_role == kernels.REQUIRE) & (slot_feature >= 0)])
    row_of = np.full(max(1, index.bm25.shape[0]), -1, dtype=np.int64)
    row_of[required] = np.arange(required.size)
    values = index.bm25[required].toarray().astype(np.float32)  # each required word's BM25 value, by paper
    kernels.rank_profiles(
        profiles.line_ptr,
        profiles.slot_ptr,
        profiles.position,
        slot_feature,
        profiles.slot_role,
        profiles.slot_weight,
        row_of[np.maximum(slot_feature, 0)],
        values,
        index.word_bits,
        index.author_bits,
        index.cat_bits,
        index.trending,
        index.id_rank,
        index.weights.relevance,
        index.weights.trending,
        FILTER_ONLY_RELEVANCE,
        limits,
        np.array([profile.min_score for profile in profiles.profiles], dtype=np.float64),
        ranking.doc,
        ranking.score,
        ranking.relevance,
        ranking.line,
    )
    return ranking


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


def _trending_only(index: Index, profile: Profile) -> list[Pick]:
    chosen = []
    for doc in index.order.tolist():
        score = index.weights.trending * float(index.trending[doc])
        if score < profile.min_score or len(chosen) >= profile.limit:
            break
        chosen.append(Pick(doc, score, 0.0, float(index.trending[doc]), None))
    return chosen


# --- explanations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """An atom of the line that the paper matched, and where: title, abstract, authors or categories."""

    atom: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    line: str | None
    matches: tuple[Match, ...]
    snippet_html: str
    snippet_text: str

    @property
    def matched(self) -> list[str]:
        return [match.atom for match in self.matches]

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "matched": self.matched,
            "fields": {match.atom: list(match.fields) for match in self.matches},
            "snippet": self.snippet_text,
            "snippet_html": self.snippet_html,
        }


def explain(index: Index, pick: Pick, profile: Profile) -> Explanation:
    """Why ``pick`` was chosen: the matching line, what matched where, and a marked abstract snippet.

    The HTML snippet is escaped first and marked after, so it is safe to put in a page as is.
    """
    doc = index.docs[pick.doc]
    if pick.line is None:
        snippet = _snippet(doc.abstract, set())
        return Explanation(None, (), *snippet)
    line = profile.lines[pick.line]
    title, abstract = index.title_stems[pick.doc], index.abstract_stems[pick.doc]
    matches = []
    wanted: set[tuple[str, ...]] = set()
    for atom in line.atoms:
        if atom.exclude:
            continue
        fields = _where(atom, doc, title, abstract)
        if fields:
            matches.append(Match(atom.source, fields))
            if atom.kind in ("term", "phrase"):
                wanted.add(atom.terms)
    return Explanation(line.text, tuple(matches), *_snippet(doc.abstract, wanted))


def _where(atom: Atom, doc: Doc, title: list[str], abstract: list[str]) -> tuple[str, ...]:
    if atom.kind == "author":
        return ("authors",) if any(set(atom.terms) <= name for name in author_words(doc.authors)) else ()
    if atom.kind == "cat":
        return ("categories",) if atom.terms[0] in category_keys(doc.categories) else ()
    return tuple(
        name for name, stems in (("title", title), ("abstract", abstract)) if _contains(stems, atom.terms)
    )


def _contains(stems: list[str], phrase: tuple[str, ...]) -> bool:
    if len(phrase) == 1:
        return phrase[0] in stems
    size = len(phrase)
    return any(tuple(stems[i : i + size]) == phrase for i, stem in enumerate(stems) if stem == phrase[0])


def _snippet(abstract: str, wanted: set[tuple[str, ...]]) -> tuple[str, str]:
    """``_snippet_of``, remembered: a day's digests ask for the same paper with the same matches
    again and again (every trending pick, every common interest)."""
    return _snippet_of(abstract, frozenset(wanted))


@lru_cache(maxsize=SNIPPET_CACHE)
def _snippet_of(abstract: str, wanted: frozenset[tuple[str, ...]]) -> tuple[str, str]:
    """(html, text) of about SNIPPET_WORDS words of the abstract around the densest run of matches.

    Matched words are wrapped in <mark> (html) or *…* (text), a run of neighbours in one; everything
    else is escaped.
    """
    positions = text.spans(abstract)
    if not positions:
        return "", ""
    marked = [False] * len(positions)
    stems = [stem for _, _, stem in positions]
    for phrase in wanted:
        size = len(phrase)
        for i in range(len(stems) - size + 1):
            if tuple(stems[i : i + size]) == phrase:
                marked[i : i + size] = [True] * size
    hits = [i for i, is_marked in enumerate(marked) if is_marked]
    first = 0
    if hits and len(positions) > SNIPPET_WORDS:
        best = max(hits, key=lambda i: sum(1 for h in hits if i <= h < i + SNIPPET_WORDS))
        first = max(0, min(best - 5, len(positions) - SNIPPET_WORDS))
    last = min(len(positions), first + SNIPPET_WORDS)
    begin = 0 if first == 0 else positions[first][0]
    end = len(abstract) if last == len(positions) else positions[last - 1][1]
    runs: list[list[int]] = []  # [start, stop] of marked words, neighbours apart only by spaces joined
    for i in range(first, last):
        start, stop, _ = positions[i]
        if not marked[i]:
            continue
        if runs and marked[i - 1] and not abstract[runs[-1][1] : start].strip():
            runs[-1][1] = stop
        else:
            runs.append([start, stop])
    html_parts, text_parts = [], []
    cursor = begin
    for start, stop in runs:
        html_parts.append(html.escape(abstract[cursor:start]))
        text_parts.append(abstract[cursor:start])
        words = abstract[start:stop]
        html_parts.append(f"<mark>{html.escape(words)}</mark>")
        text_parts.append(f"*{words}*")
        cursor = stop
    html_parts.append(html.escape(abstract[cursor:end]))
    text_parts.append(abstract[cursor:end])
    prefix = "… " if first > 0 else ""
    suffix = " …" if end < len(abstract) else ""
    return prefix + "".join(html_parts) + suffix, prefix + "".join(text_parts) + suffix
