"""Acronyms learned from the papers' own definitions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.score.acronyms import Counts, definitions


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("we train agents with reinforcement learning (RL) on games", [("RL", "reinforcement learning")]),
        ("Large Language Models (LLMs) are used", [("LLM", "Large Language Models")]),
        ("within a single Vision Transformer (ViT).", [("ViT", "Vision Transformer")]),
        ("Tora has a Trajectory Extractor~(TE) and more", [("TE", "Trajectory Extractor")]),
        ("a modality-aware mixture-of-experts (MoE) design", [("MoE", "mixture-of-experts")]),
        ("as shown before (see Fig. 2) and (ours)", []),
        ("results (in 2024) and models (GPT)", []),
        ("the RL baseline (RL) again", []),
    ],
)
def test_a_definition_in_parentheses_gives_the_acronym_and_its_long_form(
    source: str, found: list[tuple[str, str]]
) -> None:
    assert list(definitions(source)) == found


def test_an_acronym_is_learned_when_most_papers_that_define_it_agree() -> None:
    counts = Counts()
    for source in [
        "automatic speech recognition (ASR) systems",
        "benchmarks of Automatic Speech Recognition (ASR)",
        "we report the attack success rate (ASR)",
        "a single paper defines Selective Token Editing (STE)",
    ]:
        counts.add(source)
    expansions = counts.expansions()
    assert expansions[("asr",)].long_text == "automatic speech recognition"
    assert expansions[("automat", "speech", "recognit")] is expansions[("asr",)]
    assert ("attack", "success", "rate") not in expansions
    assert ("ste",) not in expansions


def test_an_acronym_defined_two_ways_as_often_is_not_learned() -> None:
    counts = Counts()
    for source in [
        "text-to-speech (TTS)",
        "text to speech (TTS)",
        "tree tensor states (TTS)",
        "tiny tree search (TTS)",
    ]:
        counts.add(source)
    assert ("tts",) not in counts.expansions()


@given(st.text(alphabet=st.sampled_from([*"aAbBcCdDrRlL (s)~-.", "\u00e9"]), max_size=80))
def test_every_long_form_found_holds_the_acronyms_letters_in_order(source: str) -> None:
    for short, long in definitions(source):
        assert long.lower()[0] == short.lower()[0]
        letters = iter(long.lower())
        assert all(char in letters for char in short.lower() if char.isalnum())
