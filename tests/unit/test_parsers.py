"""The source parsers against real captured responses (tests/data/fixtures, see PROVENANCE.txt).

Golden files in tests/data/golden hold one ``paper.to_json()`` per line. After a deliberate change,
regenerate them with ``DIGEST_UPDATE_GOLDEN=1 pytest tests/test_parsers.py`` and read the diff.
"""

from __future__ import annotations

import json
import os
import re
import tracemalloc
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.errors import ParseError, UnsafeDocument
from digest.parse import PARSERS, detect_kind, parse_document
from digest.parse.feeds import ensure_safe_xml, parse_arxiv_api, parse_arxiv_rss, parse_feed, split_authors
from digest.parse.hf import parse_daily_api, parse_listing_page
from digest.parse.record import KINDS, ParsedPaper, parse_arxiv_id
from tests.support.data import FIXTURES, GOLDEN

# Read at import: the autouse fixture in conftest.py clears DIGEST_* variables before each test runs.
UPDATE_GOLDEN = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"

HF_2024_05 = "hf_daily_papers_api_2024-05-27_prettified.json"
HF_2025_06 = "hf_daily_papers_api_2025-06-25_prettified.json"
HF_2026_06 = "hf_daily_papers_api_2026-06-12_raw.json"
HF_PAGE = "hf_papers_page_2024-08-01.html"
RSS_NEW = "arxiv_rss_new_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_trimmed.xml"
RSS_RDF = "arxiv_rss_old_rdf_hep-ex_2018-05-23_excerpt.xml"
API_2016_SEARCH = "arxiv_api_atom_2016_search_query_au_del_maestro.xml"
API_2016_ID = "arxiv_api_atom_2016_id_list_1111.2011v2.xml"
API_2026_XML = "arxiv_api_atom_2026-04-12_q_testing_s0_m10_body_extracted.xml"
API_2026_RECORDED = "arxiv_api_recorded_2026-04_q_testing_s0_m10.json"
API_2026_ID_RECORDED = "arxiv_api_recorded_2026_id_list_0808.05394_1707.08567.json"

