"""The corpus statistics kept as papers are stored (digest.store.corpus): the texts a write adds,
less the texts it replaces, counted with the analysis scoring uses."""

from __future__ import annotations

from collections.abc import Iterable

from digest.score.index import CorpusCounts, corpus_counts
from digest.store import corpus
from digest.store.engine import Session


def record(
    session: Session, added: Iterable[tuple[str, str]], replaced: Iterable[tuple[str, str]] = ()
) -> None:
    """Count the (title, abstract) of papers just stored, less the ones their new text replaced,
    into the statistics, in ``session``'s transaction."""
    gained, lost = corpus_counts(added), corpus_counts(replaced)
    if not (gained.papers or lost.papers):
        return
    df = gained.df.copy()
    df.subtract(lost.df)
    definitions = gained.definitions.copy()
    definitions.subtract(lost.definitions)
    corpus.add(session, CorpusCounts(gained.papers - lost.papers, df, definitions))
