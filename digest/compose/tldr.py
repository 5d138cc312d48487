"""The one line under a paper's title: the source's own summary when it carried one (Hugging Face's
``ai_summary``), else the abstract's first sentence. TeX made readable, spaces collapsed, at most
TLDR_CHARS characters. No I/O."""

from __future__ import annotations

import re
from functools import lru_cache

from digest.score.latex import readable

TLDR_CHARS = 240
# A full stop that ends a sentence: what follows starts another (a capital or a digit, maybe after
# an opening quote or bracket), unless the word it ends is one of these abbreviations.
_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]*[A-Z0-9])")
_LATIN = {"al", "approx", "cf", "e.g", "etc", "i.e", "resp", "vs"}
_POINTERS = {"ch", "eq", "eqs", "fig", "figs", "no", "ref", "refs", "sec", "tab"}
_TITLES = {"dr", "mr", "ms", "prof", "st"}
_ABBREVIATIONS = frozenset(_LATIN | _POINTERS | _TITLES)


@lru_cache(maxsize=4096)  # a day's papers, shown to many subscribers
def tldr(summary: str | None, abstract: str) -> str:
    """The paper's one line: ``summary`` when it says something, else the first sentence of
    ``abstract``; "" when both are empty."""
    line = " ".join(readable(summary).split()) if summary else ""
    if not line:
        line = first_sentence(" ".join(readable(abstract).split()))
    return clipped(line)


def first_sentence(text: str) -> str:
    """``text`` up to the end of its first sentence (all of it when no sentence ends before)."""
    for end in _END.finditer(text):
        word = text[: end.start()].rsplit(None, 1)[-1].lstrip("([\"'").lower() if end.start() else ""
        if word in _ABBREVIATIONS:
            continue
        return text[: end.end()]
    return text


def clipped(line: str, limit: int = TLDR_CHARS) -> str:
    """``line`` cut at a word before ``limit`` characters, with an ellipsis, when longer."""
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"
