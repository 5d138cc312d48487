"""The interest language: what parses, what is refused and where."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.score import text
from digest.score.interests import InterestError, parse_interests, parse_with_seeds


def test_each_construct_parses_to_its_atom() -> None:
    [line] = parse_interests(
        'diffusion^2 "video generation" -audio -"text to speech" author:"Yann LeCun" cat:cs.CV'
    )
    kinds = [(atom.kind, atom.terms, atom.weight, atom.exclude) for atom in line.atoms]
    assert kinds == [
        ("term", ("diffus",), 2.0, False),
        ("phrase", ("video", "generat"), 1.0, False),
        ("term", ("audio",), 1.0, True),
        ("phrase", ("text", "to", "speech"), 1.0, True),
        ("author", ("yann", "lecun"), 1.0, False),
        ("cat", ("cs.cv",), 1.0, False),
    ]


def test_each_atom_is_labelled_as_the_reader_wrote_it_without_the_syntax() -> None:
    [line] = parse_interests(
        '(Diffusion)^2 "Video  Generation" LLMs, -audio author:"Yann LeCun" cat:cs.CV C++'
    )
    assert [atom.label for atom in line.atoms] == [
        "Diffusion",
        "Video Generation",
        "LLMs",
        "audio",
        "Yann LeCun",
        "cs.CV",
        "C++",
    ]
    [line] = parse_interests(".NET, Node.js; [C#]. “quoted”")
    assert [atom.label for atom in line.atoms] == [".NET", "Node.js", "C#", "quoted"]


def test_blank_and_comment_lines_are_skipped_and_numbers_kept() -> None:
    lines = parse_interests("# my topics\n\nLLM agents\n  \nprotein folding\n")
    assert [(line.number, line.text) for line in lines] == [(3, "LLM agents"), (5, "protein folding")]


def test_empty_interests_mean_trending_only() -> None:
    assert parse_interests("") == ()
    assert parse_interests("\n# nothing yet\n") == ()


def test_hyphenated_words_and_model_names_match_whole_and_split() -> None:
    assert text.analyze("GPT-4 and self-supervised LoRA in 3D") == [
        "gpt",
        "4",
        "and",
        "self",
        "supervis",
        "lora",
        "in",
        "3d",
    ]
    [line] = parse_interests("GPT-4")
    assert line.atoms[0].key == ("phrase", ("gpt", "4"))


def test_folding_ignores_case_accents_and_width() -> None:
    assert text.analyze("Modèle ＲＥＳＮＥＴ Ångström") == text.analyze("modele resnet angstrom")


def test_stemming_makes_plural_and_singular_meet() -> None:
    assert text.analyze("transformers") == text.analyze("transformer")
    assert text.analyze("diffusion models") == text.analyze("Diffusion Model")


@pytest.mark.parametrize(
    ("plural", "singular"),
    [("LLMs", "LLM"), ("llms", "LLM"), ("VLAs", "VLA"), ("GPUs", "GPU"), ("CNNs", "cnn"), ("ＬＬＭs", "LLM")],
)
def test_a_plural_acronym_and_its_singular_meet(plural: str, singular: str) -> None:
    assert text.analyze(f"{plural}-based agents") == text.analyze(f"{singular} based agent")


def test_words_that_only_look_like_plural_acronyms_keep_their_s() -> None:
    assert text.analyze("rhythms As Is gas LoRAs") == ["rhythm", "as", "is", "gas", "lora"]
    assert text.analyze("GPS TTS gps rms") == ["gps", "tts", "gps", "rms"]  # not GP, TT, RM


@given(
    st.text(
        alphabet=st.sampled_from([*"LMsaAeSD3lmn", "\u00e9", "\uff2c", "-", " ", "_", ".", "\u00df"]),
        max_size=60,
    )
)
def test_the_marked_positions_of_a_text_are_its_analysed_words(source: str) -> None:
    assert [stem for _, _, stem in text.spans(source)] == text.analyze(source)


@pytest.mark.parametrize(
    ("source", "line", "column", "says"),
    [
        ('ok\n"never closed', 2, 1, "never closed"),
        ("-", 1, 1, "must be followed"),
        ("-audio", 1, 1, "only exclusions"),
        ("title:diffusion", 1, 1, "unknown field"),
        ("cat:!!", 1, 5, "not an arXiv category"),
        ("diffusion^", 1, 10, "must be followed by a weight"),
        ("diffusion^99", 1, 11, "weights go from"),
        ('author:"Ada"^2', 1, 13, "take no weight"),
        ('""', 1, 1, "empty quotes"),
        ("!!!", 1, 1, "no letters or digits"),
        ("x" * 301, 1, 301, "longer than"),
        ("like:", 1, 6, "write the paper after like:"),
        ("  like: 2401.12345 diffusion", 1, 8, "holds one paper"),
        ("diffusion like:2401.12345", 1, 11, "on a line of their own"),
        ("like:transformers", 1, 6, "takes an arXiv id"),
    ],
)
def test_bad_lines_are_refused_with_line_and_column(source: str, line: int, column: int, says: str) -> None:
    with pytest.raises(InterestError) as caught:
        parse_interests(source)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert says in str(caught.value)
    assert str(caught.value).startswith(f"interests line {line}, column {column}:")


def test_a_like_line_is_a_seed_paper_not_a_line_of_words() -> None:
    lines, seeds = parse_with_seeds(
        "diffusion\nlike:2407.21705\n  LIKE: https://arxiv.org/abs/2407.21783v2 \n"
    )
    assert [line.text for line in lines] == ["diffusion"]
    assert seeds == ("2407.21705", "https://arxiv.org/abs/2407.21783v2")
    assert parse_interests("like:2407.21705") == ()


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_parses_or_gives_a_positioned_error(source: str) -> None:
    try:
        lines = parse_interests(source)
    except InterestError as error:
        raw = source.splitlines()
        assert 1 <= error.line <= len(raw)
        assert 1 <= error.column <= len(raw[error.line - 1]) + 1
        return
    for line in lines:
        assert line.atoms and any(not atom.exclude for atom in line.atoms)
        assert all(atom.terms for atom in line.atoms)
        spaced = " ".join(line.text.split())
        assert all(atom.label and atom.label in spaced for atom in line.atoms)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ['"', "-", "^", "^2", "author:", "cat:", "like:", "cs.LG", "LLM", " ", "\n", "é", "GPT-4", "#"]
        ),
        max_size=25,
    )
)
def test_grammar_fragments_never_crash_the_parser(fragments: list[str]) -> None:
    source = "".join(fragments)
    try:
        parse_interests(source)
    except InterestError as error:
        assert error.line >= 1 and error.column >= 1


@pytest.mark.parametrize("line", ["author:", "diffusion cat: cs.CV", "AUTHOR: Hinton"])
def test_a_field_without_its_value_is_refused_where_it_stands(line: str) -> None:
    with pytest.raises(InterestError, match="needs a value right after it"):
        parse_interests(line)
