"""A snippet's marked words as HTML (escaped, in <mark>) or as text (between asterisks)."""

from __future__ import annotations

import html as markup

from digest.score.explain import Snippet


def html(snippet: Snippet) -> str:
    """The snippet escaped, its matched words in <mark>: safe to put in a page as is."""
    body = "".join(
        f"<mark>{markup.escape(part)}</mark>" if hit else markup.escape(part) for part, hit in snippet.parts
    )
    return _ends(snippet, body)


def text(snippet: Snippet) -> str:
    """The snippet as plain text, its matched words between asterisks."""
    return _ends(snippet, "".join(f"*{part}*" if hit else part for part, hit in snippet.parts))


def _ends(snippet: Snippet, body: str) -> str:
    if not snippet:
        return ""
    return ("… " if snippet.cut_before else "") + body + (" …" if snippet.cut_after else "")
