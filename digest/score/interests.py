"""The interest language: one interest per line, parsed into atoms the scorer matches.

In a line: words; "quoted phrases" (consecutive words); ``-word`` and ``-"phrase"`` exclude;
``author:"Name"`` or ``author:Name``; ``cat:cs.CV`` (an arXiv category, or ``cat:cs`` for a whole
archive); ``word^2`` or ``"phrase"^1.5`` weights a term. Blank lines and lines starting with ``#``
are skipped. A line ``like:2401.12345`` (an arXiv id or URL, or any stored paper's id) is a seed
paper, not a line of words: it asks for papers like that one, as "more like this" on it does.
``parse_interests`` returns the parsed lines (``seed_papers`` the seeds) or raises InterestError
with the line and column at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from digest.errors import UsageError
from digest.model.links import web_link
from digest.parse.record import parse_arxiv_id
from digest.score import text

MAX_LINES = 50
MAX_SEEDS = 50
SEED = "like:"
MAX_LINE_LENGTH = 300
MAX_WEIGHT = 10.0
LINE_CACHE = 65_536  # parsed lines kept: a list's subscribers share most of their lines
_CATEGORY = re.compile(r"[a-z][a-z-]*(?:\.[a-z][a-z-]*)?")
_WEIGHT = re.compile(r"\^(\d+(?:\.\d+)?)?")
_FIELD = re.compile(r"([A-Za-z]+):(?=\S)")
_EMPTY_FIELD = re.compile(r"(author|cat):(?=\s|$)", re.IGNORECASE)
# Punctuation a bare word may carry that is not part of it (a label leaves it out): opening
# brackets and quotes before it, closing ones and sentence marks after it (".NET" keeps its dot).
_BEFORE_WORDS = "([{<'`\u201c\u2018"
_AFTER_WORDS = ")]}>,;:.!?'`\u201d\u2019"

AtomKind = Literal["term", "phrase", "author", "cat"]


class InterestError(UsageError):
    """An interest line that cannot be parsed; says where (line, column) and how to fix it."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"interests line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.reason = message


@dataclass(frozen=True, slots=True)
class Atom:
    """One thing a line asks for (or, with ``exclude``, against).

    ``terms`` holds stems for terms and phrases, folded name words for authors, the folded
    category for ``cat``. A term has one stem; a phrase (or a hyphenated word) several. ``source``
    is the atom as written; ``label`` what it asks for as the reader wrote it, for explanations:
    without quotes, weight, field name or the punctuation around a word ("LLMs," is LLMs).
    """

    kind: AtomKind
    source: str
    terms: tuple[str, ...]
    weight: float = 1.0
    exclude: bool = False
    label: str = ""

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        """What the index is keyed on: terms and phrases share a namespace, so do their matches."""
        kind = "phrase" if self.kind in ("term", "phrase") and len(self.terms) > 1 else self.kind
        return kind, self.terms


@dataclass(frozen=True, slots=True)
class InterestLine:
    number: int
    text: str
    atoms: tuple[Atom, ...]

    @property
    def positive(self) -> tuple[Atom, ...]:
        return tuple(atom for atom in self.atoms if not atom.exclude and atom.kind in ("term", "phrase"))

    @property
    def filters(self) -> tuple[Atom, ...]:
        return tuple(atom for atom in self.atoms if atom.kind in ("author", "cat"))

    @property
    def excluded(self) -> tuple[Atom, ...]:
        return tuple(atom for atom in self.atoms if atom.exclude and atom.kind in ("term", "phrase"))


def parse_interests(source: str) -> tuple[InterestLine, ...]:
    """Parse a subscriber's interests. An empty text means "just the trending papers".

    Raises InterestError naming the line and column of the first problem.
    """
    return parse_with_seeds(source)[0]


