"""Outside text made safe for a terminal: no escape sequence or control character survives, and
plain text passes unchanged."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from digest.cli.common import json_text, terminal_text

FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
PIECES = st.sampled_from(
    ["\x1b[2J", "\x1b]0;title\x07", "\x1b]8;;http://x\x1b\\", "\x1bc", "\x9b31m", "\r", "\x08", "\u202e"]
)
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=12).map("".join)


@given(TEXT, st.booleans())
def test_no_control_character_reaches_the_terminal(text: str, lines: bool) -> None:
    shown = terminal_text(text, lines=lines)
    assert FORBIDDEN.search(shown) is None
    assert lines or "\n" not in shown


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs"))))
def test_plain_text_is_shown_as_it_is(text: str) -> None:
    assert terminal_text(text, lines=True) == text


def test_a_fake_prompt_loses_its_escape_sequences_but_keeps_its_words() -> None:
    assert terminal_text("Title\x1b[2J\x1b[H\r$ sudo rm -rf ~") == "Title$ sudo rm -rf ~"


@given(TEXT)
def test_json_for_the_terminal_is_tame_and_decodes_to_the_same_text(text: str) -> None:
    encoded = json_text({"title": text})
    assert FORBIDDEN.search(encoded) is None
    assert json.loads(encoded) == {"title": text}


def test_an_unterminated_sequence_does_not_swallow_the_lines_after_it() -> None:
    text = "Paper 1: \u00e2\x80\x9dquoted\nPaper 2\nPaper 3"
    assert terminal_text(text, lines=True) == "Paper 1: \u00e2quoted\nPaper 2\nPaper 3"
    assert terminal_text("T \x1bP x\nnext", lines=True).endswith("x\nnext")
