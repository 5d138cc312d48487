"""Text analysis shared by the index and the interest language: folding, tokens, English stems.

Folding applies NFKC, case folding and strips accents, so "Modèle" and "MODELE" meet. Words keep
their hyphens at tokenizing ("GPT-4", "self-supervised"); ``analyze`` splits them into consecutive
parts, so a hyphenated interest is matched as a phrase of its parts and "GPT-4" finds "GPT-4" and
"GPT 4" alike, while "GPT" alone finds both too. Tokens such as "3D" or "LoRA" stay one word. Stems
come from the Snowball English stemmer (PyStemmer), so "transformers" finds "transformer"; the
plural of an acronym folds too ("LLMs" and "llms" find "LLM").
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
# Plurals Snowball keeps whole: an acronym's ("LLMs", "VLAs", "GPUs"; capitals, then a small s) and
# a word of three letters or more without a vowel before its s ("llms", "cnns": an acronym typed in
# small letters). The s goes; "GPS", "TTS" and "gps" keep theirs (too short to tell from a name).
_ACRONYM_PLURAL = re.compile(r"([A-Z][A-Z0-9]*[A-Z0-9])s")
_ACRONYM_PLURALS = re.compile(rf"\b{_ACRONYM_PLURAL.pattern}\b")  # on ASCII text without "_", \b ends a word
_MAYBE_ACRONYM_PLURAL = re.compile(r"[A-Z0-9]s\b")  # a quick look before the slower one
_VOWELLESS_PLURAL = re.compile(
    r"(?=[b-df-hj-np-tv-xz0-9]{3,}s$)[0-9]*[b-df-hj-np-tv-xz][b-df-hj-np-tv-xz0-9]*s"
)
_stemmer = Stemmer.Stemmer("english")
_stemmer.maxCacheSize = 0  # _STEMS below keeps the whole answer, singular folded in
_STEMS: dict[str, str] = {}  # word -> stem: a field's words repeat, so nearly every word is found here
MAX_STEMS = 500_000  # words kept before _STEMS starts again (a few tens of MB at most)


@lru_cache(maxsize=65_536)
def fold(text: str) -> str:
    """NFKC, case-folded, accents stripped: the form every comparison uses."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return unicodedata.normalize("NFKC", stripped)


def tokens(text: str) -> list[str]:
    """Folded word tokens, hyphenated words kept whole."""
    return [fold(token) for token in TOKEN.findall(text)]


def _singular(piece: str) -> str:
    """``piece`` folded, without the plural s of an acronym written in capitals."""
    plural = _ACRONYM_PLURAL.fullmatch(piece)
    return fold(plural.group(1) if plural else piece)


def _stem_singular(stem: str) -> str:
    """``stem`` without the plural s of a word without a vowel ("llms" is llm)."""
    return stem[:-1] if _VOWELLESS_PLURAL.fullmatch(stem) else stem


def _stems(words: list[str]) -> list[str]:
    try:
        return [_STEMS[word] for word in words]
    except KeyError:  # a word not seen before
        pass
    if len(_STEMS) > MAX_STEMS:
        _STEMS.clear()
    for word in words:
        if word not in _STEMS:
            _STEMS[word] = _stem_singular(_stemmer.stemWord(word))
    return [_STEMS[word] for word in words]


def _pieces(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, folded word) of each word of ``text``; a hyphenated word gives one per part."""
    for match in TOKEN.finditer(text):
        start = match.start()
        for piece in _HYPHENS.split(match.group()):
            yield start, start + len(piece), _singular(piece)
            start += len(piece) + 1


def analyze(text: str) -> list[str]:
    """The stems of ``text`` in order, one per position; hyphenated words give one position per part."""
    if text.isascii():  # folding ASCII is lower-casing: skip the per-word work
        if _MAYBE_ACRONYM_PLURAL.search(text):
            text = _ACRONYM_PLURALS.sub(r"\1", text.replace("_", " "))
        return _stems(_WORD_PART.findall(text.lower()))
    return _stems([piece for _, _, piece in _pieces(text)])


@lru_cache(maxsize=4096)  # a day's papers, from every source
def spans(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, stem) of every position of ``analyze(text)``, as offsets into ``text``: for marking.
    Cached: a day's abstracts are marked for many subscribers."""
    found = list(_pieces(text))
    stems = _stems([piece for _, _, piece in found])
    return tuple((start, end, stem) for (start, end, _), stem in zip(found, stems, strict=True))
