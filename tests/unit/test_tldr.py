"""The one line under a paper's title."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.compose.tldr import TLDR_CHARS, tldr
from digest.score.latex import readable


def test_the_sources_own_summary_comes_first() -> None:
    assert (
        tldr("  A model that  edits video.\n", "We present a model. It edits.") == "A model that edits video."
    )


@pytest.mark.parametrize(
    ("abstract", "line"),
    [
        ("We present a model. It edits video.", "We present a model."),
        ("Models (e.g. GPT-4) fail, as shown in Fig. 2 by Smith et al. Here we fix it.", None),
        ("Is attention all you need? We show it is not.", "Is attention all you need?"),
        ('It works "in the wild." Then it fails.', 'It works "in the wild."'),
        (
            "Accuracy rises to 93.5% on the test set. We also release code.",
            "Accuracy rises to 93.5% on the test set.",
        ),
        ("The cost is $O(n^2)$. We lower it.", "The cost is O(n^2)."),
        ("no sentence ends here", "no sentence ends here"),
        ("", ""),
    ],
)
def test_else_the_abstracts_first_sentence(abstract: str, line: str | None) -> None:
    expected = (
        "Models (e.g. GPT-4) fail, as shown in Fig. 2 by Smith et al. Here we fix it."
        if line is None
        else line
    )
    assert tldr(None, abstract) == expected


def test_a_long_first_sentence_is_cut_at_a_word() -> None:
    line = tldr("", "word " * 200 + ".")
    assert len(line) <= TLDR_CHARS and line.endswith("word…")


@given(st.text(alphabet=st.sampled_from([*"aB. !?1$\\()\"'", "\n", "\u00e9"]), max_size=400))
def test_the_line_is_the_start_of_the_abstract_and_fits(abstract: str) -> None:
    line = tldr(None, abstract)
    whole = " ".join(readable(abstract).split())
    assert len(line) <= TLDR_CHARS
    assert whole.startswith(line.removesuffix("…")) and bool(line) == bool(whole)
