"""Acronyms learned from the stored papers: "reinforcement learning (RL)" tells that RL stands for
reinforcement learning. No I/O, no hand-made list.

Definitions are found with the algorithm of Schwartz and Hearst ("A simple algorithm for
identifying abbreviation definitions in biomedical text", PSB 2003): a short form in parentheses,
and the shortest run of the words before it that holds the short form's letters in order, its
first letter starting a word. An acronym is kept when at least MIN_DEFINITIONS papers define it
and most of them the same way; a long form likewise.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from digest.score import text

MIN_DEFINITIONS = 2
# "(RL)", "(LLMs)", "(ViT)", "(SG-OPD)": one word of 2 to 10 characters with two capitals or more.
_SHORT = re.compile(r"\(([A-Za-z0-9][A-Za-z0-9-]{1,9})\)")
_BEFORE = frozenset(" ~\t\n\xa0")  # what parts a long form from its "(": a space, or TeX's ~
_CAPITALS = re.compile(r"[A-Z]")
_CLAUSE_END = re.compile(r"[.;:!?()\[\]]")


@dataclass(frozen=True, slots=True)
class Expansion:
    """An acronym and what it stands for: stems (as the index reads them) and text (as written)."""

    short: tuple[str, ...]
    long: tuple[str, ...]
    short_text: str
    long_text: str


def definitions(source: str) -> Iterator[tuple[str, str]]:
    """(short form, long form) of each "long form (SHORT)" in ``source``."""
    if "(" not in source:
        return
    for match in _SHORT.finditer(source):
        short = match.group(1)
        if (
            match.start() == 0
            or source[match.start() - 1] not in _BEFORE
            or len(_CAPITALS.findall(short)) < 2
        ):
            continue
        before = _CLAUSE_END.split(source[: match.start() - 1])[-1].split()
        singular = short[:-1] if short.endswith("s") and short[-2].isupper() else short
        limit = min(len(singular) + 5, 2 * len(singular))
        long = _long_form(singular, " ".join(before[-limit:]))
        if long and len(long.split()) <= limit and singular.lower() not in long.lower():
            yield singular, long


def _long_form(short: str, candidate: str) -> str | None:
    """The shortest end of ``candidate`` holding the letters of ``short`` in order, right to left,
    its first letter at the start of a word; None when there is none."""
    at = len(candidate) - 1
    for position in range(len(short) - 1, -1, -1):
        char = short[position].lower()
        if not char.isalnum():
            continue
        while at >= 0 and (
            candidate[at].lower() != char or (position == 0 and at > 0 and candidate[at - 1].isalnum())
        ):
            at -= 1
        if at < 0:
            return None
        at -= 1
    start = candidate.rfind(" ", 0, at + 1) + 1
    long = candidate[start:].strip()
    return long if " " in long or "-" in long else None


@lru_cache(maxsize=16_384)  # papers define the same acronyms again and again
def _stems(written: str) -> tuple[str, ...]:
    return tuple(text.analyze(written))


class Counts:
    """Definitions counted over the papers, as the corpus pass meets them."""

    def __init__(self) -> None:
        self.pairs: Counter[tuple[tuple[str, ...], tuple[str, ...]]] = Counter()
        self.written: dict[tuple[tuple[str, ...], tuple[str, ...]], Counter[tuple[str, str]]] = {}

    def add(self, *texts: str) -> None:
        """Count the definitions of one paper (its title and abstract): each once, however often it
        defines it."""
        found: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[str, str]] = {}
        for source in texts:
            for short, long in definitions(source):
                key = (_stems(short), _stems(long))
                if key[0] and key[1] and key[0] != key[1]:
                    found.setdefault(key, (short, long.lower()))
        for key, written in found.items():
            self.pairs[key] += 1
            self.written.setdefault(key, Counter())[written] += 1

    def rows(self) -> Counter[tuple[str, str, str, str]]:
        """The definitions as stored (digest.store.corpus): papers by (short form's stems, long
        form's stems, each joined by spaces; short form as written, long form lower-cased)."""
        found: Counter[tuple[str, str, str, str]] = Counter()
        for (short, long), written in self.written.items():
            for (short_text, long_text), papers in written.items():
                found[" ".join(short), " ".join(long), short_text, long_text] += papers
        return found

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[tuple[str, str, str, str], int]]) -> Counts:
        """The counts that rows() gave (any subset of them: expansions() then holds for the
        acronyms and long forms whose every row is among them)."""
        counts = cls()
        for (short, long, short_text, long_text), papers in rows:
            if papers <= 0:
                continue
            key = (tuple(short.split()), tuple(long.split()))
            counts.pairs[key] += papers
            counts.written.setdefault(key, Counter())[short_text, long_text] += papers
        return counts

    def expansions(self) -> dict[tuple[str, ...], Expansion]:
        """Each acronym and each long form defined the same way by most of the papers that define it
        (MIN_DEFINITIONS at least), by its stems; an acronym and its long form point to one Expansion."""
        by_short: Counter[tuple[str, ...]] = Counter()
        by_long: Counter[tuple[str, ...]] = Counter()
        for (short, long), count in self.pairs.items():
            by_short[short] += count
            by_long[long] += count
        found: dict[tuple[str, ...], Expansion] = {}
        for (short, long), count in sorted(self.pairs.items()):
            if count < MIN_DEFINITIONS or 2 * count <= by_short[short] or 2 * count <= by_long[long]:
                continue
            (short_text, long_text), _ = min(
                self.written[short, long].items(), key=lambda kv: (-kv[1], kv[0])
            )
            found[short] = found[long] = Expansion(short, long, short_text, long_text)
        return found
