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
from dataclasses import dataclass

import numpy as np

from digest.score import kernels
from digest.score.index import Index
from digest.score.interests import Atom, InterestLine

FILTER_ONLY_RELEVANCE = 1.0


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
            found = index.column(atom)
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


def _trending_only(index: Index, profile: Profile) -> list[Pick]:
    chosen = []
    for doc in index.order.tolist():
        score = index.weights.trending * float(index.trending[doc])
        if score < profile.min_score or len(chosen) >= profile.limit:
            break
        chosen.append(Pick(doc, score, 0.0, float(index.trending[doc]), None))
    return chosen