# Every fixture, its kind and the number of papers its provenance documents.
FIXTURE_KINDS = {
    HF_2026_06: ("hf-daily", 30),
    HF_2024_05: ("hf-daily", 13),
    "hf_daily_papers_api_2024-09-16_prettified.json": ("hf-daily", 7),
    HF_2025_06: ("hf-daily", 14),
    "hf_daily_papers_api_2026-08-21_prettified.json": ("hf-daily", 17),
    HF_PAGE: ("hf-page", 13),
    RSS_NEW: ("arxiv-rss", 4),
    RSS_RDF: ("arxiv-rss", 3),
    API_2016_SEARCH: ("arxiv-api", 10),
    API_2016_ID: ("arxiv-api", 1),
    API_2026_XML: ("arxiv-api", 10),
    API_2026_RECORDED: ("arxiv-api", 10),
    API_2026_ID_RECORDED: ("arxiv-api", 1),
}

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>https://arxiv.org/abs/2609.26811</link><description>&lol9;</description></item>
</channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY passwd SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title>
<item><title>&passwd;</title><link>https://arxiv.org/abs/2609.26811</link><description>&passwd;</description></item>
</channel></rss>"""

XML_PARSERS = [parse_arxiv_rss, parse_arxiv_api, parse_feed, parse_document]


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def as_json_lines(papers: list[ParsedPaper]) -> str:
    return "".join(json.dumps(paper.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for paper in papers)


def rss_new_with(old: str, new: str) -> bytes:
    """The real arXiv RSS fixture with one exact piece of text replaced."""
    content = load(RSS_NEW)
    assert old.encode() in content
    return content.replace(old.encode(), new.encode(), 1)


# --- golden files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_KINDS))
def test_fixture_parses_to_its_golden_file(name: str) -> None:
    kind, _ = FIXTURE_KINDS[name]
    golden = GOLDEN / f"{Path(name).stem}.jsonl"
    explicit = as_json_lines(parse_document(load(name), kind))
    if UPDATE_GOLDEN:
        golden.write_text(explicit, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    assert explicit == expected
    assert as_json_lines(parse_document(load(name))) == expected


@pytest.mark.parametrize("name", sorted(FIXTURE_KINDS))
def test_fixture_kind_is_detected_and_count_matches_provenance(name: str) -> None:
    kind, count = FIXTURE_KINDS[name]
    assert detect_kind(load(name)) == kind
    papers = parse_document(load(name))
    assert len(papers) == count
    assert {paper.kind for paper in papers} == {kind}
    assert [paper.rank for paper in papers] == list(range(1, count + 1))


def test_parsers_cover_exactly_the_known_kinds() -> None:
    assert tuple(PARSERS) == KINDS


# --- what a reader notices, across every fixture -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_KINDS))
def test_titles_and_abstracts_have_no_line_breaks(name: str) -> None:
    for paper in parse_document(load(name)):
        assert paper.title and paper.title == paper.title.strip()
        assert "\n" not in paper.title and "\n" not in paper.abstract
        assert "  " not in paper.title and "  " not in paper.abstract


@pytest.mark.parametrize("name", sorted(FIXTURE_KINDS))
def test_ids_have_no_version_and_links_point_at_the_paper(name: str) -> None:
    for paper in parse_document(load(name)):
        assert parse_arxiv_id(paper.id) is not None
        assert not re.search(r"v\d+$", paper.id)
        assert paper.url == f"https://arxiv.org/abs/{paper.id}"
        assert paper.pdf_url and paper.id in paper.pdf_url
        assert all(author and author == author.strip() for author in paper.authors)


# --- Hugging Face daily papers API ---------------------------------------------------------------------


def test_hf_daily_keeps_authors_in_source_order() -> None:
    items = json.loads(load(HF_2026_06))
    papers = parse_daily_api(load(HF_2026_06))
    for item, paper in zip(items, papers, strict=True):
        assert list(paper.authors) == [author["name"].strip() for author in item["paper"]["authors"]]


def test_hf_daily_keeps_hidden_authors() -> None:
    items = json.loads(load(HF_2026_06))
    hidden = [
        (item["paper"]["id"], author["name"])
        for item in items
        for author in item["paper"]["authors"]
        if author.get("hidden")
    ]
    assert hidden
    papers = {paper.id: paper for paper in parse_daily_api(load(HF_2026_06))}
    for paper_id, name in hidden:
        assert name in papers[paper_id].authors


def test_hf_daily_reads_upvotes_comments_and_links() -> None:
    first = parse_daily_api(load(HF_2025_06))[0]
    assert first.id == "2506.19851"
    assert first.title == "AnimaX: Animating the Inanimate in 3D with Joint Video-Pose Diffusion Models"
    assert first.upvotes == 21
    assert first.comments == 1
    assert first.github_repo == "https://github.com/anima-x/anima-x"
    assert first.github_stars == 20
    assert first.project_page == "https://anima-x.github.io/"
    assert "video diffusion models" in first.ai_keywords
    assert first.published == date(2025, 6, 24)
    assert first.listed_on == date(2025, 6, 25)
    assert first.hf_url == "https://huggingface.co/papers/2506.19851"
    assert first.version is None


def test_hf_daily_upvotes_match_the_source() -> None:
    items = json.loads(load(HF_2026_06))
    papers = parse_daily_api(load(HF_2026_06))
    assert [paper.upvotes for paper in papers] == [item["paper"]["upvotes"] for item in items]
    assert [paper.comments for paper in papers] == [item["numComments"] for item in items]


def test_hf_daily_2024_items_without_later_fields_parse() -> None:
    papers = parse_daily_api(load(HF_2024_05))
    first = papers[0]
    assert first.id == "2405.15738"
    assert first.title == "ConvLLaVA: Hierarchical Backbones as Visual Encoder for Large Multimodal Models"
    assert first.upvotes == 32
    assert first.github_repo is None and first.github_stars is None
    assert first.project_page is None and first.ai_keywords == ()
    assert {paper.listed_on for paper in papers} == {date(2024, 5, 27)}


def test_hf_daily_listed_on_is_the_daily_date() -> None:
    papers = parse_daily_api(load(HF_2026_06))
    assert {paper.listed_on for paper in papers} == {date(2026, 6, 12)}


def test_hf_daily_skips_broken_items_and_keeps_ranks() -> None:
    items = json.loads(load(HF_2025_06))
    del items[0]["paper"]["id"]
    items[1]["paper"]["title"] = "  \n "
    items[2] = "not an item"
    items[3]["paper"] = None
    items[4]["paper"]["authors"] = "Someone"
    items[4]["paper"]["upvotes"] = "many"
    papers = parse_daily_api(json.dumps(items).encode())
    assert len(papers) == len(items) - 4
    assert papers[0].rank == 5
    assert (papers[0].authors, papers[0].upvotes) == ((), None)


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (load(HF_PAGE), "an HTML page"),
        (b'{"error": "Invalid date"}', "a JSON object"),
        (b"[{", "not valid JSON"),
        (b"", "an empty document"),
    ],
)
def test_hf_daily_refuses_what_is_not_a_list_of_items(content: bytes, found: str) -> None:
    with pytest.raises(ParseError, match="Expected Hugging Face daily papers JSON") as excinfo:
        parse_daily_api(content)
    assert found in str(excinfo.value)


# --- Hugging Face listing page -------------------------------------------------------------------------


def without_data_props(content: bytes) -> bytes:
    """The real page with the DailyPapers element's data-props attribute removed."""
    stripped, count = re.subn(rb'(data-target="DailyPapers") data-props="[^"]*"', rb"\1", content)
    assert count == 1
    return stripped


