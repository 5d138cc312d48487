"""What a document may hold before a parser builds it (no I/O).

Parsers build a tree or objects per tag and per JSON container, so memory follows their count, not
the byte size: 4 MB of tiny tags made 660 MB of BeautifulSoup. A document is therefore counted first,
cheaply, and refused when it holds more than any real listing does; the budget keeps every parser
within seconds and well under 200 MB at the size cap.
"""

from __future__ import annotations

import codecs
import re

from digest.errors import ParseError

MAX_TAGS = 150_000  # a 2,000-result arXiv API page has about 75,000; an HF page about 1,200
MAX_CONTAINERS = 500_000  # JSON objects and arrays; an HF daily listing has a few hundred

# "<" written as a reference in text that is parsed as HTML later (a feed's escaped description).
_ESCAPED_LT = re.compile(rb"&(?:lt|#0*60|#x0*3c);", re.IGNORECASE)

# How an XML document in a wide encoding starts, by its byte order mark or by "<?" (XML 1.0 Appendix F).
_WIDE_STARTS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)


def as_text(content: bytes) -> str | None:
    """The document decoded, when it is in UTF-16 or UTF-32 (by BOM or by how it starts); else None."""
    for start, codec in _WIDE_STARTS:
        if content.startswith(start):
            return content.decode(codec, errors="replace")
    return None


def check_budget(content: bytes) -> None:
    """Refuse a document with more tags or JSON containers than a listing ever has.

    Escaped markup (``&lt;b&gt;`` or ``&#60;b&#62;`` in a feed's description, parsed as HTML
    later) counts as tags.
    Raises ParseError saying what was found and what to do.
    """
    wide = as_text(content)
    if wide is not None:  # count characters, not the bytes of a wide encoding
        content = wide.encode("utf-8", errors="replace")
    tags = content.count(b"<") + sum(1 for _ in _ESCAPED_LT.finditer(content))
    containers = content.count(b"{") + content.count(b"[")
    if tags > MAX_TAGS:
        raise ParseError(
            f"Refused the document: it holds {tags:,} tags, more than the {MAX_TAGS:,} any listing has. "
            "Check that the source URL points at a listing (for the arXiv API, ask for fewer results "
            "per page with max_results)."
        )
    if containers > MAX_CONTAINERS:
        raise ParseError(
            f"Refused the document: it holds {containers:,} JSON objects and arrays, more than the "
            f"{MAX_CONTAINERS:,} any listing has. Check that the source URL points at a listing."
        )
