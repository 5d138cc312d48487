"""Choosing each digest's papers, over a Reader (the store's side is digest.store.reader). Reads,
never writes.

Groups jobs (subscriber, date, where their previous digest stopped) by window, builds one scoring
index per window and ranks everyone in it at once; papers a subscriber was sent before are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from digest.compose.digest import Digest, Item, Links, PaperView, Why, items, select
from digest.compose.tldr import tldr
from digest.model.ledger import Window, window_for
from digest.score.index import Corpus, Doc, Index, PaperText, Weights, build_index, corpus_from, docs_of
from digest.score.interests import Atom, InterestError, parse_interests
from digest.score.latex import readable
from digest.score.rank import Pick, Profile, ProfileSet, rank


class PaperRecord(PaperText, Protocol):
    """What a mail shows of a stored paper besides its text."""

    abs_url: str
    pdf_url: str | None
    hf_url: str | None
    github_repo: str | None
    project_page: str | None
    ai_summary: str | None


class SubscriberRecord(Protocol):
    """What choosing reads of a subscriber."""

    id: int
    email: str
    interests: str
    frequency: str
    max_papers: int
    min_score: float
    trending_section: bool
    confirmed_at: datetime | None
    created_at: datetime


class StoredPick(Protocol):
    """A paper a ledger row recorded: where it stood and why."""

    paper_id: str
    section: str
    score: float
    relevance: float
    trending: float
    line: int | None


class Reader(Protocol):
    """What choosing reads of the store."""

    def newest_first_seen(self, up_to: datetime) -> datetime | None: ...
    def papers_first_seen(self, after: datetime, until: datetime) -> Sequence[PaperRecord]: ...
    def papers_by_id(self, ids: Sequence[str]) -> Mapping[str, PaperRecord]: ...
    def latest_metrics(
        self, ids: Sequence[str]
    ) -> Mapping[str, tuple[int | None, int | None, int | None]]: ...
    def sent_pairs(
        self, subscriber_ids: Sequence[int], paper_ids: Sequence[str], after: datetime
    ) -> set[tuple[int, str]]: ...
    def paper_texts(self) -> Iterable[tuple[str, str]]: ...


class ComposeOptions(Protocol):
    """What choosing reads of the settings (digest.config.Settings has them all)."""

    catch_up_days: int
    trending_papers: int
    base_url: str


def paper_view(paper: PaperRecord, doc: Doc) -> PaperView:
    return PaperView(
        id=paper.id,
        title=readable(paper.title),
        url=paper.abs_url,
        authors=tuple(paper.authors),
        upvotes=doc.upvotes,
        comments=doc.comments,
        pdf_url=paper.pdf_url,
        code_url=paper.github_repo,
        project_url=paper.project_page,
        hf_url=paper.hf_url,
        tldr=tldr(paper.ai_summary, paper.abstract),
    )


def profile_of(subscriber: SubscriberRecord, *, strict: bool = True) -> Profile:
    """The subscriber's interests as scoring sees them. Raises InterestError for lines that do not
    parse, unless not ``strict`` (then they count as no interests)."""
    try:
        lines = parse_interests(subscriber.interests)
    except InterestError:
        if strict:
            raise
        lines = ()
    return Profile(lines, limit=subscriber.max_papers, min_score=subscriber.min_score)


@dataclass
class Job:
    """One digest to compose: for whom, for which date, and where their previous digest stopped."""

    subscriber: SubscriberRecord
    digest_date: date
    previous_until: datetime | None
    delivery_id: int | None = None


@dataclass
class Composed:
    """A job's chosen papers, explained; ``error`` says why none could be chosen."""

    job: Job
    window: Window | None
    profile: Profile
    main: tuple[Item, ...]
    trending: tuple[Item, ...]
    picks: list[tuple[str, Pick, str]] = field(default_factory=list)  # (paper id, pick, section)
    error: str | None = None

    @property
    def empty(self) -> bool:
        return not self.main and not self.trending