def parse_with_seeds(source: str) -> tuple[tuple[InterestLine, ...], tuple[str, ...]]:
    """The parsed lines, and the papers of the ``like:`` lines as written (without ``like:``), in
    order. Raises InterestError as ``parse_interests`` does."""
    lines, seeds = [], []
    for number, raw in enumerate(source.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(raw) > MAX_LINE_LENGTH:
            raise InterestError(
                number, MAX_LINE_LENGTH + 1, f"longer than {MAX_LINE_LENGTH} characters; split it"
            )
        if stripped[: len(SEED)].lower() == SEED:
            seeds.append(_seed(raw, number))
            if len(seeds) > MAX_SEEDS:
                raise InterestError(
                    number, 1, f"more than {MAX_SEEDS} like: lines; keep the papers that matter most"
                )
            continue
        lines.append(InterestLine(number, stripped, _parse_line(raw, number)))
        if len(lines) > MAX_LINES:
            raise InterestError(number, 1, f"more than {MAX_LINES} interests; keep the ones that matter most")
    return tuple(lines), tuple(seeds)


def _seed(raw: str, number: int) -> str:
    """The paper of a ``like:`` line. Raises InterestError unless it names one paper alone."""
    column = len(raw) - len(raw.lstrip()) + len(SEED) + 1
    given = raw.strip()[len(SEED) :].strip()
    if not given:
        raise InterestError(number, column, "write the paper after like:, e.g. like:2401.12345")
    if len(given.split()) > 1:
        raise InterestError(
            number,
            column,
            "a like: line holds one paper (an arXiv id or URL) and nothing else; "
            "put its words on a line of their own",
        )
    if parse_arxiv_id(given) is None and web_link(given) is None:
        raise InterestError(number, column, "like: takes an arXiv id (like:2401.12345) or a paper's URL")
    return given


@lru_cache(maxsize=LINE_CACHE)
def _parse_line(raw: str, number: int) -> tuple[Atom, ...]:
    """The atoms of one line (remembered: atoms are immutable). Raises InterestError."""
    atoms: list[Atom] = []
    position = 0
    while position < len(raw):
        if raw[position].isspace():
            position += 1
            continue
        start = position
        exclude = raw[position] == "-"
        if exclude:
            position += 1
            if position >= len(raw) or raw[position].isspace():
                raise InterestError(
                    number, start + 1, "'-' must be followed by a word or a \"phrase\" to exclude"
                )
        atom, position = _parse_atom(raw, position, number, exclude)
        atoms.append(atom)
    if not any(not atom.exclude for atom in atoms):
        raise InterestError(
            number, 1, 'only exclusions; add a word, a "phrase", author: or cat: to say what you want'
        )
    return tuple(atoms)


def _parse_atom(raw: str, position: int, number: int, exclude: bool) -> tuple[Atom, int]:
    empty = _EMPTY_FIELD.match(raw, position)
    if empty:
        example = 'author:"Yann LeCun"' if empty.group(1).lower() == "author" else "cat:cs.CV"
        raise InterestError(
            number, position + 1, f"{empty.group(0)} needs a value right after it, e.g. {example}"
        )
    field = _FIELD.match(raw, position)
    if field:
        name = field.group(1).lower()
        if name == SEED[:-1]:
            raise InterestError(number, position + 1, "put like: and its paper on a line of their own")
        if name not in ("author", "cat"):
            raise InterestError(
                number, position + 1, f'unknown field {field.group(1)}:; use author:"Name" or cat:cs.CV'
            )
        value, end = _read_value(raw, field.end(), number)
        if name == "author":
            words = tuple(text.tokens(value))
            if not words:
                raise InterestError(number, field.end() + 1, 'author: needs a name, e.g. author:"Yann LeCun"')
            atom = Atom("author", raw[position:end], words, exclude=exclude, label=_spaced(value))
            return atom, _no_weight(raw, end, number)
        category = text.fold(value)
        if not _CATEGORY.fullmatch(category):
            raise InterestError(
                number,
                field.end() + 1,
                f"{value!r} is not an arXiv category; write it like cat:cs.CV or cat:math",
            )
        atom = Atom("cat", raw[position:end], (category,), exclude=exclude, label=value)
        return atom, _no_weight(raw, end, number)
    value, end = _read_value(raw, position, number)
    stems = tuple(text.analyze(value))
    if not stems:
        raise InterestError(number, position + 1, f"{value!r} has no letters or digits to match")
    weight, end = _read_weight(raw, end, number)
    kind: AtomKind = "phrase" if raw[position] == '"' else "term"
    label = _spaced(value) if kind == "phrase" else value.lstrip(_BEFORE_WORDS).rstrip(_AFTER_WORDS) or value
    return Atom(kind, raw[position:end], stems, weight=weight, exclude=exclude, label=label), end


def _spaced(value: str) -> str:
    return " ".join(value.split())


def _read_value(raw: str, position: int, number: int) -> tuple[str, int]:
    """A quoted string or a bare word starting at ``position``; returns it and the index after it."""
    if position < len(raw) and raw[position] == '"':
        close = raw.find('"', position + 1)
        if close == -1:
            raise InterestError(number, position + 1, 'this quote is never closed; add the closing "')
        if not raw[position + 1 : close].strip():
            raise InterestError(number, position + 1, "empty quotes; put a phrase between them")
        return raw[position + 1 : close], close + 1
    end = position
    while end < len(raw) and not raw[end].isspace() and raw[end] not in '"^':
        end += 1
    if end == position:
        raise InterestError(number, position + 1, 'expected a word or a "phrase" here')
    return raw[position:end], end


def _read_weight(raw: str, position: int, number: int) -> tuple[float, int]:
    match = _WEIGHT.match(raw, position)
    if not match:
        return 1.0, position
    if match.group(1) is None:
        raise InterestError(number, position + 1, "'^' must be followed by a weight, e.g. diffusion^2")
    weight = float(match.group(1))
    if not 0 < weight <= MAX_WEIGHT:
        raise InterestError(number, position + 2, f"weights go from above 0 to {MAX_WEIGHT:g}")
    return weight, match.end()


def _no_weight(raw: str, position: int, number: int) -> int:
    if position < len(raw) and raw[position] == "^":
        raise InterestError(number, position + 1, "author: and cat: take no weight; they filter")
    return position
