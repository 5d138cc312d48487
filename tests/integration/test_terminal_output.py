"""A paper's text cannot drive the operator's terminal: parse, papers list/show, score and preview
print outside text without escape sequences or control characters (the parsers drop control
characters; direction overrides are kept in the store and in JSON, escaped, but never printed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.cli import digest

# Clears the screen, homes the cursor, sets the window title, rings, overrides the text direction,
# and prints a fake prompt after a carriage return.
HOSTILE_TITLE = "Diffusion\x1b[2J\x1b[H\x1b]0;owned\x07 models\r$ sudo rm -rf ~\u202e\x9b31m done"
SHOWN_WORDS = ("Diffusion", "models", "$ sudo rm -rf ~", "done")
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def feed(path: Path) -> Path:
    title = HOSTILE_TITLE.replace("&", "&amp;").replace("<", "&lt;")
    escaped = "".join(c if c >= " " or c in "\t\n\r" else f"&#{ord(c)};" for c in title)
    path.write_text(
        "<?xml version='1.1' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        f"<item><title>{escaped}</title><link>https://arxiv.org/abs/2611.00001</link>"
        f"<description>An abstract about diffusion\x1b[31m in red</description>"
        "<pubDate>Mon, 23 Nov 2026 00:00:00 GMT</pubDate></item></channel></rss>",
        encoding="utf-8",
    )
    return path


def assert_tame(output: str) -> None:
    assert FORBIDDEN.search(output) is None, repr(output)
    for word in SHOWN_WORDS:
        assert word in output, repr(output)


@pytest.fixture
def stored(migrated_url: str, tmp_path: Path) -> str:
    path = feed(tmp_path / "feed.xml")
    assert (
        digest("sources", "add", "hostile", "--kind", "feed", "--url", str(path), url=migrated_url).exit_code
        == 0
    )
    result = digest("scrape", "--source", "hostile", url=migrated_url)
    assert result.exit_code == 0, result.output
    return migrated_url


def test_parse_prints_a_title_without_its_escape_sequences(tmp_path: Path) -> None:
    result = digest("parse", str(feed(tmp_path / "feed.xml")), "--kind", "feed")
    assert result.exit_code == 0, result.output
    assert_tame(result.output)


def test_parse_json_has_no_control_characters_and_escapes_the_direction_marks(tmp_path: Path) -> None:
    result = digest("parse", str(feed(tmp_path / "feed.xml")), "--kind", "feed", "--json")
    assert FORBIDDEN.search(result.output) is None
    [paper] = [json.loads(line) for line in result.output.splitlines()]
    assert paper["title"].startswith("Diffusion [2J [H ]0;owned models $ sudo rm -rf ~\u202e")


@pytest.mark.parametrize(
    "args",
    [
        ("papers", "list"),
        ("papers", "show", "2611.00001"),
        ("score", "--interests", "diffusion", "--all"),
        ("preview", "--interests", "diffusion"),
    ],
    ids=["papers-list", "papers-show", "score", "preview"],
)
def test_commands_that_show_papers_print_no_control_characters(stored: str, args: tuple[str, ...]) -> None:
    result = digest(*args, url=stored)
    assert result.exit_code == 0, result.output
    assert_tame(result.output)


def test_papers_show_json_gives_the_stored_text_tame(stored: str) -> None:
    result = digest("papers", "show", "2611.00001", "--json", url=stored)
    assert FORBIDDEN.search(result.output) is None
    assert json.loads(result.output)["title"].startswith(
        "Diffusion [2J [H ]0;owned models $ sudo rm -rf ~\u202e"
    )
