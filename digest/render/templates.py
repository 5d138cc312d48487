"""The Jinja2 environment of templates/: autoescape for HTML, the stylesheet inlined into the email
templates when they load (css-inline), and the filters templates use (wrap, ascii, the snippet's
HTML and text). No I/O after the templates are loaded."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from digest.model.links import web_link
from digest.render import snippet as snippets
from digest.resources import resource_dir
from digest.score.explain import Snippet

TEXT_WIDTH = 78
# <mark> comes from the snippet, after the stylesheet was inlined into the template: style it here.
MARK = '<mark style="background-color: #fef08a; color: #18181b; padding: 0 1px;">'


class InliningLoader(FileSystemLoader):
    """Loads templates; an .html one comes with the folder's stylesheet inlined into style attributes
    (a whole document keeps its own <style> at-rules; a fragment is inlined as a fragment)."""

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        if not template.endswith(".html"):
            return source, filename, uptodate
        css, _, _ = super().get_source(environment, template.rsplit("/", 1)[0] + "/digest.css")
        css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)  # notes for developers stay out of mail
        if source.lstrip().lower().startswith("<!doctype"):
            inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False, extra_css=css)
            inlined = inliner.inline(source)
        else:
            inlined = css_inline.inline_fragment(source, css)
        return _references(inlined), filename, uptodate  # the inliner wrote &middot; back as "·"


def environment(loader: FileSystemLoader | None = None) -> Environment:
    """The Jinja2 environment of the templates (by default with the stylesheet inlined at load):
    autoescape for HTML, the ``wrap``, ``marked``, ``ascii``, ``snippet_html`` and ``snippet_text``
    filters, and the ``web_link`` test that every outside URL passes before it becomes a link."""
    env = Environment(
        loader=loader or InliningLoader(str(resource_dir("templates"))),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["wrap"] = wrap
    env.filters["marked"] = marked
    env.filters["ascii"] = ascii_html
    env.filters["snippet_html"] = snippet_html
    env.filters["snippet_text"] = snippets.text
    env.tests["web_link"] = is_web_link
    return env


def is_web_link(value: object) -> bool:
    """The ``web_link`` test: only an http(s) URL from outside, exactly as ``web_link`` gives it
    back, may become an href."""
    return isinstance(value, str) and web_link(value) == value


def snippet_html(snippet: Snippet) -> Markup:
    """A snippet as HTML: escaped, its matched words in <mark>."""
    return Markup(snippets.html(snippet))


def marked(html: str) -> Markup:
    """A snippet's HTML with its <mark>s styled inline, for mail."""
    return Markup(_references(str(html).replace("<mark>", MARK)))


def ascii_html(text: str) -> Markup:
    """``text`` escaped, with characters beyond ASCII as character references, so that a mail whose
    papers are all ASCII has an HTML part that needs no transfer encoding."""
    return Markup(_references(str(escape(text))))


def _references(html: str) -> str:
    return html if html.isascii() else html.encode("ascii", "xmlcharrefreplace").decode("ascii")


def wrap(text: str, indent: str = "", first: str | None = None, width: int = TEXT_WIDTH) -> str:
    """``text`` filled to ``width`` columns; lines start with ``indent`` (the first with ``first``,
    later ones then with as many spaces). Long words such as URLs are not broken."""
    lead = indent if first is None else first
    rest = indent if first is None else " " * len(first)
    return _fill(str(text), lead, rest, width)


@lru_cache(maxsize=65_536)
def _fill(text: str, lead: str, rest: str, width: int) -> str:
    """Greedy fill at runs of white space: what textwrap.fill does without breaking words, faster."""
    words = text.split()
    if not words:
        return ""
    lines: list[str] = []
    line = lead + words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = rest + word
        else:
            line = f"{line} {word}"
    lines.append(line)
    return "\n".join(lines)
