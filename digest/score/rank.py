"""Ranking every subscriber at once: their interest lines compiled into flat arrays (ProfileSet),
matched and scored against an Index by the compiled kernel, best N per subscriber. No I/O.

A line matches a paper when every word and phrase of it is in the title or abstract, no excluded
one is, and its author:/cat: filters pass; the kernel finds those papers with bitsets and sums the
line's words' BM25F values. Each subscriber keeps their best line per paper.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from digest.score import kernels
from digest.score.index import Index
from digest.score.interests import Atom, InterestLine

FILTER_ONLY_RELEVANCE = 1.0


@dataclass(frozen=True, slots=True)
class Profile:
    """One subscriber (or an ad-hoc interest list) as scoring sees it: interest lines, at most
    ``limit`` papers they match, and up to ``related`` more near a paper of ``feedback`` they
    liked ((paper id, +1 or -1) pairs; Composer.with_feedback adds the ``seeds`` to it)."""

    lines: tuple[InterestLine, ...]
    limit: int = 10
    min_score: float = 0.0
    feedback: tuple[tuple[str, int], ...] = ()
    related: int = 0
    seeds: tuple[str, ...] = ()  # the papers of its like: lines, liked unless feedback says otherwise

    def liked_for(self, pick: Pick) -> str | None:
        """The liked paper a related ``pick`` is near (None for any other pick)."""
        return self.feedback[pick.near][0] if pick.related and pick.near is not None else None


@dataclass(frozen=True, slots=True)
class Pick:
    """A paper picked for a profile: its scores, the line (index into profile.lines) that matched,
    and the liked paper (index into profile.feedback) it is nearest, if any. A pick with no line
    but a liked paper near it is related."""

    doc: int
    score: float
    relevance: float
    trending: float
    line: int | None
    near: int | None = None

    @property
    def related(self) -> bool:
        return self.line is None and self.near is not None


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
    feedback_papers: list[str] = field(default_factory=list)  # the distinct papers feedback was given on
    fb_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))  # profiles + 1
    fb_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # into feedback_papers
    fb_sign: np.ndarray = field(default_factory=lambda: np.zeros(0))

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
        rows: dict[str, int] = {}
        fb_ptr, fb_row, fb_sign = [0], [], []
        for profile in profiles:
            for paper, sign in profile.feedback:
                fb_row.append(rows.setdefault(paper, len(rows)))
                fb_sign.append(float(sign))
            fb_ptr.append(len(fb_row))
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
            feedback_papers=list(rows),
            fb_ptr=np.array(fb_ptr, dtype=np.int64),
            fb_row=np.array(fb_row, dtype=np.int64),
            fb_sign=np.array(fb_sign, dtype=np.float64),
        )


@dataclass
class Ranking:
    """Each profile's picks as arrays (profiles x limit, and profiles x related for the related
    ones); ``ranking[i]`` gives profile i's Picks, best first."""

    index: Index
    profiles: ProfileSet
    doc: np.ndarray  # -1 where a profile has fewer picks
    score: np.ndarray
    relevance: np.ndarray
    line: np.ndarray
    near: np.ndarray  # -1: near no liked paper
    related_doc: np.ndarray
    related_score: np.ndarray
    related_relevance: np.ndarray
    related_near: np.ndarray

    def __len__(self) -> int:
        return len(self.profiles.profiles)

    def __getitem__(self, number: int) -> list[Pick]:
        profile = self.profiles.profiles[number]
        trending = self.index.trending
        if profile.lines:
            filled = int(np.count_nonzero(self.doc[number] >= 0))
            picks = [
                Pick(doc, score, relevance, float(trending[doc]), line, near if near >= 0 else None)
                for doc, score, relevance, line, near in zip(
                    self.doc[number, :filled].tolist(),
                    self.score[number, :filled].tolist(),
                    self.relevance[number, :filled].tolist(),
                    self.line[number, :filled].tolist(),
                    self.near[number, :filled].tolist(),
                    strict=True,
                )
            ]
        else:
            picks = _trending_only(self.index, profile)
        related = int(np.count_nonzero(self.related_doc[number] >= 0))
        if not related:
            return picks
        taken = {pick.doc for pick in picks}
        picks += [
            Pick(doc, score, relevance, float(trending[doc]), None, near)
            for doc, score, relevance, near in zip(
                self.related_doc[number, :related].tolist(),
                self.related_score[number, :related].tolist(),
                self.related_relevance[number, :related].tolist(),
                self.related_near[number, :related].tolist(),
                strict=True,
            )
            if doc not in taken
        ]
        rank_of = self.index.id_rank
        return sorted(picks, key=lambda pick: (-pick.score, rank_of[pick.doc]))


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
            found = index.column(atom)
            if found is None and atom.key[0] == "term":
                found = -1
        if found is None:
            raise ValueError(
                f"the index was built without {atom.source!r}; pass the profiles' atoms to build_index"
            )
        features[number] = found
    return features


