"""Mails from templates/email: a digest, and the notices about a subscription. No I/O after start.

HTML autoescapes. The stylesheet (email/digest.css) is inlined into the elements once, when a
template is loaded (css-inline), not per message: the templates' Jinja tags sit where an HTML
parser keeps text (inside cells and paragraphs), so inlining the source inlines every mail made
from it. Media queries (narrow screens, dark mode) stay in the <style> block of digest.html. A
paper's own blocks (paper_head, paper_links) are rendered once per paper, and a paper with its
explanation (paper_item) once per explanation, and reused in every mail that holds them: most
subscribers of a day share papers and matches. Plain text is wrapped at 78 columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from digest.compose.digest import Digest, Item, PaperView, subject
from digest.render.templates import environment

PREHEADER_CHARS = 140
FRAGMENT_CACHE = 20_000


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Section:
    title: str | None
    items: tuple[Item, ...]


def _shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


# The fragments digest.html and digest.txt take from filters: (filter, template, its values
# besides ``paper``). paper_item holds a paper's explanation and links, paper_head its title block.
FRAGMENTS = (
    ("paper_head", "email/paper_head.html", ()),
    ("paper_links", "email/paper_links.html", ()),
    ("paper_item", "email/paper_item.html", ("first", "matched", "where", "snippet", "liked")),
    ("paper_head_text", "email/paper_head.txt", ("number",)),
    ("paper_links_text", "email/paper_links.txt", ()),
    ("paper_item_text", "email/paper_item.txt", ("why", "snippet")),
)


def add_fragments(env: Environment, size: int = FRAGMENT_CACHE) -> None:
    """Add the FRAGMENTS to ``env``'s filters, in order (a fragment may use those before it), each
    remembering its ``size`` latest renderings."""
    for name, template, extra in FRAGMENTS:
        env.filters[name] = _cached(env, template, extra, size)


def _cached(env: Environment, name: str, extra: tuple[str, ...], size: int) -> Callable[..., Markup | str]:
    """A paper's fragment from template ``name``, rendered once per paper (and ``extra`` values)."""
    template = env.get_template(name)
    safe = Markup if name.endswith(".html") else str

    @lru_cache(size)
    def fragment(paper: PaperView, *values: Any) -> Markup | str:
        return safe(template.render(paper=paper, **dict(zip(extra, values, strict=True))))

    return fragment


class Renderer:
    """Renders digests; build once (templates are loaded and inlined here) and reuse."""

    def __init__(self, site_name: str = "Paper digest") -> None:
        env = environment()
        add_fragments(env)
        self.site_name = site_name
        self._html = env.get_template("email/digest.html")
        self._text = env.get_template("email/digest.txt")

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
            "on_page": False,
        }

    def render(self, digest: Digest) -> Rendered:
        context = self.context(digest)
        return Rendered(context["subject"], self._text.render(context), self._html.render(context))

    def page(self, digest: Digest) -> str:
        """The HTML of ``digest`` as a web page (view in browser, past digests): the mail, with a
        link back to the reader's preferences and past digests at the top."""
        return self._html.render({**self.context(digest), "on_page": True})


NOTICES = {
    "confirm": (
        "Confirm your subscription to {site}",
        "One click to confirm",
        "Someone, probably you, asked to get {site} at this address. Confirm within {hours} hours "
        "and the first digest comes at the hour you chose.",
        "Confirm my subscription",
        "If you did not ask for this, ignore this mail: nothing will be sent without your click.",
    ),
    "manage": (
        "Your {site} subscription",
        "You are already subscribed",
        "Someone, probably you, tried to sign this address up to {site} again. It already gets the "
        "digest; change your interests, the hour or how often it comes on your preferences page.",
        "Open my preferences",
        "If you did not ask for this, ignore this mail: nothing has changed.",
    ),
}


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to a message sent to one of digest's addresses: what it said (``quoted``), one
    line per thing done or refused (``done``), the interests now (None: not shown) and at most one
    ``link`` (with its ``action``)."""

    subject: str
    heading: str
    lead: str
    quoted: str = ""
    done: tuple[str, ...] = ()
    interests: tuple[str, ...] | None = None
    link: str | None = None
    action: str = ""
    footer: str = ""


class NoticeRenderer:
    """Renders the mails about a subscription (confirm it, manage it, answers to mail); build once
    and reuse."""

    def __init__(self, site_name: str = "Paper digest") -> None:
        env = environment()
        self.site_name = site_name
        self._html = env.get_template("email/notice.html")
        self._text = env.get_template("email/notice.txt")
        self._answer_html = env.get_template("email/answer.html")
        self._answer_text = env.get_template("email/answer.txt")

    def answer(self, answer: Answer) -> Rendered:
        """The mail of ``answer``."""
        context = {"answer": answer, "subject": answer.subject, "site_name": self.site_name}
        return Rendered(answer.subject, self._answer_text.render(context), self._answer_html.render(context))

    def render(self, kind: str, link: str, confirm_hours: float) -> Rendered:
        """The ``kind`` (confirm or manage) mail with its one ``link``."""
        subject_line, heading, lead, action, footer = (
            part.format(site=self.site_name, hours=f"{confirm_hours:g}") for part in NOTICES[kind]
        )
        context = {
            "subject": subject_line,
            "heading": heading,
            "lead": lead,
            "action": action,
            "link": link,
            "footer": footer,
        }
        return Rendered(subject_line, self._text.render(context), self._html.render(context))
