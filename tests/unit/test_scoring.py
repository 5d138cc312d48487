"""Scoring on the captured papers: what ranks first, what is left out, and why."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.bench.data import fixture_papers, interest_vocabulary, synthetic_interests
from digest.bench.score import naive_rank, paper_values
from digest.compose.digest import PaperView, items, select
from digest.parse import parse_document
from digest.render import snippet
from digest.score import text
from digest.score.explain import explain
from digest.score.index import Doc, Weights, build_index, corpus_from, trending_score
from digest.score.interests import parse_interests
from digest.score.rank import Profile, ProfileSet, rank
from tests.support.data import FIXTURES


def fixture_docs() -> list[Doc]:
    papers = {}
    for path in sorted(FIXTURES.iterdir()):
        if path.suffix in {".json", ".xml", ".html"}:
            for paper in parse_document(path.read_bytes()):
                papers.setdefault(paper.id, paper)
    return [
        Doc(p.id, p.title, p.abstract, p.authors, p.categories, p.upvotes, p.comments, p.github_stars)
        for p in papers.values()
    ]


DOCS = fixture_docs()
CORPUS = corpus_from((doc.title, doc.abstract) for doc in DOCS)


def ranked(interests: str, docs: list[Doc] = DOCS, **options) -> list[Doc]:
    picks, index, _ = ranked_with_index(interests, docs, **options)
    return [index.docs[pick.doc] for pick in picks]


def ranked_with_index(interests: str, docs: list[Doc] = DOCS, weights=None, **options):
    profile = Profile(parse_interests(interests), **{"limit": 100, **options})
    profiles = ProfileSet.build([profile])
    index = build_index(docs, CORPUS, weights or Weights(), profiles.atoms)
    return rank(index, profiles)[0], index, profile


def has_phrase(doc: Doc, phrase: str) -> bool:
    wanted = text.analyze(phrase)
    stems = [*text.analyze(doc.title), "|", *text.analyze(doc.abstract)]
    return any(stems[i : i + len(wanted)] == wanted for i in range(len(stems)))


def has_words(doc: Doc, *words: str) -> bool:
    stems = set(text.analyze(doc.title + " " + doc.abstract))
    return all(text.analyze(word)[0] in stems for word in words)


def test_a_phrase_matches_consecutive_words_only() -> None:
    adjacent = {doc.id for doc in DOCS if has_phrase(doc, "video generation")}
    scattered = {doc.id for doc in DOCS if has_words(doc, "video", "generation")} - adjacent
    assert adjacent and scattered
    assert {doc.id for doc in ranked('"video generation"')} == adjacent
    assert {doc.id for doc in ranked("video generation")} == adjacent | scattered


def test_every_word_of_a_line_must_match() -> None:
    both = {doc.id for doc in DOCS if has_words(doc, "diffusion", "video")}
    assert {doc.id for doc in ranked("diffusion video")} == both
    assert both < {doc.id for doc in ranked("diffusion\nvideo")}


def test_excluded_words_remove_papers() -> None:
    with_video = {doc.id for doc in ranked("diffusion") if has_words(doc, "video")}
    assert with_video
    kept = {doc.id for doc in ranked("diffusion -video")}
    assert kept and not kept & with_video


def test_stemming_matches_plural_and_singular() -> None:
    singular_only = [doc for doc in DOCS if has_words(doc, "transformer")]
    assert singular_only
    assert {doc.id for doc in ranked("transformers")} == {doc.id for doc in ranked("transformer")}


def words_of(doc: Doc) -> list[str]:
    return text.tokens(doc.title) + text.tokens(doc.abstract)


def test_an_acronym_finds_the_papers_that_spell_it_out_and_names_the_expansion() -> None:
    spelled_only = {
        doc.id for doc in DOCS if has_phrase(doc, "reinforcement learning") and "rl" not in words_of(doc)
    }
    assert spelled_only
    picks, index, profile = ranked_with_index("RL")
    found = {index.docs[pick.doc].id: pick for pick in picks}
    assert spelled_only <= found.keys()
    why = explain(index, found[min(spelled_only)], profile)
    assert why.matched == ["RL = reinforcement learning"]
    assert {part.lower() for part, hit in why.snippet.parts if hit} == {"reinforcement learning"}


def test_a_spelled_out_line_finds_the_papers_that_only_use_the_acronym() -> None:
    acronym_only = {
        doc.id for doc in DOCS if "rl" in words_of(doc) and not has_phrase(doc, "reinforcement learning")
    }
    assert acronym_only
    picks, index, profile = ranked_with_index('"reinforcement learning"')
    found = {index.docs[pick.doc].id: pick for pick in picks}
    assert acronym_only <= found.keys()
    assert explain(index, found[min(acronym_only)], profile).matched == ["reinforcement learning = RL"]


@pytest.mark.parametrize(
    ("own", "variant"), [("RL", "reinforcement learning"), ("LLM", "large language model")]
)
def test_a_generated_variant_never_outscores_the_readers_own_words(own: str, variant: str) -> None:
    base = next(doc for doc in DOCS if doc.abstract and not has_words(doc, *own.split(), *variant.split()))
    said = replace(base, id="own", abstract=f"{base.abstract} We study {own}.")
    other = replace(base, id="variant", abstract=f"{base.abstract} We study {variant}.")
    both = replace(base, id="both", abstract=f"{base.abstract} We study {variant} ({own}).")
    for line, first in ((own, "own"), (f'"{variant}"', "variant")):
        picks, index, _ = ranked_with_index(line, [said, other, both], weights=Weights(trending=0.0))
        order = [index.docs[pick.doc].id for pick in picks]
        assert order[0] == "both" and order[1] == first and len(order) == 3


def test_plural_and_singular_acronyms_find_the_same_papers() -> None:
    plural_only = [doc for doc in DOCS if "llms" in words_of(doc) and "llm" not in words_of(doc)]
    assert plural_only
    assert (
        {doc.id for doc in ranked("LLM")}
        == {doc.id for doc in ranked("llms")}
        >= {doc.id for doc in plural_only}
    )


def test_a_paper_about_a_phrase_outranks_one_that_uses_it_in_passing() -> None:
    key = text.analyze("language model")

    def count(stems: list[str], wanted: list[str]) -> int:
        return sum(stems[i : i + len(wanted)] == wanted for i in range(len(stems)))

    once = [
        doc
        for doc in DOCS
        if count(text.analyze(doc.abstract), key) == 1 and count(text.analyze(doc.title), key) == 0
    ]
    about = [doc for doc in once if all(count(text.analyze(doc.abstract), [word]) >= 3 for word in key)]
    passing = [doc for doc in once if all(count(text.analyze(doc.abstract), [word]) == 1 for word in key)]
    pairs = [(a, p) for a in about for p in passing if len(p.abstract) < len(a.abstract)]
    assert pairs
    picks, index, _ = ranked_with_index('"language model"')
    relevance = {index.docs[pick.doc].id: pick.relevance for pick in picks}
    for subject, mention in pairs:
        assert relevance[subject.id] > relevance[mention.id]


def test_author_filter_keeps_only_that_authors_papers() -> None:
    picked = ranked('author:"gao huang"')
    assert picked and all(any("Gao Huang" == name for name in doc.authors) for doc in picked)
    assert ranked('author:"GAO HUANG"') == picked


def test_category_filter_keeps_only_that_category() -> None:
    picked = ranked("testing cat:cs.SE")
    assert picked and all("cs.SE" in doc.categories for doc in picked)
    everything = ranked("testing")
    assert len(everything) > len(picked)
    assert {doc.id for doc in ranked("testing cat:cs")} >= {doc.id for doc in picked}


def test_a_title_match_outranks_an_abstract_only_match() -> None:
    base = next(doc for doc in DOCS if doc.abstract and "diffusion" not in doc.abstract.lower())
    in_title = replace(base, id="title", title="Diffusion for " + base.title)
    in_abstract = replace(base, id="abstract", abstract=base.abstract + " We use diffusion.")
    picked = ranked("diffusion", [in_abstract, in_title], weights=Weights(trending=0.0))
    assert [doc.id for doc in picked] == ["title", "abstract"]


def test_trending_breaks_near_ties() -> None:
    base = next(doc for doc in DOCS if has_words(doc, "agents"))
    quiet = replace(base, id="quiet", upvotes=1)
    popular = replace(base, id="popular", upvotes=80, comments=4)
    assert [doc.id for doc in ranked("agents", [quiet, popular])] == ["popular", "quiet"]


def test_a_place_high_on_the_trending_list_lifts_a_paper_as_upvotes_do() -> None:
    base = next(doc for doc in DOCS if has_words(doc, "agents"))
    unranked = replace(base, id="a-unranked", upvotes=3)
    first = replace(base, id="b-first", upvotes=3, trending_rank=1)
    far_down = replace(base, id="c-far-down", upvotes=3, trending_rank=40)
    assert [doc.id for doc in ranked("agents", [unranked, far_down, first])] == [
        "b-first",
        "c-far-down",
        "a-unranked",
    ]
    assert trending_score(first, Weights()) - trending_score(unranked, Weights()) == pytest.approx(2.0)
    assert trending_score(first, Weights(rank=0.0)) == trending_score(unranked, Weights())


def test_exact_ties_break_by_paper_id() -> None:
    base = next(doc for doc in DOCS if has_words(doc, "agents"))
    twins = [replace(base, id=name) for name in ("b", "c", "a")]
    assert [doc.id for doc in ranked("agents", twins)] == ["a", "b", "c"]


def test_minimum_score_and_limit_are_respected() -> None:
    picks, _, _ = ranked_with_index("model", limit=3)
    assert len(picks) == 3 and picks[0].score >= picks[1].score >= picks[2].score
    cut = picks[1].score
    kept, _, _ = ranked_with_index("model", min_score=cut)
    assert kept and all(pick.score >= cut for pick in kept)


def test_no_interests_means_the_most_trending_papers() -> None:
    picks, index, _ = ranked_with_index("", limit=5)
    most_trending = sorted((trending_score(doc, Weights()) for doc in DOCS), reverse=True)[:5]
    assert [pick.trending for pick in picks] == pytest.approx(most_trending)
    assert index.docs[picks[0].doc].upvotes
    assert all(pick.line is None and pick.relevance == 0 for pick in picks)


def test_the_explanation_names_the_line_and_marks_exactly_the_matched_words() -> None:
    picks, index, profile = ranked_with_index('cooking\n"video generation" -audio')
    assert picks
    why = explain(index, picks[0], profile)
    assert why.line == '"video generation" -audio'
    assert why.matched == ["video generation"]
    marked = [part.lower() for part, hit in why.snippet.parts if hit]
    assert marked and set(marked) == {"video generation"}
    assert snippet.html(why.snippet).lower().count("<mark>video generation</mark>") == len(marked)
    assert snippet.text(why.snippet).lower().count("*video generation*") == len(marked)


def test_a_term_written_twice_in_a_line_is_named_once() -> None:
    picks, index, profile = ranked_with_index("video Video^2")
    why = explain(index, picks[0], profile)
    assert why.matched == ["video"] and any(hit for _, hit in why.snippet.parts)


def test_the_snippet_is_escaped_before_it_is_marked() -> None:
    base = next(doc for doc in DOCS if has_words(doc, "agents"))
    hostile = replace(base, id="x", abstract='<script>alert("agents")</script> agents & <b>co</b>')
    picks, index, profile = ranked_with_index("agents", [hostile])
    html = snippet.html(explain(index, picks[0], profile).snippet)
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "<mark>agents</mark>" in html


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_the_compiled_ranking_equals_the_straightforward_loop(seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = interest_vocabulary(fixture_papers())
    profiles = [
        Profile(parse_interests(synthetic_interests(vocabulary, rng)), limit=rng.randint(1, 12))
        for _ in range(30)
    ]
    profile_set = ProfileSet.build(profiles)
    index = build_index(DOCS, CORPUS, Weights(), profile_set.atoms)
    ranking = rank(index, profile_set)
    values = paper_values(index)
    for number, profile in enumerate(profiles):
        expected = naive_rank(index, profile, values)
        got = [(-pick.score, index.docs[pick.doc].id) for pick in ranking[number]]
        assert [doc for _, doc in got] == [doc for _, doc in expected]
        assert [score for score, _ in got] == pytest.approx([score for score, _ in expected])


def test_explanations_remembered_across_subscribers_match_those_made_afresh() -> None:
    """Subscribers hold the same lines in other orders, or one line each: one subscriber's
    remembered explanation of a (paper, line) must be what another's would be made afresh."""
    lines = ["diffusion", '"language model"', "video generation", "agents -robot", "reinforcement learning"]
    profiles = [
        Profile(parse_interests("\n".join(lines[start:] + lines[:start])), limit=8)
        for start in range(len(lines))
    ]
    profiles.append(Profile(parse_interests("# mine\n\n" + "\n".join(reversed(lines))), limit=8))
    profiles += [Profile(parse_interests(line), limit=8) for line in lines]  # all on line 0
    profile_set = ProfileSet.build(profiles)
    index = build_index(DOCS, CORPUS, Weights(), profile_set.atoms)
    ranking = rank(index, profile_set)
    views = {doc.id: PaperView(doc.id, doc.title, f"https://arxiv.org/abs/{doc.id}") for doc in DOCS}
    memo: dict = {}
    for number, profile in enumerate(profiles):
        chosen = select(index, ranking[number], profile, set(), 3)
        for picks in (chosen.main, chosen.trending):
            assert items(index, picks, profile, views, memo) == items(index, picks, profile, views)
    assert len(memo) > 8  # explanations were remembered, and later subscribers read them
