"""The TeX in titles and abstracts as readable text, for showing them (mails, pages, `digest
score`): arXiv authors write ``54.6\\%``, ``$\\mathcal{L}$`` or ``\\emph{not}``, which a reader should
see as 54.6%, ℒ and not. Stored texts and the index keep what the source gave. No I/O.

Only what is surely TeX is changed: the escapes ``\\% \\& \\_ \\# \\$ \\{ \\}``, the font commands
around a word, and inline math (``$…$`` not starting or ending with a space, so "costs $5 and $10"
stays, nor holding no TeX and followed by a digit, so "$5M-$10M" stays, and ``\\(…\\)``), whose
content pylatexenc turns into Unicode. A plain "100%" is not a comment.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

READABLE_CACHE = 50_000
MATH_CHARS = 200  # longer "math" is more likely two prices in one sentence

_ESCAPES = {"%": "%", "&": "&", "_": "_", "#": "#", "{": "{", "}": "}"}
_DOLLAR = "\uf8ff"  # a private-use character standing for an escaped \$ while math is found
_FONT = re.compile(r"\\(?:emph|textit|textbf|texttt|textsc|textrm|textsf|mbox|text)\{([^{}$\\]*)\}")
_MATH = re.compile(rf"\$(?!\s)([^$]{{1,{MATH_CHARS}}}?)(?<!\s)\$|\\\((.{{1,{MATH_CHARS}}}?)\\\)", re.DOTALL)
_ESCAPE = re.compile(r"\\([%&_#{}])")
_QUOTES = (("``", "\u201c"), ("''", "\u201d"))
_MARKS = re.compile(r"[\\^_{}]")
# "based-on-source": a space the author wrote after a macro before a word stays, so O(n \log n) reads
# "O(n log n)", not "logn" (between two macros it still goes: \mathcal{L} \leq \epsilon reads "ℒ≤ϵ")
_MATH_TEXT = LatexNodes2Text(math_mode="text", strict_latex_spaces="based-on-source")
# pylatexenc logs a warning for each macro it cannot expand (a \frac without arguments): in an
# abstract that is the author's TeX, not ours to report, and the text is kept as written.
logging.getLogger("pylatexenc").setLevel(logging.CRITICAL)


@lru_cache(maxsize=READABLE_CACHE)
def readable(text: str) -> str:
    """``text`` with its TeX escapes, font commands and inline math made readable; text without
    a backslash or a dollar sign comes back as it is."""
    if "\\" not in text and "$" not in text and "``" not in text:
        return text
    text = text.replace("\\$", _DOLLAR)
    text = _MATH.sub(_math, text)
    text = _ESCAPE.sub(lambda match: _ESCAPES[match.group(1)], text)
    text = _FONT.sub(r"\1", text)
    for tex, quote in _QUOTES:
        text = text.replace(tex, quote)
    return text.replace(_DOLLAR, "$")


def _math(match: re.Match[str]) -> str:
    source = match.group(1) if match.group(1) is not None else match.group(2)
    if not _MARKS.search(source):
        if not any(char.isalpha() for char in source):
            return match.group(0)  # "$5-$": neither TeX nor a variable in it, so likely not math
        if match.group(1) is not None and match.string[match.end() : match.end() + 1].isdigit():
            return match.group(0)  # "$5M-$10M": its closing "$" opens the next price
    try:
        shown = _MATH_TEXT.latex_to_text(source)
    except ValueError:  # the TeX stays as written
        return match.group(0)
    return " ".join(shown.split()) or match.group(0)
