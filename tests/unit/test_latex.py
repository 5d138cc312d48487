"""Titles' and abstracts' TeX shown as readers read it, and everything else left as written."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.score.latex import readable


@pytest.mark.parametrize(
    ("tex", "shown"),
    [
        (r"a 54.6\% speedup", "a 54.6% speedup"),
        (r"a loss $\mathcal{L}$ to minimise", "a loss ℒ to minimise"),
        (r"at $\sqrt{s_{NN}}=200$ GeV, $\pi^{0}$ and $2.6<\eta<4$", "at √(s_NN)=200 GeV, π^0 and 2.6<η<4"),
        (r"in $O(n^2)$ time, with \(\alpha\beta\) and $n=5$", "in O(n^2) time, with αβ and n=5"),
        (r"we do \emph{not} use \textbf{R\&D}", "we do not use R&D"),
        (r"``quoted''", "\u201cquoted\u201d"),
        (r"costs \$5", "costs $5"),
        (r"sorting in $O(n \log n)$ time", "sorting in O(n log n) time"),
        (r"with $a \cdot b$ and $10 \times 10$", "with a · b and 10 × 10"),
    ],
)
def test_tex_is_shown_as_text(tex: str, shown: str) -> None:
    assert readable(tex) == shown


@pytest.mark.parametrize(
    "plain",
    [
        "at 100% load, 50% of the time",  # a bare % is not a comment
        "costs $5 and $10 a month",  # prices, not math
        "between $5-$10",
        "raised $5M-$10M, then $2B/$3B",
        "an unclosed $x and a \\cite{ref}",
        "C++ and C# -- and snake_case",
    ],
)
def test_what_is_not_surely_tex_is_left_as_written(plain: str) -> None:
    assert readable(plain) == plain


TEXT_AND_TEX = st.lists(
    st.sampled_from(
        [
            "word",
            " ",
            "$",
            "\\",
            "{",
            "}",
            "^",
            "_",
            "%",
            "\\%",
            "\\$",
            "\\(",
            "\\)",
            "\\frac",
            "\\mathcal{",
            "\\begin{array}",
            "&",
            "\\emph{",
            "``",
            "''",
            "\\verb|",
            "#1",
            "é",
            "\n",
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(TEXT_AND_TEX | st.text(max_size=200))
def test_any_text_is_made_readable_without_losing_its_plain_words(text: str) -> None:
    shown = readable(text)
    if not re.search(r"[\\$`]", text):
        assert shown == text
    outside = re.sub(
        r"\$(?!\s)[^$]+?(?<!\s)\$|\\\(.+?\\\)|\\[a-z]+\{?|[{}]",
        " ",
        text.replace("\\$", "#"),
        flags=re.DOTALL,
    )
    for word in re.findall(r"[A-Za-z]{2,}", outside):
        assert word in shown
