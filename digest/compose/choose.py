"""Choosing each digest's papers, over a Reader (the store's side is digest.store.reader). Reads,
never writes.

Groups jobs (subscriber, date, where their previous digest stopped) by window, builds one scoring
index per window and ranks everyone in it at once; papers a subscriber was sent before are left out.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Protocol

import numpy as np
from scipy import sparse

from digest.compose.digest import Digest, Item, PaperView, Why, items, links, select
from digest.compose.tldr import tldr
from digest.model.figures import Figures
from digest.model.ledger import Window, window_for
from digest.model.time import utc
from digest.parse.record import paper_key
from digest.score.index import (
    Corpus,
    Definition,
    Doc,
    Index,
    PaperText,
    Weights,
    analyse,
    build_index,
    corpus_of,
    docs_of,
)
from digest.score.interests import Atom, InterestError, parse_interests, parse_with_seeds
from digest.score.latex import readable
from digest.score.rank import Pick, Profile, ProfileSet, rank
from digest.score.semantic import FIT_PAPERS, Space, neighbours


class PaperRecord(PaperText, Protocol):
    """What a mail shows of a stored paper besides its text."""

    abs_url: str
    pdf_url: str | None
    hf_url: str | None
    github_repo: str | None
    project_page: str | None
    ai_summary: str | None
    first_seen_at: datetime


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
    liked_paper_id: str | None


class Reader(Protocol):
    """What choosing reads of the store."""

    def newest_first_seen(self, up_to: datetime) -> datetime | None: ...
    def papers_first_seen(self, after: datetime, until: datetime) -> Sequence[PaperRecord]: ...
    def papers_by_id(self, ids: Sequence[str]) -> Mapping[str, PaperRecord]: ...
    def latest_metrics(self, ids: Sequence[str]) -> Mapping[str, Figures]: ...
    def sent_pairs(
        self, subscriber_ids: Sequence[int], paper_ids: Sequence[str], after: datetime
    ) -> set[tuple[int, str]]: ...
    def corpus_size(self) -> int: ...
    def frequencies(self, stems: Collection[str]) -> Mapping[str, int]: ...
    def definitions(self, asked: Collection[tuple[str, ...]]) -> Sequence[tuple[Definition, int]]: ...
    def newest_paper_texts(self, limit: int) -> Sequence[tuple[str, str, str]]: ...
    def feedback_of(self, subscriber_ids: Sequence[int]) -> Mapping[int, Mapping[str, int]]: ...


class ComposeOptions(Protocol):
    """What choosing reads of the settings (digest.config.Settings has them all)."""

    catch_up_days: int
    trending_papers: int
    related_papers: int
    base_url: str


def paper_view(paper: PaperRecord, doc: Doc) -> PaperView:
    return PaperView(
        id=paper.id,
        title=readable(paper.title),
        url=paper.abs_url,
        authors=tuple(paper.authors),
        upvotes=doc.upvotes,
        comments=doc.comments,
        trending_rank=doc.trending_rank,
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
        lines, seeds = parse_with_seeds(subscriber.interests)
    except InterestError:
        if strict:
            raise
        lines, seeds = (), ()
    return Profile(
        lines,
        limit=subscriber.max_papers,
        min_score=subscriber.min_score,
        seeds=tuple(dict.fromkeys(paper_key(seed) for seed in seeds)),
    )


@dataclass
class Job:
    """One digest to compose: for whom, for which date, and where their previous digest stopped."""

    subscriber: SubscriberRecord
    digest_date: date
    previous_until: datetime | None
    delivery_id: int | None = None
    liked: tuple[str, ...] = ()  # papers liked besides the stored feedback (a sign-up's library)


@dataclass
class Composed:
    """A job's chosen papers, explained; ``error`` says why none could be chosen."""

    job: Job
    window: Window | None
    profile: Profile
    main: tuple[Item, ...]
    trending: tuple[Item, ...]
    # (paper id, pick, section, the liked paper a related pick is near)
    picks: list[tuple[str, Pick, str, str | None]] = field(default_factory=list)
    error: str | None = None
    papers: int = 0  # first seen since the previous digest: 0 when nothing new came at all

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
    seen: list[datetime] | None = None  # the papers' first-seen times, in order (made when asked)
    analysed: tuple[list[list[str]], list[list[str]]] | None = None  # the docs' stems (index.analyse)
    vectors: np.ndarray | None = None  # the docs in the semantic space, once asked for

    def since(self, moment: datetime | None) -> int:
        """How many of the papers were first seen after ``moment`` (all of them for None)."""
        if moment is None:
            return len(self.papers)
        if self.seen is None:
            self.seen = sorted(utc(paper.first_seen_at) for paper in self.papers.values())
        return len(self.seen) - bisect.bisect_right(self.seen, utc(moment))


