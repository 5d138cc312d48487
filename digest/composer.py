"""Choose each digest's papers from the database, and preview a digest. Reads, never writes.

Groups jobs (subscriber, date, where their previous digest stopped) by window, builds one scoring
index per window and ranks everyone in it at once; papers a subscriber was sent before are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import compose, mailer, queries, scoring
from digest.config import Settings
from digest.errors import UsageError
from digest.interests import Atom, InterestError, parse_interests
from digest.models import DeliveryPaper, Paper, Subscriber
from digest.render import Renderer

PREVIEW_TOKEN = "preview"


def utc(moment: datetime) -> datetime:
    """``moment`` as aware UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def weights(settings: Settings) -> scoring.Weights:
    return scoring.Weights(
        title=settings.title_weight,
        abstract=settings.abstract_weight,
        k1=settings.bm25_k1,
        b=settings.bm25_b,
        relevance=settings.relevance_weight,
        trending=settings.trending_weight,
        upvotes=settings.upvotes_weight,
        comments=settings.comments_weight,
        stars=settings.stars_weight,
    )


def load_docs(session: Session, papers: Sequence[Paper]) -> list[scoring.Doc]:
    """``papers`` with their latest metrics, as scoring reads them."""
    metrics = queries.latest_metrics(session, [paper.id for paper in papers])
    return [
        scoring.Doc(
            paper.id,
            paper.title,
            paper.abstract,
            tuple(paper.authors),
            tuple(paper.categories),
            *metrics.get(paper.id, (None, None, None)),
        )
        for paper in papers
    ]


def paper_view(paper: Paper, doc: scoring.Doc) -> compose.PaperView:
    return compose.PaperView(
        id=paper.id,
        title=paper.title,
        url=paper.abs_url,
        authors=tuple(paper.authors),
        upvotes=doc.upvotes,
        comments=doc.comments,
        pdf_url=paper.pdf_url,
        code_url=paper.github_repo,
        project_url=paper.project_page,
        hf_url=paper.hf_url,
    )


@dataclass
class Job:
    """One digest to compose: for whom, for which date, and where their previous digest stopped."""

    subscriber: Subscriber
    digest_date: date
    previous_until: datetime | None
    delivery_id: int | None = None


@dataclass
class Composed:
    """A job's chosen papers, explained; ``digest`` is None when there is nothing to send."""

    job: Job
    window: compose.Window | None
    profile: scoring.Profile
    main: tuple[compose.Item, ...]
    trending: tuple[compose.Item, ...]
    picks: list[tuple[str, scoring.Pick, str]] = field(default_factory=list)  # (paper id, pick, section)
    error: str | None = None

    @property
    def empty(self) -> bool:
        return not self.main and not self.trending


@dataclass
class _Day:
    """The papers of one window, indexed for scoring with every atom asked of it so far."""

    papers: dict[str, Paper]
    docs: list[scoring.Doc]
    atoms: dict[tuple[str, tuple[str, ...]], Atom] = field(default_factory=dict)
    index: scoring.Index | None = None
    explained: dict[tuple[int, str | None], compose.Why] = field(default_factory=dict)  # for this index


