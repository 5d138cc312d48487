"""Text analysis shared by the index and the interest language: folding, tokens, English stems.

Folding applies NFKC, case folding and strips accents, so "Modèle" and "MODELE" meet. Words keep
their hyphens at tokenizing ("GPT-4", "self-supervised"); ``analyze`` splits them into consecutive
parts, so a hyphenated interest is matched as a phrase of its parts and "GPT-4" finds "GPT-4" and
"GPT 4" alike, while "GPT" alone finds both too. Tokens such as "3D" or "LoRA" stay one word. Stems
come from the Snowball English stemmer (PyStemmer), so "transformers" finds "transformer".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

import Stemmer

TOKEN = re.compile(r"[^\W_]+(?:[-‐‑][^\W_]+)*")
_HYPHENS = re.compile(r"[-‐‑]")
_WORD_PART = re.compile(r"[^\W_]+")
_stemmer = Stemmer.Stemmer("english")
_stemmer.maxCacheSize = 100_000


@lru_cache(maxsize=65_536)
def fold(text: str) -> str:
    """NFKC, case-folded, accents stripped: the form every comparison uses."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return unicodedata.normalize("NFKC", stripped)


def tokens(text: str) -> list[str]:
    """Folded word tokens, hyphenated words kept whole."""
    return [fold(token) for token in TOKEN.findall(text)]


def _pieces(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, folded word) of each word of ``text``; a hyphenated word gives one per part."""
    for match in TOKEN.finditer(text):
        start = match.start()
        for piece in _HYPHENS.split(match.group()):
            yield start, start + len(piece), fold(piece)
            start += len(piece) + 1


def analyze(text: str) -> list[str]:
    """The stems of ``text`` in order, one per position; hyphenated words give one position per part."""
    if text.isascii():  # folding ASCII is lower-casing: skip the per-word work
        return _stemmer.stemWords(_WORD_PART.findall(text.lower()))
    return _stemmer.stemWords([piece for _, _, piece in _pieces(text)])


@lru_cache(maxsize=4096)  # a day's papers, from every source
def spans(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, stem) of every position of ``analyze(text)``, as offsets into ``text``: for marking.
    Cached: a day's abstracts are marked for many subscribers."""
    found = list(_pieces(text))
    stems = _stemmer.stemWords([piece for _, _, piece in found])
    return tuple((start, end, stem) for (start, end, _), stem in zip(found, stems, strict=True))