class Composer:
    """Chooses papers for jobs. Reads, writes nothing. Reuse it across batches of a run: the corpus
    and each window's index are built once."""

    def __init__(
        self,
        options: ComposeOptions,
        reader: Reader,
        weights: Weights,
        corpus: Corpus | None = None,
        space: Callable[[], Space] | None = None,
    ) -> None:
        self.options = options
        self.reader = reader
        self.weights = weights
        self._corpus = corpus  # given whole (a benchmark's): else read from the store as needed
        self._size: int | None = None
        self._df: dict[str, int] = {}  # the stems read so far
        self._asked: set[tuple[str, ...]] = set()  # the term sequences whose acronyms were read
        self._definitions: dict[Definition, int] = {}
        self._space_of = space  # likewise, asked for only when some feedback needs it
        self._space: Space | None = None
        self._windows: dict[Window, _Pool] = {}
        self._expected: dict[tuple[str, tuple[str, ...]], Atom] = {}
        self._liked: dict[str, tuple[str, np.ndarray]] = {}  # feedback papers: title and vector

    def expect(self, interests: Iterable[str]) -> None:
        """Make the indexes to come know every atom of these interest texts at once, so batch after
        batch of subscribers does not rebuild them (lines that do not parse are skipped here)."""
        for source in interests:
            try:
                lines = parse_interests(source)
            except InterestError:
                continue
            self._expected.update((atom.key, atom) for line in lines for atom in line.atoms)

    @staticmethod
    def _analysed(pool: _Pool) -> tuple[list[list[str]], list[list[str]]]:
        if pool.analysed is None:
            pool.analysed = analyse(pool.docs)
        return pool.analysed

    def _corpus_for(self, pool: _Pool, atoms: Sequence[Atom]) -> Corpus:
        """The corpus statistics indexing ``pool`` for ``atoms`` needs: how many papers hold each
        stem of the papers and of the atoms (and of the acronyms those stand for), and those
        acronyms. Read from the store as later pools and atoms need more, never all of it."""
        if self._corpus is not None:
            return self._corpus
        asked = {atom.terms for atom in atoms if atom.kind in ("term", "phrase")}
        if unread := asked - self._asked:
            self._definitions.update(self.reader.definitions(unread))
            self._asked |= unread
        expansions = corpus_of(0, {}, self._definitions.items(), asked).acronyms
        titles, abstracts = self._analysed(pool)
        stems = {stem for field in (*titles, *abstracts) for stem in field}
        stems.update(stem for terms in asked for stem in terms)
        stems.update(stem for found in expansions.values() for stem in (*found.short, *found.long))
        if unread_stems := stems - self._df.keys():
            found = self.reader.frequencies(unread_stems)
            self._df.update((stem, found.get(stem, 0)) for stem in unread_stems)
        if self._size is None:
            self._size = self.reader.corpus_size()
        return Corpus(self._size, self._df, expansions)

    @property
    def space(self) -> Space:
        if self._space is None:
            fitted = (
                self._space_of() if self._space_of else Space.fit(self.reader.newest_paper_texts(FIT_PAPERS))
            )
            self._space = fitted
        return self._space

    def with_feedback(self, profiles: Sequence[Profile], subscriber_ids: Sequence[int]) -> list[Profile]:
        """``profiles`` with their subscribers' feedback (their seed papers liked, unless they said
        otherwise of one), and room for related papers when they liked any."""
        given = self.reader.feedback_of([number for number in subscriber_ids if number is not None])
        made = []
        for profile, subscriber_id in zip(profiles, subscriber_ids, strict=True):
            said = {seed: 1 for seed in profile.seeds} | dict(given.get(subscriber_id, {}))
            feedback = tuple(sorted(said.items()))
            liked = any(value > 0 for _, value in feedback)
            made.append(
                replace(profile, feedback=feedback, related=self.options.related_papers if liked else 0)
            )
        return made

    def _near(self, pool: _Pool, profiles: ProfileSet) -> tuple[sparse.csr_matrix, dict[str, str]]:
        """How near each paper feedback was given on is to each of the pool's (digest.score.semantic),
        and the titles of those papers."""
        if not profiles.feedback_papers:
            return sparse.csr_matrix((0, len(pool.docs))), {}
        wanted = [paper for paper in profiles.feedback_papers if paper not in self._liked]
        if wanted:
            found = self.reader.papers_by_id(wanted)
            stored = [found[paper] for paper in wanted if paper in found]
            vectors = self.space.place([(paper.id, paper.title, paper.abstract) for paper in stored])
            for paper, vector in zip(stored, vectors, strict=True):
                self._liked[paper.id] = (readable(paper.title), vector)
        if pool.vectors is None:
            pool.vectors = self.space.place([(doc.id, doc.title, doc.abstract) for doc in pool.docs])
        width = pool.vectors.shape[1]
        missing = np.zeros(width, dtype=np.float32)  # a paper no longer stored is near nothing
        liked = [self._liked.get(paper, ("", missing)) for paper in profiles.feedback_papers]
        rows = np.array([vector for _, vector in liked], dtype=np.float32).reshape(len(liked), width)
        titles = {paper: title for paper, (title, _) in zip(profiles.feedback_papers, liked, strict=True)}
        place = {doc.id: number for number, doc in enumerate(pool.docs)}
        itself = [place.get(paper, -1) for paper in profiles.feedback_papers]
        return neighbours(rows, pool.vectors, itself), titles

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
            atoms = list(pool.atoms.values())
            corpus = self._corpus_for(pool, atoms)
            pool.index = build_index(pool.docs, corpus, self.weights, atoms, self._analysed(pool))
            pool.explained = {}
        return pool.index

    def rank(self, pool: _Pool, profile: Profile) -> tuple[Index, list[Pick], dict[str, str]]:
        """One profile's picks among the pool's papers, best first (for ``digest score``), and the
        titles of the papers its feedback was given on."""
        index = self._indexed(pool, [profile])
        profiles = ProfileSet.build([profile])
        near, titles = self._near(pool, profiles)
        return index, rank(index, profiles, near)[0], titles

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
                if job.liked:
                    profile = replace(profile, seeds=tuple(dict.fromkeys((*profile.seeds, *job.liked))))
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
        profiles = self.with_feedback([profile for _, profile in members], subscriber_ids)
        members = [(job, profile) for (job, _), profile in zip(members, profiles, strict=True)]
        sent = self.reader.sent_pairs(subscriber_ids, list(pool.papers), window.after)
        excluded: dict[int, set[str]] = {}
        for subscriber_id, paper_id in sent:
            excluded.setdefault(subscriber_id, set()).add(paper_id)
        for job, profile in members:  # a paper they said something of is one they have seen
            said = {paper for paper, _ in profile.feedback if paper in pool.papers}
            if said:
                excluded.setdefault(job.subscriber.id, set()).update(said)
        widened = [
            replace(
                profile,
                limit=profile.limit + len(excluded.get(job.subscriber.id, ())),
                related=profile.related + len(excluded.get(job.subscriber.id, ())) if profile.related else 0,
            )
            for job, profile in members
        ]
        profile_set = ProfileSet.build(widened)
        near, titles = self._near(pool, profile_set)
        ranking = rank(index, profile_set, near)
        views = {}
        for number, (job, profile) in enumerate(members):
            trending = self.options.trending_papers if job.subscriber.trending_section else 0
            chosen = select(index, ranking[number], profile, excluded.get(job.subscriber.id, set()), trending)
            for pick in (*chosen.main, *chosen.trending):
                paper_id = index.docs[pick.doc].id
                if paper_id not in views:
                    views[paper_id] = paper_view(pool.papers[paper_id], index.docs[pick.doc])
            picks = [(index.docs[p.doc].id, p, "main", profile.liked_for(p)) for p in chosen.main]
            picks += [(index.docs[p.doc].id, p, "trending", None) for p in chosen.trending]
            yield Composed(
                job,
                window,
                profile,
                items(index, chosen.main, profile, views, pool.explained, titles),
                items(index, chosen.trending, profile, views, pool.explained),
                picks,
                papers=pool.since(job.previous_until),
            )

    def recompose(self, job: Job, stored: Sequence[StoredPick]) -> Composed:
        """A composed digest again, from the papers its ledger row recorded (for a retry, or to view
        it in the browser)."""
        profile = profile_of(job.subscriber, strict=False)
        lines = profile.lines
        liked_ids = sorted({row.liked_paper_id for row in stored if row.liked_paper_id})
        papers = self.reader.papers_by_id([*(row.paper_id for row in stored), *liked_ids])
        stored = [row for row in stored if row.paper_id in papers]
        profile = replace(profile, feedback=tuple((paper, 1) for paper in liked_ids))
        liked = {paper: readable(papers[paper].title) for paper in liked_ids if paper in papers}
        pool = self.pool([papers[row.paper_id] for row in stored])
        atoms = [atom for line in lines for atom in line.atoms]
        corpus = self._corpus_for(pool, atoms)
        index = build_index(pool.docs, corpus, self.weights, atoms, self._analysed(pool))
        views = {doc.id: paper_view(papers[doc.id], doc) for doc in pool.docs}
        main, trending = [], []
        for number, row in enumerate(stored):
            line = row.line if row.line is not None and row.line < len(lines) else None
            near = liked_ids.index(row.liked_paper_id) if row.liked_paper_id else None
            pick = Pick(number, row.score, row.relevance, row.trending, line, near)
            (trending if row.section == "trending" else main).append(pick)
        return Composed(
            job,
            None,
            profile,
            items(index, main, profile, views, liked=liked),
            items(index, trending, profile, views),
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
        has_interests=bool(composed.profile.lines or composed.profile.seeds),
    )
