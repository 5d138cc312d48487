"""Reading a reference manager's export for its papers: BibTeX, RIS, a list of ids. The files in
tests/data/library are written as Zotero, Mendeley and a reader would write them."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.parse.library import read_library

LIBRARY = Path(__file__).resolve().parents[1] / "data" / "library"


def read(name: str):
    return read_library((LIBRARY / name).read_text(encoding="utf-8"))


def test_a_zotero_bibtex_export_gives_each_entrys_arxiv_id_and_names_the_entries_it_cannot_use() -> None:
    library = read("zotero.bib")
    assert library.kind == "bibtex"
    assert [(ref.paper_id, ref.title) for ref in library.references] == [
        ("2407.21705", "Tora: Trajectory-oriented Diffusion Transformer for Video Generation"),
        ("2407.21783", "The Llama 3 Herd of Models"),
        ("2499.00001", "A paper this server never stored"),
    ]
    assert library.problems == [
        "line 22: @inproceedings{vaswani_attention_2017: no arXiv id in it",
        "line 29: this entry cannot be read: @misc{broken_2024,",
    ]


def test_an_ris_export_gives_ids_from_urls_and_dois_and_names_a_record_without_one() -> None:
    library = read("mendeley.ris")
    assert library.kind == "ris"
    assert [ref.paper_id for ref in library.references] == ["2407.21705", "2407.21646"]
    assert library.problems == ["line 8: The Art of Computer Programming: no arXiv id in it"]


def test_two_exports_pasted_together_keep_the_papers_whose_keys_repeat() -> None:
    text = (
        "@article{smith2024, title={One}, eprint={2401.00001}}\n"
        "@article{smith2024, title={{Two} words}, eprint={2401.00002}}\n"
    )
    library = read_library(text)
    assert [(ref.paper_id, ref.line, ref.title) for ref in library.references] == [
        ("2401.00001", 1, "One"),
        ("2401.00002", 2, "Two words"),
    ]
    assert library.problems == []


def test_each_record_of_a_long_ris_file_is_named_by_its_own_line() -> None:
    record = "TY  - JOUR\nTI  - Paper {n}\nUR  - https://arxiv.org/abs/2401.{n:05d}\nER  - \n\n"
    text = "".join(record.format(n=n) for n in range(1, 3001)) + "TY  - JOUR\nTI  - No id\nER  - \n"
    library = read_library(text)
    assert [ref.line for ref in library.references[:3]] == [1, 6, 11]
    assert library.references[-1] == type(library.references[0])("2401.03000", 14996, "Paper 3000")
    assert library.problems == ["line 15001: No id: no arXiv id in it"]


def test_reading_stops_at_the_most_entries_asked_whatever_the_text_holds() -> None:
    many = "".join(f"@misc{{k{n}, eprint={{2401.{n:05d}}}}}\n" for n in range(1, 31))
    fields = "@misc{k, eprint={2401.00001}," + "a=b," * 5_000 + "}"
    cut, crammed = read_library(many, most=20), read_library(fields, most=20)
    assert [ref.paper_id for ref in cut.references][-1] == "2401.00020" and len(cut.references) == 20
    assert cut.cut and cut.problems[-1] == "only the first 20 entries are read; split the file"
    assert crammed.cut and not read_library(many).cut


def test_a_plain_list_takes_ids_with_versions_and_urls_and_names_other_lines() -> None:
    library = read("ids.txt")
    assert [ref.paper_id for ref in library.references] == ["2407.21783", "2407.21705"]
    assert library.problems == ["line 4: not an arXiv id or URL: not a paper"]


def check(text: str) -> None:
    library = read_library(text)
    lines = text.count("\n") + 1
    at = [re.match(r"line (\d+): .", problem) for problem in library.problems]
    assert all(match and 1 <= int(match.group(1)) <= lines for match in at), library.problems
    assert all(ref.paper_id and 1 <= ref.line <= lines for ref in library.references)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_read_or_its_bad_entries_named_never_a_crash(text: str) -> None:
    check(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "@article{",
                "@misc(",
                "}",
                "{",
                ",",
                "=",
                '"',
                "title",
                "eprint",
                "2407.21705",
                "arXiv:",
                "\n",
                " ",
                "TY  - JOUR\n",
                "ER  - \n",
                "UR  - ",
                "DO  - 10.48550/arXiv.",
                "@",
                "%",
                "é",
            ]
        ),
        max_size=40,
    )
)
def test_bibtex_and_ris_fragments_never_crash_the_reader(fragments: list[str]) -> None:
    check("".join(fragments))