LLAMA_3 = "The Llama 3 Herd of Models"


def test_hf_page_first_paper_is_llama_3_with_94_upvotes() -> None:
    papers = parse_listing_page(load(HF_PAGE))
    first = papers[0]
    assert (first.id, first.title, first.upvotes, first.rank) == ("2407.21783", LLAMA_3, 94, 1)
    assert first.abstract.startswith("Modern artificial intelligence (AI) systems are powered by foundation")
    assert first.authors[:2] == ("Abhimanyu Dubey", "Abhinav Jauhri")
    assert {paper.listed_on for paper in papers} == {date(2024, 8, 1)}


def test_hf_page_without_data_props_falls_back_to_cards_with_same_ids_titles_upvotes() -> None:
    from_props = parse_listing_page(load(HF_PAGE))
    from_cards = parse_listing_page(without_data_props(load(HF_PAGE)))

    def visible(papers: list[ParsedPaper]) -> list[tuple]:
        return [(p.id, p.title, p.upvotes, p.comments, p.rank, p.listed_on, p.url, p.hf_url) for p in papers]

    assert visible(from_cards) == visible(from_props)
    assert all(paper.abstract == "" and paper.authors == () for paper in from_cards)


def test_hf_page_with_unusable_data_props_falls_back_to_cards() -> None:
    broken = load(HF_PAGE).replace(b'data-props="{&quot;canSubmit', b'data-props="{{&quot;canSubmit', 1)
    papers = parse_listing_page(broken)
    assert [paper.id for paper in papers] == [paper.id for paper in parse_listing_page(load(HF_PAGE))]
    assert papers[0].abstract == ""


@pytest.mark.parametrize("content", [load(HF_2026_06), b"<html><body><p>Nothing here</p></body></html>", b""])
def test_hf_page_refuses_a_page_without_papers(content: bytes) -> None:
    with pytest.raises(ParseError, match="Expected a Hugging Face Daily Papers page"):
        parse_listing_page(content)


# --- arXiv RSS -----------------------------------------------------------------------------------------


def test_rss_announce_types_follow_the_items() -> None:
    papers = parse_arxiv_rss(load(RSS_NEW))
    assert [paper.announce_type for paper in papers] == ["new", "new", "cross", "replace"]


def test_rss_replace_item_keeps_announce_type_and_version() -> None:
    replaced = parse_arxiv_rss(load(RSS_NEW))[3]
    assert (replaced.id, replaced.version, replaced.announce_type) == ("2009.13987", 3, "replace")
    assert replaced.title == "Random Polytope Descriptors"


