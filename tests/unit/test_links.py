"""Links from sources: only http(s) URLs ever become an href, in mail or on a page."""

from __future__ import annotations

import json
from datetime import date
from types import SimpleNamespace
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.compose.digest import Digest, Item, Links, PaperView
from digest.model.links import web_link
from digest.parse import parse_document
from digest.render.mails import Renderer
from digest.score.explain import Snippet
from digest.usecases.pages import page_templates
from tests.support.data import HF_JSON

LINKS = Links(
    "https://d.example.org/d/T",
    "https://d.example.org/p/T",
    "https://d.example.org/u/T",
    "https://d.example.org/f/T",
)
HOSTILE = st.sampled_from(
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "\x00javascript:alert(1)",
        "java\tscript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "//evil.example/x",
        "/relative",
        "http:",
        "http://",
        "https://ok.example.org/a b",
        "https://ok.example.org/\x85",
        "https://ok.example.org/\u2028x",
        "https://ok.example.org/\u202ex",
        'https://ok.example.org/"onmouseover="x',
        "https://github.com/owner/repo",
        "http://example.org/project",
    ]
)
URLS = st.one_of(HOSTILE, st.text(max_size=40), st.builds(lambda s, t: s + t, HOSTILE, st.text(max_size=10)))
RENDERER = Renderer()
PAGES = page_templates()
HF_ENTRY = json.loads(HF_JSON.read_text())[0]


def hf_listing(code: str, project: str) -> bytes:
    paper = {**HF_ENTRY["paper"], "githubRepo": code, "projectPage": project}
    return json.dumps([{**HF_ENTRY, "paper": paper}]).encode()


def feed_with_link(link: str) -> bytes:
    escaped = "".join(c for c in link if c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd")
    escaped = escaped.replace("&", "&amp;").replace("<", "&lt;")
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        f"<item><title>A paper</title><link>{escaped}</link><description>d</description></item>"
        "</channel></rss>"
    ).encode()


def hrefs(html: str) -> list[str]:
    return [a.get("href") for a in BeautifulSoup(html, "html.parser").find_all("a") if a.has_attr("href")]


def assert_only_web_links(html: str) -> None:
    for href in hrefs(html):
        assert urlsplit(href).scheme in {"http", "https"} and web_link(href) == href, href


@settings(max_examples=100, deadline=None)
@given(code=URLS, project=URLS, link=URLS)
def test_any_url_a_source_gives_renders_as_an_http_link_or_not_at_all(
    code: str, project: str, link: str
) -> None:
    papers = parse_document(hf_listing(code, project), "hf-daily") + parse_document(
        feed_with_link(link), "feed"
    )
    for paper in papers:
        for value in (paper.url, paper.pdf_url, paper.hf_url, paper.github_repo, paper.project_page):
            assert value is None or web_link(value) == value
    views = [
        PaperView(p.id, p.title, p.url, (), None, None, p.pdf_url, p.github_repo, p.project_page, p.hf_url)
        for p in papers
    ]
    assert_only_web_links(RENDERER.render(digest(*views)).html)


@settings(max_examples=100, deadline=None)
@given(url=URLS, pdf=URLS, code=URLS, project=URLS, hf=URLS)
def test_links_already_stored_are_checked_again_where_they_are_rendered(
    url: str, pdf: str, code: str, project: str, hf: str
) -> None:
    view = PaperView("2407.21783", "A paper", url, (), None, None, pdf, code, project, hf)
    rendered = RENDERER.render(digest(view))
    assert_only_web_links(rendered.html)
    preview = SimpleNamespace(subject="Today", items=digest(view).items, trending=())
    page = PAGES.get_template("web/_preview.html").render(preview=preview)
    assert_only_web_links(page)
    for line in rendered.text.splitlines():
        for label in ("Abstract:", "PDF:", "Code:", "Project:", "Discuss:"):
            if line.strip().startswith(label):
                assert web_link(line.split(label, 1)[1].strip()), line


def digest(*views: PaperView) -> Digest:
    items = tuple(Item(view, 1.0, 1.0, 0.0, 0, "x", ("x",), ("title",), Snippet()) for view in views)
    return Digest("ada@example.org", date(2026, 11, 24), "daily", items, (), LINKS)
