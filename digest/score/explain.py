"""Why a paper was picked, as data: the interest line that matched, what of it matched where, and
a snippet of the abstract around the matches with the matched words marked. No I/O, no markup:
digest.render.snippet turns a Snippet into HTML or text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from digest.score import text
from digest.score.index import Doc, Index, author_words, category_keys
from digest.score.interests import Atom
from digest.score.latex import readable
from digest.score.rank import Pick, Profile

SNIPPET_CACHE = 50_000
SNIPPET_WORDS = 40


@dataclass(frozen=True, slots=True)
class Match:
    """An atom of the line that the paper matched (its label: as the reader wrote it, without the
    syntax), and where: title, abstract, authors or categories."""

    atom: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snippet:
    """About SNIPPET_WORDS words of an abstract, as runs of text each marked (matched) or not;
    ``cut_before`` and ``cut_after`` say whether the abstract goes on beyond them."""

    parts: tuple[tuple[str, bool], ...] = ()
    cut_before: bool = False
    cut_after: bool = False

    def __bool__(self) -> bool:
        return bool(self.parts)


@dataclass(frozen=True, slots=True)
class Explanation:
    line: str | None
    matches: tuple[Match, ...]
    snippet: Snippet

    @property
    def matched(self) -> list[str]:
        return [match.atom for match in self.matches]

    @property
    def fields(self) -> dict[str, list[str]]:
        """Where each matched atom was found."""
        return {match.atom: list(match.fields) for match in self.matches}


def listed_terms(matched: Iterable[str]) -> str:
    """Matched labels for a line of text: 'diffusion, "language model", RL = "reinforcement learning"'
    (a label of several words in quotes, as its reader wrote it, so the commas read right)."""
    return ", ".join(" = ".join(map(_quoted, label.split(" = "))) for label in matched)


def _quoted(label: str) -> str:
    return f'"{label}"' if " " in label else label


def explain(index: Index, pick: Pick, profile: Profile) -> Explanation:
    """Why ``pick`` was chosen: the matching line, what matched where, and a snippet of the abstract
    (its TeX made readable) around the matches of its words and phrases."""
    doc = index.docs[pick.doc]
    if pick.line is None:
        return Explanation(None, (), snippet(readable(doc.abstract), frozenset()))
    line = profile.lines[pick.line]
    title, abstract = index.title_stems[pick.doc], index.abstract_stems[pick.doc]
    found: dict[str, Match] = {}  # by label, its case aside: "video Video^2" matched video once
    wanted: set[tuple[str, ...]] = set()
    for atom in line.atoms:
        if atom.exclude:
            continue
        own = where(atom, doc, title, abstract)
        label, fields = atom.label, own
        variant = index.variants.get(atom.terms) if atom.kind in ("term", "phrase") else None
        if variant is not None and (through := _fields_with(variant[0], title, abstract)):
            label = f"{atom.label} = {variant[1]}"  # "RL = reinforcement learning"
            fields = own + tuple(name for name in through if name not in own)
            wanted.add(variant[0])
        if not fields:
            continue
        if own and atom.kind in ("term", "phrase"):
            wanted.add(atom.terms)
        key = label.casefold()
        seen = found.get(key)
        if seen is None:
            found[key] = Match(label, fields)
        else:
            found[key] = Match(seen.atom, seen.fields + tuple(f for f in fields if f not in seen.fields))
    matches = tuple(found.values())
    return Explanation(line.text, matches, snippet(readable(doc.abstract), frozenset(wanted)))


def where(atom: Atom, doc: Doc, title: list[str], abstract: list[str]) -> tuple[str, ...]:
    """The fields of ``doc`` (its title's and abstract's stems given) that ``atom`` matches."""
    if atom.kind == "author":
        return ("authors",) if any(set(atom.terms) <= name for name in author_words(doc.authors)) else ()
    if atom.kind == "cat":
        return ("categories",) if atom.terms[0] in category_keys(doc.categories) else ()
    return _fields_with(atom.terms, title, abstract)


def _fields_with(terms: tuple[str, ...], title: list[str], abstract: list[str]) -> tuple[str, ...]:
    return tuple(
        name for name, stems in (("title", title), ("abstract", abstract)) if _contains(stems, terms)
    )


def _contains(stems: list[str], phrase: tuple[str, ...]) -> bool:
    if len(phrase) == 1:
        return phrase[0] in stems
    size = len(phrase)
    return any(tuple(stems[i : i + size]) == phrase for i, stem in enumerate(stems) if stem == phrase[0])


@lru_cache(maxsize=SNIPPET_CACHE)
def snippet(abstract: str, wanted: frozenset[tuple[str, ...]]) -> Snippet:
    """About SNIPPET_WORDS words of the abstract around the densest run of matches of the ``wanted``
    stem sequences, a run of neighbouring matched words in one marked part. Remembered: a day's
    digests ask for the same paper with the same matches again and again."""
    positions = text.spans(abstract)
    if not positions:
        return Snippet()
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
    parts: list[tuple[str, bool]] = []
    cursor = begin
    for start, stop in runs:
        if cursor < start:
            parts.append((abstract[cursor:start], False))
        parts.append((abstract[start:stop], True))
        cursor = stop
    if cursor < end:
        parts.append((abstract[cursor:end], False))
    return Snippet(tuple(parts), first > 0, end < len(abstract))
