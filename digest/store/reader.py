"""What choosing papers reads, over one Session: the store's side of digest.compose's Reader."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from digest.model.figures import Figures
from digest.store import corpus, feedback, ledger, papers
from digest.store.models import Paper


class StoreReader:
    """digest.compose.choose.Reader over a Session. Reads, never writes."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def newest_first_seen(self, up_to: datetime) -> datetime | None:
        return papers.newest_first_seen(self.session, up_to)

    def papers_first_seen(self, after: datetime, until: datetime) -> list[Paper]:
        return papers.papers_first_seen(self.session, after, until)

    def papers_by_id(self, ids: Sequence[str]) -> dict[str, Paper]:
        return papers.papers_by_id(self.session, ids)

    def latest_metrics(self, ids: Sequence[str]) -> dict[str, Figures]:
        return papers.latest_metrics(self.session, ids)

    def sent_pairs(
        self, subscriber_ids: Sequence[int], paper_ids: Sequence[str], after: datetime
    ) -> set[tuple[int, str]]:
        return ledger.sent_pairs(self.session, subscriber_ids, paper_ids, after)

    def corpus_size(self) -> int:
        return corpus.size(self.session)

    def frequencies(self, stems: Collection[str]) -> dict[str, int]:
        return corpus.frequencies(self.session, stems)

    def definitions(self, asked: Collection[tuple[str, ...]]) -> list[tuple[corpus.Definition, int]]:
        return corpus.definitions(self.session, asked)

    def newest_paper_texts(self, limit: int) -> list[tuple[str, str, str]]:
        return papers.newest_paper_texts(self.session, limit)

    def feedback_of(self, subscriber_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        return feedback.of_subscribers(self.session, subscriber_ids)