def rank(index: Index, profiles: ProfileSet, near: sparse.csr_matrix | None = None) -> Ranking:
    """Every profile's picks, best first.

    A line matches a paper when every word and phrase of it is in the title or abstract, no
    excluded one is, and its author:/cat: filters pass (any of its authors, any of its categories).
    A paper's relevance is its best line's; the final score must reach the profile's minimum; at
    most ``limit`` papers; ties are broken by paper id. Profiles without interests get the most
    trending papers.

    ``near`` (profiles.feedback_papers x index docs, a nearness in (0, 1] where a paper is near one
    that feedback was given on; digest.score.semantic) brings feedback in: a paper near a liked one
    rises, near a disliked one sinks (but a line's match stays), and up to ``related`` papers that
    no line matches come from near the liked ones. Without it, feedback counts for nothing.
    """
    count = len(profiles.profiles)
    limits = np.array([profile.limit for profile in profiles.profiles], dtype=np.int64)
    related_limits = np.array([profile.related for profile in profiles.profiles], dtype=np.int64)
    width = max(1, int(limits.max())) if count else 1
    related_width = max(1, int(related_limits.max())) if count else 1
    ranking = Ranking(
        index=index,
        profiles=profiles,
        doc=np.full((count, width), -1, dtype=np.int64),
        score=np.zeros((count, width)),
        relevance=np.zeros((count, width)),
        line=np.zeros((count, width), dtype=np.int64),
        near=np.full((count, width), -1, dtype=np.int64),
        related_doc=np.full((count, related_width), -1, dtype=np.int64),
        related_score=np.zeros((count, related_width)),
        related_relevance=np.zeros((count, related_width)),
        related_near=np.full((count, related_width), -1, dtype=np.int64),
    )
    if not index.docs or not count:
        return ranking
    if near is None:
        near = sparse.csr_matrix((len(profiles.feedback_papers), len(index.docs)), dtype=np.float64)
    if near.shape != (len(profiles.feedback_papers), len(index.docs)):
        raise ValueError(f"near is {near.shape}; it must be feedback papers x papers of the index")
    near = sparse.csr_matrix(near)  # the kernel reads CSR arrays, and a zero would count as not near
    near.eliminate_zeros()
    if near.nnz and (near.data.min() <= 0 or near.data.max() > 1):
        raise ValueError(
            "near holds a nearness outside (0, 1]; make it with digest.score.semantic.neighbours"
        )
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
        profiles.fb_ptr,
        profiles.fb_row,
        profiles.fb_sign,
        near.indptr.astype(np.int64),
        near.indices.astype(np.int64),
        near.data.astype(np.float64),
        index.weights.lift,
        index.weights.sink,
        index.weights.related,
        related_limits,
        ranking.near,
        ranking.related_doc,
        ranking.related_score,
        ranking.related_relevance,
        ranking.related_near,
    )
    return ranking


def _trending_only(index: Index, profile: Profile) -> list[Pick]:
    chosen = []
    for doc in index.order.tolist():
        score = index.weights.trending * float(index.trending[doc])
        if score < profile.min_score or len(chosen) >= profile.limit:
            break
        chosen.append(Pick(doc, score, 0.0, float(index.trending[doc]), None))
    return chosen