@dataclass
class _Pool:
    """Papers indexed for scoring with every atom asked of them so far."""

    papers: dict[str, PaperRecord]
    docs: list[Doc]
    atoms: dict[tuple[str, tuple[str, ...]], Atom] = field(default_factory=dict)
    index: Index | None = None
    explained: dict[tuple[int, str | None], Why] = field(default_factory=dict)  # for this index


class Composer:
    """Chooses papers for jobs. Reads, writes nothing. Reuse it across batches of a run: the corpus
    and each window's index are built once."""

    def __init__(
        self, options: ComposeOptions, reader: Reader, weights: Weights, corpus: Corpus | None = None
    ) -> None:
        self.options = options
        self.reader = reader
        self.weights = weights
        self._corpus = corpus  # given by a caller that keeps one across requests
        self._windows: dict[Window, _Pool] = {}
        self._expected: dict[tuple[str, tuple[str, ...]], Atom] = {}

    def expect(self, interests: Iterable[str]) -> None:
        """Make the indexes to come know every atom of these interest texts at once, so batch after
        batch of subscribers does not rebuild them (lines that do not parse are skipped here)."""
        for source in interests:
            try:
                lines = parse_interests(source)
            except InterestError:
                continue
            self._expected.update((atom.key, atom) for line in lines for atom in line.atoms)

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            self._corpus = corpus_from(self.reader.paper_texts())
        return self._corpus

    def pool(self, papers: Sequence[PaperRecord]) -> _Pool:
        """``papers`` with their latest metrics, ready to index."""
        docs = docs_of(papers, self.reader.latest_metrics([paper.id for paper in papers]))
        return _Pool({paper.id: paper for paper in papers}, docs)

    def _indexed(self, pool: _Pool, profiles: Sequence[Profile]) -> Index:
        """The pool's index, knowing every atom of ``profiles`` (rebuilt when a batch asks for a
        phrase, author or category the index was built without)."""
        wanted = {atom.key: atom for profile in profiles for line in profile.lines for atom in line.atoms}
        if pool.index is None or not wanted.keys() <= pool.atoms.keys():
            pool.atoms.update(self._expected)
            pool.atoms.update(wanted)
            pool.index = build_index(pool.docs, self.corpus, self.weights, pool.atoms.values())
            pool.explained = {}
        return pool.index

    def rank(self, pool: _Pool, profile: Profile) -> tuple[Index, list[Pick]]:
        """One profile's picks among the pool's papers, best first (for ``digest score``)."""
        index = self._indexed(pool, [profile])
        return index, rank(index, ProfileSet.build([profile]))[0]

    def compose(self, jobs: Sequence[Job], at: datetime) -> list[Composed]:
        """Choose each job's papers from those first seen in its window, leaving out any the
        subscriber was sent before; in the order of the jobs."""
        until = self.reader.newest_first_seen(at)
        results: list[Composed] = []
        groups: dict[Window | None, list[tuple[Job, Profile]]] = {}
        for job in jobs:
            subscriber = job.subscriber
            try:
                profile = profile_of(subscriber)
            except InterestError as exc:
                error = f"{exc}; fix them with `digest subscribers edit {subscriber.email} --interests …`"
                results.append(Composed(job, None, Profile(()), (), (), error=error))
                continue
            groups.setdefault(self._window(job, at, until), []).append((job, profile))
        for window, members in groups.items():
            if window is None:
                results.extend(Composed(job, None, profile, (), ()) for job, profile in members)
                continue
            results.extend(self._compose_window(window, members))
        order = {id(job): number for number, job in enumerate(jobs)}
        results.sort(key=lambda composed: order[id(composed.job)])
        return results

    def _window(self, job: Job, at: datetime, until: datetime | None) -> Window | None:
        """The window of ``job``'s digest made at ``at`` (``until``: the newest first-seen time then),
        or None when no paper can be in it."""
        if until is None:
            return None
        subscriber = job.subscriber
        window = window_for(
            at,
            until,
            subscriber.frequency,
            job.previous_until,
            self.options.catch_up_days,
            subscriber.confirmed_at or subscriber.created_at,
        )
        return None if window.after >= window.until else window

    def _window_pool(self, window: Window) -> _Pool:
        pool = self._windows.get(window)
        if pool is None:
            papers = self.reader.papers_first_seen(window.after, window.until)
            pool = self._windows[window] = self.pool(papers)
        return pool

    def candidates(self, job: Job, at: datetime) -> tuple[Window | None, _Pool, int]:
        """The papers ``job``'s digest made at ``at`` chooses from (first seen in its window, less
        those the subscriber was sent before), for ``digest score`` to rank them all, and how many
        of the window's papers were left out as sent before."""
        window = self._window(job, at, self.reader.newest_first_seen(at))
        if window is None:
            return None, self.pool([]), 0
        pool = self._window_pool(window)
        sent = self.reader.sent_pairs([job.subscriber.id], list(pool.papers), window.after)
        left = {paper_id for _, paper_id in sent}
        kept = [paper for paper_id, paper in pool.papers.items() if paper_id not in left]
        return window, self.pool(kept), len(left)

    def _compose_window(self, window: Window, members: list[tuple[Job, Profile]]) -> Iterator[Composed]:
        pool = self._window_pool(window)
        index = self._indexed(pool, [profile for _, profile in members])
        subscriber_ids = [job.subscriber.id for job, _ in members]
        sent = self.reader.sent_pairs(subscriber_ids, list(pool.papers), window.after)
        excluded: dict[int, set[str]] = {}
        for subscriber_id, paper_id in sent:
            excluded.setdefault(subscriber_id, set()).add(paper_id)
        widened = [
            Profile(
                profile.lines,
                limit=profile.limit + len(excluded.get(job.subscriber.id, ())),
                min_score=profile.min_score,
            )
            for job, profile in members
        ]
        ranking = rank(index, ProfileSet.build(widened))
        views = {}
        for number, (job, profile) in enumerate(members):
            trending = self.options.trending_papers if job.subscriber.trending_section else 0
            chosen = select(index, ranking[number], profile, excluded.get(job.subscriber.id, set()), trending)
            for pick in (*chosen.main, *chosen.trending):
                paper_id = index.docs[pick.doc].id
                if paper_id not in views:
                    views[paper_id] = paper_view(pool.papers[paper_id], index.docs[pick.doc])
            picks = [(index.docs[p.doc].id, p, "main") for p in chosen.main]
            picks += [(index.docs[p.doc].id, p, "trending") for p in chosen.trending]
            yield Composed(
                job,
                window,
                profile,
                items(index, chosen.main, profile, views, pool.explained),
                items(index, chosen.trending, profile, views, pool.explained),
                picks,
            )

    def recompose(self, job: Job, stored: Sequence[StoredPick]) -> Composed:
        """A composed digest again, from the papers its ledger row recorded (for a retry, or to view
        it in the browser)."""
        profile = profile_of(job.subscriber, strict=False)
        lines = profile.lines
        papers = self.reader.papers_by_id([row.paper_id for row in stored])
        stored = [row for row in stored if row.paper_id in papers]
        pool = self.pool([papers[row.paper_id] for row in stored])
        atoms = [atom for line in lines for atom in line.atoms]
        index = build_index(pool.docs, self.corpus, self.weights, atoms)
        views = {doc.id: paper_view(papers[doc.id], doc) for doc in pool.docs}
        main, trending = [], []
        for number, row in enumerate(stored):
            line = row.line if row.line is not None and row.line < len(lines) else None
            pick = Pick(number, row.score, row.relevance, row.trending, line)
            (trending if row.section == "trending" else main).append(pick)
        return Composed(
            job, None, profile, items(index, main, profile, views), items(index, trending, profile, views)
        )


def links(base_url: str, token: str) -> Links:
    """The links a digest carries, made with its link token."""
    return Links(
        f"{base_url}/d/{token}", f"{base_url}/preferences/{token}", f"{base_url}/unsubscribe/{token}"
    )


def digest_of(composed: Composed, base_url: str, token: str) -> Digest:
    """The mail of a composed job, its links made with ``token``."""
    job = composed.job
    return Digest(
        email=job.subscriber.email,
        digest_date=job.digest_date,
        frequency=job.subscriber.frequency,
        items=composed.main,
        trending=composed.trending,
        links=links(base_url, token),
        has_interests=bool(composed.profile.lines),
    )