def test_rss_ids_drop_the_version_and_keep_it_apart() -> None:
    papers = parse_arxiv_rss(load(RSS_NEW))
    assert [(paper.id, paper.version) for paper in papers] == [
        ("2609.26811", 1),
        ("2609.26820", 1),
        ("2205.06398", 2),
        ("2009.13987", 3),
    ]


def test_rss_abstract_loses_the_announce_prefix() -> None:
    for paper in parse_arxiv_rss(load(RSS_NEW)):
        assert "Announce Type" not in paper.abstract
        assert not paper.abstract.startswith(("arXiv:", "Abstract:"))
    first = parse_arxiv_rss(load(RSS_NEW))[0]
    assert first.abstract.startswith("Local learning trains each layer with its own auxiliary loss")


def test_rss_creator_string_becomes_ordered_authors() -> None:
    papers = parse_arxiv_rss(load(RSS_NEW))
    assert papers[0].authors == ("Fabien Polly",)
    assert papers[2].authors == ("Pritam Dey", "Zhengwu Zhang", "David B. Dunson")


def test_rss_categories_links_and_listing_date() -> None:
    cross = parse_arxiv_rss(load(RSS_NEW))[2]
    assert cross.categories == ("stat.ME", "stat.AP", "stat.ML")
    assert cross.listed_on == date(2026, 9, 24)
    assert cross.url == "https://arxiv.org/abs/2205.06398"
    assert cross.pdf_url == "https://arxiv.org/pdf/2205.06398"


def test_rss_abstract_keeps_less_than_signs() -> None:
    content = rss_new_with("(48.9 +/- 0.5 vs 46.6 +/- 0.3)", "($p&lt;0.05$ and a&lt;b, c&gt;d)")
    first = parse_arxiv_rss(content)[0]
    assert "($p<0.05$ and a<b, c>d)" in first.abstract


def test_rss_without_items_gives_no_papers() -> None:
    empty = re.sub(rb"<item>.*</item>", b"", load(RSS_NEW), flags=re.DOTALL)
    assert parse_arxiv_rss(empty) == []


@pytest.mark.parametrize(
    ("creators", "authors"),
    [
        ("A. Author, B. Author, and C. Author", ("A. Author", "B. Author", "C. Author")),
        ("A. Author, B. Author and C. Author", ("A. Author", "B. Author", "C. Author")),
        ("Ann Anders and Bob Brand", ("Ann Anders", "Bob Brand")),
        ("Alexander Andrews", ("Alexander Andrews",)),
        ("John Smith, Jr., Jane Doe", ("John Smith, Jr.", "Jane Doe")),
        (" A. Author ,, B. Author, ", ("A. Author", "B. Author")),
        ("", ()),
        (None, ()),
    ],
)
def test_split_authors_handles_and_forms_without_empty_names(creators: str | None, authors: tuple) -> None:
    assert split_authors(creators) == authors


def test_rdf_titles_lose_the_arxiv_suffix_and_give_announce_types() -> None:
    papers = parse_arxiv_rss(load(RSS_RDF))
    assert [(paper.title, paper.announce_type) for paper in papers] == [
        ("Measurement of Transverse Single Spin Asymmetries", "new"),
        ("Recent Top quark results from the Tevatron", "cross"),
        ("New Perspective on Hybrid Mesons", "replace"),
    ]
    assert [(paper.id, paper.version, paper.categories) for paper in papers] == [
        ("1805.08875", 1, ("hep-ex",)),
        ("1805.09166", 1, ("hep-ex",)),
        ("1805.06430", 2, ("nucl-th",)),
    ]


def test_rdf_authors_are_the_link_texts_in_order() -> None:
    papers = parse_arxiv_rss(load(RSS_RDF))
    assert papers[0].authors == ("Christopher Dilks",)
    assert papers[2].authors == (
        "Shu-Sheng Xu",
        "Zhu-Fang Cui",
        "Lei Chang",
        "Joannis Papavassiliou",
        "Craig D. Roberts",
        "Hong-Shi Zong",
    )


def test_rdf_abstract_is_plain_text() -> None:
    first = parse_arxiv_rss(load(RSS_RDF))[0]
    assert "<p>" not in first.abstract and "&lt;" not in first.abstract
    assert "range of $2.6<\\eta<4$. Within" in first.abstract
    assert first.listed_on == date(2018, 5, 23)