class Composer:
    """Chooses papers for jobs. Reads the database, writes nothing. Reuse it across batches of a run:
    the corpus and each window's index are built once."""

    def __init__(self, settings: Settings, session: Session, corpus: scoring.Corpus | None = None) -> None:
        self.settings = settings
        self.weights = weights(settings)
        self.session = session
        self._corpus: scoring.Corpus | None = corpus  # given by a caller that keeps one across requests
        self._days: dict[compose.Window, _Day] = {}
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
    def corpus(self) -> scoring.Corpus:
        if self._corpus is None:
            self._corpus = scoring.corpus_from(queries.paper_texts(self.session))
        return self._corpus

    def compose(self, jobs: Sequence[Job], at: datetime) -> list[Composed]:
        """Choose each job's papers from those first seen in its window, leaving out any the
        subscriber was sent before."""
        until = queries.newest_first_seen(self.session, at)
        results: list[Composed] = []
        groups: dict[compose.Window | None, list[tuple[Job, scoring.Profile]]] = {}
        for job in jobs:
            subscriber = job.subscriber
            try:
                lines = parse_interests(subscriber.interests)
            except InterestError as exc:
                error = f"{exc}; fix them with `digest subscribers edit {subscriber.email} --interests …`"
                results.append(Composed(job, None, scoring.Profile(()), (), (), error=error))
                continue
            profile = scoring.Profile(lines, limit=subscriber.max_papers, min_score=subscriber.min_score)
            window = (
                None
                if until is None
                else compose.window_for(
                    at,
                    until,
                    subscriber.frequency,
                    job.previous_until,
                    self.settings.catch_up_days,
                    subscriber.confirmed_at or subscriber.created_at,
                )
            )
            if window is not None and window.after >= window.until:
                window = None
            groups.setdefault(window, []).append((job, profile))
        for window, members in groups.items():
            if window is None:
                results.extend(Composed(job, None, profile, (), ()) for job, profile in members)
                continue
            results.extend(self._compose_window(window, members))
        order = {id(job): number for number, job in enumerate(jobs)}
        results.sort(key=lambda composed: order[id(composed.job)])
        return results

    def _day(self, window: compose.Window, profiles: Sequence[scoring.Profile]) -> tuple[_Day, scoring.Index]:
        """The window's papers and an index that knows every atom of ``profiles`` (rebuilt when a
        batch asks for a phrase, author or category the index was built without)."""
        day = self._days.get(window)
        if day is None:
            papers = queries.papers_first_seen(self.session, window.after, window.until)
            day = self._days[window] = _Day(
                {paper.id: paper for paper in papers}, load_docs(self.session, papers)
            )
        wanted = {atom.key: atom for profile in profiles for line in profile.lines for atom in line.atoms}
        if day.index is None or not wanted.keys() <= day.atoms.keys():
            day.atoms.update(self._expected)
            day.atoms.update(wanted)
            day.index = scoring.build_index(day.docs, self.corpus, self.weights, day.atoms.values())
            day.explained = {}
        return day, day.index

    def _compose_window(
        self, window: compose.Window, members: list[tuple[Job, scoring.Profile]]
    ) -> Iterator[Composed]:
        day, index = self._day(window, [profile for _, profile in members])
        subscriber_ids = [job.subscriber.id for job, _ in members]
        sent = queries.sent_pairs(self.session, subscriber_ids, list(day.papers), window.after)
        excluded: dict[int, set[str]] = {}
        for subscriber_id, paper_id in sent:
            excluded.setdefault(subscriber_id, set()).add(paper_id)
        widened = [
            scoring.Profile(
                profile.lines,
                limit=profile.limit + len(excluded.get(job.subscriber.id, ())),
                min_score=profile.min_score,
            )
            for job, profile in members
        ]
        ranking = scoring.rank(index, scoring.ProfileSet.build(widened))
        views = {}
        for number, (job, profile) in enumerate(members):
            trending = self.settings.trending_papers if job.subscriber.trending_section else 0
            chosen = compose.select(
                index, ranking[number], profile, excluded.get(job.subscriber.id, set()), trending
            )
            for pick in (*chosen.main, *chosen.trending):
                paper_id = index.docs[pick.doc].id
                if paper_id not in views:
                    views[paper_id] = paper_view(day.papers[paper_id], index.docs[pick.doc])
            picks = [(index.docs[p.doc].id, p, "main") for p in chosen.main]
            picks += [(index.docs[p.doc].id, p, "trending") for p in chosen.trending]
            yield Composed(
                job,
                window,
                profile,
                compose.items(index, chosen.main, profile, views, day.explained),
                compose.items(index, chosen.trending, profile, views, day.explained),
                picks,
            )

    def recompose(self, job: Job, stored: Sequence[DeliveryPaper]) -> Composed:
        """A composed digest again, from the papers its ledger row recorded (for a retry)."""
        try:
            lines = parse_interests(job.subscriber.interests)
        except InterestError:
            lines = ()
        profile = scoring.Profile(lines, limit=job.subscriber.max_papers, min_score=job.subscriber.min_score)
        ids = [row.paper_id for row in stored]
        papers = {paper.id: paper for paper in self.session.scalars(select(Paper).where(Paper.id.in_(ids)))}
        stored = [row for row in stored if row.paper_id in papers]
        docs = load_docs(self.session, [papers[row.paper_id] for row in stored])
        atoms = [atom for line in lines for atom in line.atoms]
        index = scoring.build_index(docs, self.corpus, self.weights, atoms)
        views = {doc.id: paper_view(papers[doc.id], doc) for doc in docs}
        main, trending = [], []
        for number, row in enumerate(stored):
            line = row.line if row.line is not None and row.line < len(lines) else None
            pick = scoring.Pick(number, row.score, row.relevance, row.trending, line)
            (trending if row.section == "trending" else main).append(pick)
        return Composed(
            job,
            None,
            profile,
            compose.items(index, main, profile, views),
            compose.items(index, trending, profile, views),
        )


def links(settings: Settings, token: str) -> compose.Links:
    base = settings.base_url
    return compose.Links(f"{base}/d/{token}", f"{base}/preferences/{token}", f"{base}/unsubscribe/{token}")


def digest_of(composed: Composed, settings: Settings, token: str) -> compose.Digest:
    job = composed.job
    return compose.Digest(
        email=job.subscriber.email,
        digest_date=job.digest_date,
        frequency=job.subscriber.frequency,
        items=composed.main,
        trending=composed.trending,
        links=links(settings, token),
        has_interests=bool(composed.profile.lines),
    )


@dataclass
class Preview:
    composed: Composed
    digest: compose.Digest
    subject: str
    text: str
    html: str
    message: bytes


def preview(
    settings: Settings,
    session: Session,
    subscriber: Subscriber,
    digest_date: date | None = None,
    now: datetime | None = None,
    composer: Composer | None = None,
) -> Preview:
    """What ``subscriber`` would get for ``digest_date`` (default: their local today), rendered with
    placeholder links. Reads the database, writes nothing. ``composer`` may be shared by several
    previews of one run (it keeps the corpus and the windows' indexes). Raises UsageError for an
    unknown time zone."""
    now = utc(now or datetime.now(UTC))
    try:
        here = zone(subscriber.timezone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise UsageError(
            f"{subscriber.email} has an unknown time zone {subscriber.timezone!r}; "
            "fix it with `digest subscribers edit --tz`."
        ) from None
    today = now.astimezone(here).date()
    day = digest_date or today
    at = now if day >= today else datetime.combine(day + timedelta(days=1), datetime.min.time(), here)
    at = min(now, utc(at))
    previous = queries.previous_papers_until(session, [subscriber.id], day) if subscriber.id else {}
    job = Job(subscriber, day, previous.get(subscriber.id))
    [composed] = (composer or Composer(settings, session)).compose([job], at)
    digest = digest_of(composed, settings, PREVIEW_TOKEN)
    rendered = Renderer(settings.mail_from_name).render(digest)
    sender = mailer.sender_for(settings)
    envelope = mailer.Envelope(
        subscriber.email, mailer.new_message_id(sender.domain, "preview"), now, digest.links.unsubscribe
    )
    message = mailer.build_message(sender, envelope, rendered.subject, rendered.text, rendered.html)
    return Preview(composed, digest, rendered.subject, rendered.text, rendered.html, message)
