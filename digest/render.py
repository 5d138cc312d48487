"""Digest -> subject, plain text and HTML, from the Jinja2 templates in templates/email. No I/O after start.

HTML autoescapes. The stylesheet of the HTML template is inlined into its elements once, when the
template is loaded (css-inline), not per message: the template's Jinja tags sit where an HTML parser
keeps text (inside cells and paragraphs), so inlining the source inlines every mail made from it.
Media queries (narrow screens, dark mode) stay in a <style> block. Plain text is wrapped at 78.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from digest.compose import Digest, Item, subject
from digest.resources import resource_dir

TEXT_WIDTH = 78
PREHEADER_CHARS = 140
# <mark> comes from the snippet, after the stylesheet was inlined into the template: style it here.
MARK = '<mark style="background-color: #fef08a; color: #18181b; padding: 0 1px;">'
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Section:
    title: str | None
    items: tuple[Item, ...]


class InliningLoader(FileSystemLoader):
    """Loads templates; an .html template comes with its <style> rules inlined into style attributes."""

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        if template.endswith(".html"):
            source = _INLINER.inline(source)
        return source, filename, uptodate


def environment(folder: str = "email") -> Environment:
    """The Jinja2 environment of one template folder: autoescape for HTML, ``wrap`` for text."""
    env = Environment(
        loader=InliningLoader(str(resource_dir("templates") / folder)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["wrap"] = wrap
    env.filters["marked"] = marked
    return env


def marked(snippet_html: str) -> Markup:
    """A snippet (already escaped and marked by scoring) with its <mark>s styled inline."""
    return Markup(snippet_html.replace("<mark>", MARK))


def wrap(text: str, indent: str = "", first: str | None = None, width: int = TEXT_WIDTH) -> str:
    """``text`` filled to ``width`` columns; lines start with ``indent`` (the first with ``first``,
    later ones then with as many spaces). Long words such as URLs are not broken."""
    lead = indent if first is None else first
    rest = indent if first is None else " " * len(first)
    return _fill(" ".join(str(text).split()), lead, rest, width)


@lru_cache(maxsize=65_536)
def _fill(text: str, lead: str, rest: str, width: int) -> str:
    return textwrap.fill(
        text,
        width=width,
        initial_indent=lead,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


class Renderer:
    """Renders digests; build once (templates are loaded and inlined here) and reuse."""

    def __init__(self, site_name: str = "Paper digest") -> None:
        env = environment("email")
        self.site_name = site_name
        self._html = env.get_template("digest.html")
        self._text = env.get_template("digest.txt")

    def context(self, digest: Digest) -> dict[str, Any]:
        day = digest.digest_date.strftime("%A %d %B %Y").replace(" 0", " ")
        kicker = f"{self.site_name} · {'week to ' if digest.frequency == 'weekly' else ''}{day}"
        if digest.has_interests:
            sections = [Section(None, digest.items), Section("Trending today", digest.trending)]
        else:
            sections = [Section("Trending today", digest.items or digest.trending)]
        shown = [section for section in sections if section.items]
        titles = [item.paper.title for section in shown for item in section.items[:3]]
        return {
            "digest": digest,
            "subject": subject(digest),
            "kicker": kicker,
            "sections": shown,
            "site_name": self.site_name,
            "preheader": _shorten(" · ".join(titles), PREHEADER_CHARS),
        }

    def render(self, digest: Digest) -> Rendered:
        context = self.context(digest)
        return Rendered(context["subject"], self._text.render(context), self._html.render(context))
