"""The corpus statistics (``corpus_terms``, ``corpus_definitions``, ``corpus_totals``): what the
stored papers add up to, kept in the transaction that stores a paper or changes its text, so that
reading them costs what the terms asked for cost, not what the history holds.

Counts come in as digest.score.index.CorpusCounts (made by the caller: the store does not analyse
text) and are added, or taken away with ``sign=-1``. Rows are written in a sorted order, so two
processes that store papers at once wait for each other instead of deadlocking on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import delete, select, tuple_

from digest.store.bulk import chunked, insert_for
from digest.store.engine import Session
from digest.store.models import CorpusDefinition, CorpusTerm, CorpusTotal

PAPERS = "papers"  # the corpus_totals row that counts the stored papers
Definition = tuple[str, str, str, str]  # short stems, long stems, short text, long text


class Counts(Protocol):
    """What digest.score.index.CorpusCounts holds."""

    papers: int
    df: Mapping[str, int]
    definitions: Mapping[Definition, int]


def add(session: Session, counts: Counts) -> None:
    """Add ``counts`` to the stored statistics; a negative count takes away (a paper's old text),
    and a statistic that falls to nothing is deleted."""
    if counts.papers:
        _upsert(session, CorpusTotal, ["name"], [{"name": PAPERS, "value": counts.papers}], "value")
    terms = [{"stem": stem, "papers": n} for stem, n in sorted(counts.df.items()) if n]
    _upsert(session, CorpusTerm, ["stem"], terms, "papers")
    keys = ["short", "long", "short_text", "long_text"]
    rows = [
        {**dict(zip(keys, key, strict=True)), "papers": n}
        for key, n in sorted(counts.definitions.items())
        if n
    ]
    _upsert(session, CorpusDefinition, keys, rows, "papers")
    fallen = sorted(stem for stem, n in counts.df.items() if n < 0)
    for chunk in chunked(fallen):
        session.execute(delete(CorpusTerm).where(CorpusTerm.stem.in_(chunk), CorpusTerm.papers <= 0))
    fallen_definitions = sorted(key for key, n in counts.definitions.items() if n < 0)
    for chunk in chunked(fallen_definitions, 200):
        session.execute(
            delete(CorpusDefinition).where(
                tuple_(*(getattr(CorpusDefinition, key) for key in keys)).in_(chunk),
                CorpusDefinition.papers <= 0,
            )
        )


def clear(session: Session) -> None:
    """Delete every statistic (before they are counted again from the papers)."""
    for model in (CorpusTerm, CorpusDefinition, CorpusTotal):
        session.execute(delete(model))


def size(session: Session) -> int:
    """How many papers are stored, as the statistics count them."""
    return session.scalar(select(CorpusTotal.value).where(CorpusTotal.name == PAPERS)) or 0


def frequencies(session: Session, stems: Collection[str]) -> dict[str, int]:
    """How many stored papers hold each of ``stems`` (the stems none holds are left out)."""
    found: dict[str, int] = {}
    for chunk in chunked(sorted(stems)):
        query = select(CorpusTerm.stem, CorpusTerm.papers).where(CorpusTerm.stem.in_(chunk))
        found.update((stem, papers) for stem, papers in session.execute(query))
    return found


def definitions(session: Session, asked: Collection[tuple[str, ...]]) -> list[tuple[Definition, int]]:
    """The definition rows that bear on the ``asked`` term sequences: those whose short or long form
    is one of them, and every other row that shares a short or a long form with those (whether
    most papers define an acronym one way depends on all of its rows)."""
    joined = sorted({" ".join(terms) for terms in asked})
    first = _rows(session, joined, joined)
    shorts = sorted({key[0] for key, _ in first})
    longs = sorted({key[1] for key, _ in first})
    return _rows(session, shorts, longs) if first else []


def everything(session: Session) -> tuple[int, dict[str, int], dict[Definition, int]]:
    """Every stored statistic: (papers, stem frequencies, definitions), to check against a recount."""
    terms = {stem: papers for stem, papers in session.execute(select(CorpusTerm.stem, CorpusTerm.papers))}
    found = {
        (short, long, short_text, long_text): papers
        for short, long, short_text, long_text, papers in session.execute(
            select(
                CorpusDefinition.short,
                CorpusDefinition.long,
                CorpusDefinition.short_text,
                CorpusDefinition.long_text,
                CorpusDefinition.papers,
            )
        )
    }
    return size(session), terms, found


def _rows(session: Session, shorts: Iterable[str], longs: Iterable[str]) -> list[tuple[Definition, int]]:
    columns = (
        CorpusDefinition.short,
        CorpusDefinition.long,
        CorpusDefinition.short_text,
        CorpusDefinition.long_text,
        CorpusDefinition.papers,
    )
    found: dict[Definition, int] = {}
    for column, values in ((CorpusDefinition.short, list(shorts)), (CorpusDefinition.long, list(longs))):
        for chunk in chunked(values):
            for short, long, short_text, long_text, papers in session.execute(
                select(*columns).where(column.in_(chunk))
            ):
                found[short, long, short_text, long_text] = papers
    return sorted(found.items())


def _upsert(session: Session, model: type, keys: list[str], rows: list[dict[str, Any]], count: str) -> None:
    """Insert ``rows``, or add their ``count`` to the rows already there."""
    column = getattr(model, count)
    for chunk in chunked(rows):
        statement = insert_for(session, model)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=keys, set_={count: column + getattr(statement.excluded, count)}
            ),
            list(chunk),
        )
