"""A reference manager's export read for its papers: BibTeX (Zotero, Mendeley, JabRef), RIS, or a
plain list of arXiv ids and URLs, one a line. No I/O.

Parsing is bibtexparser's and rispy's. Nothing raises: an entry that cannot be read, or that names
no arXiv id, is a problem naming its line, and the rest is read.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import bibtexparser
import rispy

from digest.parse.record import parse_arxiv_id

# bibtexparser logs each entry it cannot read; read_library reports them as problems instead
logging.getLogger("bibtexparser").setLevel(logging.ERROR)
MAX_REFERENCES = 10_000
# "arXiv:2407.21705", "arXiv preprint arXiv:2407.21705v2", the DOI arXiv gives, an abs or pdf URL
_IN_TEXT = re.compile(
    r"(?:arxiv[.:]\s*|arxiv\.org/(?:abs|pdf|html)/)([a-z\-]*(?:\.[a-z]{2})?/?\d{4}\.?\d{3,5}(?:v\d+)?)",
    re.IGNORECASE,
)
_BIBTEX = re.compile(r"^\s*@\s*[A-Za-z]+\s*[{(]", re.MULTILINE)
_RIS = re.compile(r"^TY  - ", re.MULTILINE)
_BIBTEX_ENTRY = re.compile(r"@\s*[A-Za-z]+\s*[{(]")
_BIBTEX_FIELD = re.compile(r"=")
_LINE = re.compile(r"^[^\S\n]*\S", re.MULTILINE)  # a line that is not blank
FIELDS_PER_ENTRY = 50  # BibTeX fields (an "=" each) read per entry allowed, on average
_RIS_END = re.compile(r"^ER  -.*$", re.MULTILINE)
BIBTEX_FIELDS = ("eprint", "arxivid", "arxiv", "url", "doi", "journal", "note", "howpublished", "number")
RIS_FIELDS = ("urls", "url", "doi", "journal_name", "secondary_title", "notes", "number", "id")


@dataclass(frozen=True, slots=True)
class Reference:
    """One paper of a library: the arXiv id it names, where it is, and its title when it has one."""

    paper_id: str
    line: int
    title: str = ""


@dataclass
class Library:
    kind: str  # bibtex, ris or list
    references: list[Reference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "line 12: …", in order
    cut: bool = False  # entries past the most read were left


def read_library(text: str, most: int = MAX_REFERENCES) -> Library:
    """The papers ``text`` names, by the format it is in, with a problem per entry left out. Only
    the first ``most`` entries are read (and at most FIELDS_PER_ENTRY fields each, in all), so the
    time it takes is bounded whatever the text: a problem says when the rest was left."""
    if _BIBTEX.search(text):
        text, cut = _first(text, _BIBTEX_ENTRY, most)
        text, cut_fields = _first(text, _BIBTEX_FIELD, most * FIELDS_PER_ENTRY)
        library, cut = _bibtex(text), cut or cut_fields
    elif _RIS.search(text):
        text, cut = _first(text, _RIS, most)
        library = _ris(text)
    else:
        text, cut = _first(text, _LINE, most)
        library = _plain(text)
    if cut or len(library.references) > most:
        library.cut = True
        library.problems.append(f"only the first {most:,} entries are read; split the file")
        del library.references[most:]
    return library


def _first(text: str, starts: re.Pattern[str], most: int) -> tuple[str, bool]:
    """``text`` up to the ``most`` + 1st match of ``starts``, and whether it was cut."""
    for count, match in enumerate(starts.finditer(text)):
        if count == most:
            return text[: match.start()], True
    return text, False


def arxiv_id_in(value: str) -> str | None:
    """The arXiv id (without version) a field's text names, if any."""
    found = parse_arxiv_id(value)
    if found is None:
        match = _IN_TEXT.search(value)
        found = parse_arxiv_id(match.group(1)) if match else None
    return found[0] if found else None


def _bibtex(text: str) -> Library:
    library = Library("bibtex")
    try:
        parsed = bibtexparser.parse_string(text)
    except Exception as exc:  # a library error is a problem with the file, not with us
        library.problems.append(f"line 1: the BibTeX cannot be read ({type(exc).__name__}); export it again")
        return library
    problems: list[tuple[int, str]] = []
    # An entry whose key an earlier one has (two exports pasted together) is still a paper: read it
    # as bibtexparser left it, its values still in their braces.
    entries = [(entry, str) for entry in parsed.entries]
    for block in parsed.failed_blocks:
        duplicate = getattr(block, "ignore_error_block", None)
        if isinstance(duplicate, bibtexparser.model.Entry):
            entries.append((duplicate, _unbraced))
        else:
            problems.append(
                ((block.start_line or 0) + 1, f"this entry cannot be read: {_first_line(block.raw)}")
            )
    for entry, value_of in entries:
        values = {key.lower(): value_of(str(item.value)) for key, item in entry.fields_dict.items()}
        line = (entry.start_line or 0) + 1
        found = _first_id(values.get(name, "") for name in BIBTEX_FIELDS)
        if found is None:
            problems.append((line, f"@{entry.entry_type}{{{entry.key}: no arXiv id in it"))
            continue
        library.references.append(Reference(found, line, _plain_title(values.get("title", ""))))
    library.references.sort(key=lambda reference: reference.line)
    library.problems = [f"line {line}: {problem}" for line, problem in sorted(problems)]
    return library


def _ris(text: str) -> Library:
    library = Library("ris")
    start = 0
    line = 1  # of ``start``
    for end in [*(match.end() for match in _RIS_END.finditer(text)), len(text)]:
        record = text[start:end]
        first = line + record.count("\n", 0, len(record) - len(record.lstrip()))
        line += record.count("\n")
        start = end
        if not record.strip():
            continue
        try:
            entries = rispy.loads(record.strip() + ("" if _RIS_END.search(record) else "\nER  - "))
        except Exception as exc:
            library.problems.append(f"line {first}: this record cannot be read ({type(exc).__name__})")
            continue
        for entry in entries:
            values = [_text(entry.get(name)) for name in RIS_FIELDS]
            found = _first_id(values)
            title = _text(entry.get("title") or entry.get("primary_title"))
            if found is None:
                library.problems.append(f"line {first}: {title or 'a record'}: no arXiv id in it")
                continue
            library.references.append(Reference(found, first, title))
    return library


def _plain(text: str) -> Library:
    library = Library("list")
    for number, raw in enumerate(text.split("\n"), 1):  # lines as an editor counts them
        value = raw.strip()
        if not value or value.startswith("#"):
            continue
        found = arxiv_id_in(value)
        if found is None:
            library.problems.append(f"line {number}: not an arXiv id or URL: {_first_line(value)}")
            continue
        library.references.append(Reference(found, number))
    return library


def _first_id(values) -> str | None:
    for value in values:
        found = arxiv_id_in(value) if value else None
        if found:
            return found
    return None


def _text(value: object) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value)
    return "" if value is None else str(value)


def _unbraced(value: str) -> str:
    """A BibTeX value without the one pair of braces or quotes around it."""
    if len(value) >= 2 and (value[0], value[-1]) in {("{", "}"), ('"', '"')}:
        return value[1:-1]
    return value


def _plain_title(value: str) -> str:
    return " ".join(value.replace("{", "").replace("}", "").split())


def _first_line(raw: str, limit: int = 60) -> str:
    line = (raw.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"