def test_arxiv_rss_refuses_a_feed_without_arxiv_papers() -> None:
    blog = load(RSS_NEW).replace(b"oai:arXiv.org:", b"tag:blog:").replace(b"arxiv.org/abs", b"blog.example")
    with pytest.raises(ParseError, match="name no arXiv paper"):
        parse_arxiv_rss(blog)


# --- arXiv API -----------------------------------------------------------------------------------------


def test_api_entry_fields_in_the_2016_format() -> None:
    (paper,) = parse_arxiv_api(load(API_2016_ID))
    assert (paper.id, paper.version) == ("1111.2011", 2)
    assert paper.title == (
        "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    )
    assert paper.authors == ("James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic")
    assert paper.categories == ("cond-mat.str-el", "cond-mat.stat-mech")
    assert paper.published == date(2011, 11, 8)
    assert paper.pdf_url == "http://arxiv.org/pdf/1111.2011v2"
    assert paper.abstract.startswith("Theoretical description of anisotropic systems, such as layered")
    assert paper.listed_on is None


def test_api_entry_fields_in_the_2026_format() -> None:
    first = parse_arxiv_api(load(API_2026_XML))[0]
    assert (first.id, first.version) == ("2202.12139", 1)
    assert first.authors == ("Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker")
    assert first.categories == ("cs.SE", "cs.LG")
    assert first.published == date(2022, 2, 24)
    assert first.pdf_url == "https://arxiv.org/pdf/2202.12139v1"


def test_api_names_are_kept_as_served_even_when_garbled() -> None:
    second = parse_arxiv_api(load(API_2026_XML))[1]
    assert second.authors[0] == "Aurora RamÃ\xadrez"


def test_api_old_style_ids_keep_their_archive() -> None:
    second = parse_arxiv_api(load(API_2016_SEARCH))[1]
    assert (second.id, second.version) == ("cond-mat/0412498", 1)
    assert second.url == "https://arxiv.org/abs/cond-mat/0412498"


def test_api_categories_put_the_primary_first_once() -> None:
    primary = b'<arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term='
    content = load(API_2016_ID).replace(primary + b'"cond-mat.str-el"', primary + b'"cond-mat.stat-mech"')
    (paper,) = parse_arxiv_api(content)
    assert paper.categories == ("cond-mat.stat-mech", "cond-mat.str-el")


def test_api_recorded_response_reads_like_its_body() -> None:
    assert parse_arxiv_api(load(API_2026_RECORDED)) == parse_arxiv_api(load(API_2026_XML))
    (paper,) = parse_arxiv_api(load(API_2026_ID_RECORDED))
    assert paper.id == "1707.08567"
    assert len(paper.authors) == 34


def test_api_error_entry_raises_parse_error_with_arxiv_text() -> None:
    entry = re.search(rb"<entry>.*?</entry>", load(API_2026_XML), flags=re.DOTALL).group(0)
    error = (
        b"<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.1234x</id><title>Error</title>"
        b"<summary>incorrect id format for 1234.1234x</summary></entry>"
    )
    with pytest.raises(ParseError, match=re.escape("incorrect id format for 1234.1234x")):
        parse_arxiv_api(load(API_2026_XML).replace(entry, error, 1))


@pytest.mark.parametrize("content", [b'{"url": "https://export.arxiv.org/api/query"}', b'{"body": 3}', b"{"])
def test_api_refuses_a_recorded_response_without_a_body(content: bytes) -> None:
    with pytest.raises(ParseError, match="Expected arXiv API Atom XML or a recorded response"):
        parse_arxiv_api(content)


# --- any feed ------------------------------------------------------------------------------------------


def test_feed_gives_arxiv_entries_their_canonical_id() -> None:
    papers = parse_feed(load(RSS_NEW))
    assert [(paper.id, paper.version) for paper in papers] == [
        (paper.id, paper.version) for paper in parse_arxiv_rss(load(RSS_NEW))
    ]
    assert all(paper.kind == "feed" and paper.url.startswith("https://arxiv.org/abs/") for paper in papers)


def test_feed_entry_without_arxiv_id_is_known_by_its_link() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Lab blog</title><id>tag:lab.example,2026:blog</id>
<entry><title type="html">A &lt;em&gt;sparse&lt;/em&gt;
  attention trick</title><id>tag:lab.example,2026:1</id>
<link href="https://lab.example/posts/sparse"/><updated>2026-09-20T10:00:00+02:00</updated>
<summary type="html">&lt;p&gt;We make attention
sparse.&lt;/p&gt;&lt;p&gt;It is fast &amp;amp; small.&lt;/p&gt;</summary>
<author><name>Ada Lovelace</name></author><author><name>Alan Turing</name></author></entry>
<entry><title>No link here</title><id>tag:lab.example,2026:2</id></entry>
</feed>"""
    assert detect_kind(atom) == "feed"
    first, second = parse_feed(atom)
    assert (first.id, first.url, first.version, first.pdf_url) == (
        "https://lab.example/posts/sparse",
        "https://lab.example/posts/sparse",
        None,
        None,
    )
    assert first.title == "A sparse attention trick"
    assert first.abstract == "We make attention sparse. It is fast & small."
    assert first.authors == ("Ada Lovelace", "Alan Turing")
    assert first.published == date(2026, 9, 20)
    assert second.id == "tag:lab.example,2026:2"


# --- unsafe and malformed documents --------------------------------------------------------------------


@pytest.mark.parametrize("parse", XML_PARSERS)
@pytest.mark.parametrize(
    "variant",
    [
        BILLION_LAUGHS,
        BILLION_LAUGHS.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="bogus-enc"?>'),
        b"junk before the prolog\n" + BILLION_LAUGHS,
    ],
    ids=["plain", "unknown-encoding", "junk-before-prolog"],
)
def test_billion_laughs_feed_is_refused_without_expanding(parse, variant: bytes) -> None:
    unknown_kind = parse is parse_document and variant.startswith(b"junk")
    expected = (ParseError, "Cannot tell") if unknown_kind else (UnsafeDocument, "declares XML entities")
    tracemalloc.start()
    try:
        with pytest.raises(expected[0], match=expected[1]) as excinfo:
            parse(variant)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert "lollol" not in str(excinfo.value)


@pytest.mark.parametrize("parse", XML_PARSERS)
def test_external_entity_feed_is_refused_and_the_file_never_read(parse) -> None:
    with pytest.raises(UnsafeDocument, match="declares XML entities") as excinfo:
        parse(EXTERNAL_ENTITY)
    assert "root:" not in str(excinfo.value)


def test_external_dtd_is_never_fetched() -> None:
    content = rss_new_with("<rss ", '<!DOCTYPE rss SYSTEM "file:///etc/passwd">\n<rss ')
    ensure_safe_xml(content)
    assert "root:" not in as_json_lines(parse_arxiv_rss(content))


def test_content_is_never_read_as_a_path_or_url() -> None:
    for content in (b"/etc/passwd", b"file:///etc/passwd", b"https://arxiv.org/rss/cs.LG"):
        with pytest.raises(ParseError) as excinfo:
            parse_feed(content)
        assert "root:" not in str(excinfo.value)


def test_syntax_errors_are_left_to_the_tolerant_parser() -> None:
    ensure_safe_xml(b"<rss><channel><title>unclosed")
    truncated = load(RSS_NEW)[:-40]
    assert len(parse_arxiv_rss(truncated)) == 4


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("hf-daily", b"<html><body>Too many requests</body></html>"),
        ("hf-daily", b'{"dailyPapers": []}'),
        ("hf-page", b"[]"),
        ("arxiv-rss", b"not xml at all"),
        ("arxiv-rss", b'{"items": []}'),
        ("arxiv-api", b"<html><head><title>503</title></head></html>"),
        ("feed", b""),
        ("feed", b"\x00\xff\xfe garbage"),
    ],
)
def test_malformed_input_raises_parse_error_saying_what_was_expected(kind: str, content: bytes) -> None:
    with pytest.raises(ParseError, match=r"Expected .*, found "):
        parse_document(content, kind)


def test_unknown_kind_names_the_valid_kinds() -> None:
    with pytest.raises(ParseError, match="Unknown kind 'rdf'; use one of: auto, hf-daily, hf-page"):
        parse_document(load(RSS_RDF), "rdf")


@pytest.mark.parametrize(
    "content", [b"", b"hello", b'{"error": "x"}', b"<html><body>Hi</body></html>", b"<a/>"]
)
def test_undetectable_document_asks_for_kind(content: bytes) -> None:
    with pytest.raises(ParseError, match="pass --kind") as excinfo:
        detect_kind(content)
    assert "arxiv-rss" in str(excinfo.value)


# --- properties: papers or ParseError, nothing else ----------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KIND_OR_AUTO = st.sampled_from(["auto", *KINDS])
SMALL_FIXTURES = [HF_2024_05, HF_PAGE, RSS_NEW, RSS_RDF, API_2016_ID, API_2026_ID_RECORDED]


def papers_or_parse_error(content: bytes, kind: str) -> None:
    try:
        papers = parse_document(content, kind)
    except ParseError:
        return
    assert isinstance(papers, list)
    assert all(isinstance(paper, ParsedPaper) and paper.id and paper.title for paper in papers)


@PROPERTY_SETTINGS
@given(content=st.binary(max_size=600), kind=KIND_OR_AUTO)
def test_any_bytes_give_papers_or_parse_error(content: bytes, kind: str) -> None:
    papers_or_parse_error(content, kind)


@PROPERTY_SETTINGS
@given(text=st.text(max_size=400), kind=KIND_OR_AUTO)
def test_any_text_gives_papers_or_parse_error(text: str, kind: str) -> None:
    papers_or_parse_error(text.encode("utf-8"), kind)


@PROPERTY_SETTINGS
@given(data=st.data(), name=st.sampled_from(SMALL_FIXTURES), kind=KIND_OR_AUTO)
def test_mutated_fixture_gives_papers_or_parse_error(data: st.DataObject, name: str, kind: str) -> None:
    content = bytearray(load(name))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        start = data.draw(st.integers(0, len(content)), label="start")
        end = data.draw(st.integers(start, min(len(content), start + 200)), label="end")
        content[start:end] = data.draw(st.binary(max_size=20), label="replacement")
    papers_or_parse_error(bytes(content), kind)


def test_a_namespace_feedparser_cannot_split_gives_a_parse_error() -> None:
    content = bytearray(load("arxiv_api_atom_2016_id_list_1111.2011v2.xml"))
    content[718:718] = b"\xa0"  # found by the test above: it breaks a namespace URI in two for expat
    papers_or_parse_error(bytes(content), "auto")


def test_a_page_declaring_an_encoding_lxml_refuses_is_read_as_utf8() -> None:
    content = bytearray(load(HF_PAGE))
    content[56:56] = b"\x00"  # found by the test above: a NUL inside <meta charset="utf-8">
    assert len(parse_document(bytes(content), "hf-page")) == len(parse_document(load(HF_PAGE), "hf-page"))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@PROPERTY_SETTINGS
@given(data=st.data(), kind=st.sampled_from(["hf-daily", "hf-page"]))
def test_hf_items_with_any_field_values_give_papers_or_parse_error(data: st.DataObject, kind: str) -> None:
    items = json.loads(load(HF_2025_06))[:3]
    for _ in range(data.draw(st.integers(1, 5), label="changes")):
        index = data.draw(st.integers(0, len(items) - 1), label="item")
        target = data.draw(st.sampled_from(["item", "paper"]), label="level")
        holder = items[index]
        if target == "paper" and isinstance(holder, dict):
            holder = holder.get("paper")
        if isinstance(holder, dict) and holder:
            key = data.draw(st.sampled_from(sorted(holder)), label="key")
            holder[key] = data.draw(JSON_VALUES, label="value")
        else:
            items[index] = data.draw(JSON_VALUES, label="item value")
    if kind == "hf-daily":
        content = json.dumps(items).encode()
    else:
        props = json.dumps({"date": "2025-06-25T00:00:00.000Z", "dailyPapers": items})
        escaped = props.replace("&", "&amp;").replace('"', "&quot;")
        content = f'<html><div data-target="DailyPapers" data-props="{escaped}"></div></html>'.encode()
    papers_or_parse_error(content, kind)
