"""The daily send: who is due, claim ledger rows, compose, render, send, record. Ledger I/O lives here.

Exactly once comes from the ledger: one ``deliveries`` row per (subscriber, digest date), unique.
A sender claims rows (pending, due for a retry, or left ``sending`` by a process that died: its lease
ran out) by setting them ``sending`` with a lease, chooses and stores the papers, sends, and marks
each row the moment the transport answers. The only way a digest goes out twice is a crash after
the server accepted it and before that mark; such rows are resent with the same Message-ID, and
the takeover is logged as a possible duplicate.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from digest import compose, mailer, queries, scoring
from digest.config import Settings
from digest.interests import Atom, InterestError, parse_interests
from digest.models import Delivery, DeliveryPaper, Paper, Subscriber, Token
from digest.render import Renderer
from digest.subscribers import DAYS
from digest.tokens import new_token

log = logging.getLogger(__name__)

STATUSES = ("pending", "sending", "sent", "skipped", "failed-temporary", "failed-permanent")
MAX_RETRY_DELAY = 3600.0
PREVIEW_TOKEN = "preview"


def utc(moment: datetime) -> datetime:
    """``moment`` as aware UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_date_if_due(subscriber: Subscriber, now: datetime) -> date | None:
    """The subscriber's local date when their send hour has passed there (and, for weekly ones, it is
    their day); else None."""
    local = now.astimezone(_zone(subscriber.timezone))
    if local.hour < subscriber.send_hour:
        return None
    if subscriber.frequency == "weekly" and DAYS[local.weekday()] != subscriber.weekly_day:
        return None
    return local.date()


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


# --- composing ---------------------------------------------------------------------------------


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


class Composer:
    """Chooses papers for jobs. Reads the database, writes nothing. Reuse it across batches of a run:
    the corpus and each window's index are built once."""

    def __init__(self, settings: Settings, session: Session) -> None:
        self.settings = settings
        self.weights = weights(settings)
        self.session = session
        self._corpus: scoring.Corpus | None = None
        self._days: dict[compose.Window, _Day] = {}

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
                    at, until, subscriber.frequency, job.previous_until, self.settings.catch_up_days
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
            day.atoms.update(wanted)
            day.index = scoring.build_index(day.docs, self.corpus, self.weights, day.atoms.values())
        return day, day.index

    def _compose_window(
        self, window: compose.Window, members: list[tuple[Job, scoring.Profile]]
    ) -> Iterator[Composed]:
        day, index = self._day(window, [profile for _, profile in members])
        subscriber_ids = [job.subscriber.id for job, _ in members]
        sent = queries.sent_pairs(self.session, subscriber_ids, list(day.papers))
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
                compose.items(index, chosen.main, profile, views),
                compose.items(index, chosen.trending, profile, views),
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


# --- the ledger ----------------------------------------------------------------------------------


@dataclass
class Summary:
    """What one send did."""

    planned: int = 0
    sent: int = 0
    skipped: int = 0
    failed_temporary: int = 0
    failed_permanent: int = 0
    possible_duplicates: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.failed_temporary + self.failed_permanent


def plan(session: Session, now: datetime, only: str | None = None) -> int:
    """Add a pending row for every active subscriber who is due at ``now`` and has none for their
    local date. Returns how many were added; commits."""
    query = select(Subscriber).where(Subscriber.status == "active")
    if only is not None:
        query = query.where(Subscriber.email == only)
    due: list[tuple[int, date]] = []
    for subscriber in session.scalars(query):
        day = local_date_if_due(subscriber, now)
        if day is not None:
            due.append((subscriber.id, day))
    if not due:
        return 0
    dates = sorted({day for _, day in due})
    existing = set(
        session.execute(
            select(Delivery.subscriber_id, Delivery.digest_date).where(Delivery.digest_date.in_(dates))
        ).all()
    )
    rows = [
        {
            "subscriber_id": subscriber_id,
            "digest_date": day,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for subscriber_id, day in due
        if (subscriber_id, day) not in existing
    ]
    for chunk in queries.chunked(rows):
        session.execute(
            queries.insert_for(session, Delivery).on_conflict_do_nothing(
                index_elements=["subscriber_id", "digest_date"]
            ),
            list(chunk),
        )
    session.commit()
    return len(rows)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        Delivery.status == "pending",
        and_(Delivery.status == "failed-temporary", Delivery.next_attempt_at <= now),
        and_(Delivery.status == "sending", Delivery.lease_until < now),
    )


def claim(
    session: Session, worker: str, now: datetime, batch: int, lease: float, only: str | None = None
) -> list[tuple[int, str]]:
    """Claim up to ``batch`` rows (pending, due for a retry, or abandoned by a dead sender) for
    ``worker``; returns (id, status before) of each. Commits. Safe with several senders: PostgreSQL
    skips rows another sender has locked, and the update re-checks that each row is still free."""
    query = select(Delivery.id, Delivery.status).where(_claimable(now)).order_by(Delivery.id).limit(batch)
    if only is not None:
        query = query.join(Subscriber).where(Subscriber.email == only)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Delivery)
    found = {row_id: status for row_id, status in session.execute(query)}
    if not found:
        session.commit()
        return []
    claimed = session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(list(found)), _claimable(now))
        .values(
            status="sending",
            claimed_by=worker,
            lease_until=now + timedelta(seconds=lease),
            attempts=Delivery.attempts + 1,
            updated_at=now,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return sorted((row_id, found[row_id]) for row_id in claimed)


def retry_delay(settings: Settings, attempts: int) -> float:
    """Seconds before the next try: retry_delay doubled per attempt, at most an hour, ±10 % jitter."""
    base = min(MAX_RETRY_DELAY, settings.retry_delay * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.9, 1.1)


def default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Sender:
    """Runs sends: plan, then claim, compose, render, send and record batch after batch."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        transport: mailer.Transport,
        *,
        renderer: Renderer | None = None,
        worker: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.transport = transport
        self.renderer = renderer or Renderer(settings.mail_from_name)
        self.sender = mailer.sender_for(settings)
        self.worker = worker or default_worker()
        self.progress = progress or (lambda _message: None)

    def run(self, now: datetime | None = None, only: str | None = None) -> Summary:
        """Send everything due at ``now`` (default: the current time). Returns the counts."""
        now = utc(now or datetime.now(UTC))
        summary = Summary()
        with self.sessions() as session:
            summary.planned = plan(session, now, only)
            composer = Composer(self.settings, session)
            while True:
                claimed = claim(
                    session, self.worker, now, self.settings.claim_batch, self.settings.claim_lease, only
                )
                if not claimed:
                    break
                self._batch(session, composer, claimed, now, summary)
        return summary

    def _batch(
        self,
        session: Session,
        composer: Composer,
        claimed: list[tuple[int, str]],
        now: datetime,
        summary: Summary,
    ) -> None:
        ids = [row_id for row_id, _ in claimed]
        taken_over = {row_id for row_id, status in claimed if status == "sending"}
        rows = session.execute(
            select(Delivery, Subscriber)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.id)
        ).all()
        fresh = [(delivery, subscriber) for delivery, subscriber in rows if delivery.papers_until is None]
        previous = (
            queries.previous_papers_until(
                session, [subscriber.id for _, subscriber in fresh], max((d.digest_date for d, _ in rows))
            )
            if fresh
            else {}
        )
        jobs = [
            Job(subscriber, delivery.digest_date, previous.get(subscriber.id), delivery.id)
            for delivery, subscriber in fresh
        ]
        composed = {c.job.delivery_id: c for c in composer.compose(jobs, now)}
        for delivery, subscriber in rows:
            if delivery.papers_until is not None:
                job = Job(subscriber, delivery.digest_date, None, delivery.id)
                composed[delivery.id] = composer.recompose(job, delivery.papers)
        outgoing: list[mailer.Outgoing] = []
        by_id = {delivery.id: (delivery, subscriber) for delivery, subscriber in rows}
        for delivery, subscriber in rows:
            result = composed[delivery.id]
            if delivery.id in taken_over:
                summary.possible_duplicates.append(delivery.message_id or "")
                log.warning(
                    "delivery %d (%s, %s) was left mid-send by a sender that stopped (attempt %d); "
                    "resending it: if the server had accepted it before the stop, this is a duplicate "
                    "with the same Message-ID %s",
                    delivery.id,
                    subscriber.email,
                    delivery.digest_date,
                    delivery.attempts - 1,
                    delivery.message_id,
                )
            if result.error is not None:
                self._finish(
                    delivery, subscriber, now, mailer.Outcome(delivery.id, False, True, None, result.error)
                )
                summary.failed_permanent += 1
                continue
            if delivery.papers_until is None:
                self._store_picks(session, delivery, result, now)
            if result.empty and not self.settings.send_empty_digest:
                delivery.status = "skipped"
                delivery.lease_until = None
                delivery.updated_at = now
                summary.skipped += 1
                continue
            try:
                outgoing.append(self._message(session, delivery, subscriber, result, now))
            except mailer.MessageError as exc:
                self._finish(
                    delivery, subscriber, now, mailer.Outcome(delivery.id, False, True, None, str(exc))
                )
                summary.failed_permanent += 1
        session.commit()
        for outcome in self.transport.deliver(outgoing):
            delivery, subscriber = by_id[outcome.key]
            self._finish(delivery, subscriber, now, outcome)
            session.commit()
            if delivery.status == "sent":
                summary.sent += 1
            elif delivery.status == "failed-temporary":
                summary.failed_temporary += 1
            else:
                summary.failed_permanent += 1
            self.progress(f"sent {summary.sent}, failed {summary.failed}")

    def _store_picks(self, session: Session, delivery: Delivery, result: Composed, now: datetime) -> None:
        window = result.window
        delivery.papers_after = window.after if window else None
        delivery.papers_until = window.until if window else now
        session.add_all(
            DeliveryPaper(
                delivery_id=delivery.id,
                paper_id=paper_id,
                position=position,
                section=section,
                score=pick.score,
                relevance=pick.relevance,
                trending=pick.trending,
                line=pick.line,
            )
            for position, (paper_id, pick, section) in enumerate(result.picks)
        )

    def _message(
        self, session: Session, delivery: Delivery, subscriber: Subscriber, result: Composed, now: datetime
    ) -> mailer.Outgoing:
        token, hashed = new_token()
        session.add(
            Token(
                token_hash=hashed,
                purpose="manage",
                subscriber_id=subscriber.id,
                delivery_id=delivery.id,
                created_at=now,
            )
        )
        digest = digest_of(result, self.settings, token)
        rendered = self.renderer.render(digest)
        if delivery.message_id is None:
            label = f"{delivery.digest_date:%Y%m%d}.{delivery.id}"
            delivery.message_id = mailer.new_message_id(self.sender.domain, label)
        delivery.subject = rendered.subject
        if delivery.give_up_at is None:
            delivery.give_up_at = now + timedelta(hours=self.settings.retry_deadline)
        envelope = mailer.Envelope(subscriber.email, delivery.message_id, now, digest.links.unsubscribe)
        data = mailer.build_message(self.sender, envelope, rendered.subject, rendered.text, rendered.html)
        return mailer.Outgoing(
            delivery.id,
            self.sender.address,
            mailer.checked_address(subscriber.email),
            delivery.message_id,
            data,
        )

    def _finish(
        self, delivery: Delivery, subscriber: Subscriber, now: datetime, outcome: mailer.Outcome
    ) -> None:
        """Record what became of a row; count hard bounces and suspend after too many."""
        delivery.updated_at = now
        delivery.lease_until = None
        delivery.smtp_code = outcome.code
        if outcome.ok:
            delivery.status = "sent"
            delivery.sent_at = now
            delivery.last_error = None
            delivery.next_attempt_at = None
            subscriber.hard_bounces = 0
            return
        delivery.last_error = outcome.error
        if outcome.permanent:
            delivery.status = "failed-permanent"
            if outcome.code is not None:
                subscriber.hard_bounces += 1
                if (
                    subscriber.hard_bounces >= self.settings.max_hard_bounces
                    and subscriber.status == "active"
                ):
                    subscriber.status = "bounced"
                    subscriber.updated_at = now
                    log.warning(
                        "%s suspended after %d hard bounces in a row; last: %s",
                        subscriber.email,
                        subscriber.hard_bounces,
                        outcome.error,
                    )
            return
        if delivery.give_up_at is not None and now >= delivery.give_up_at:
            delivery.status = "failed-permanent"
            delivery.last_error = (
                f"gave up after {self.settings.retry_deadline:g} h of retries: {outcome.error}"
            )
            return
        delivery.status = "failed-temporary"
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(self.settings, delivery.attempts))


def retry(session: Session, delivery_id: int, now: datetime, deadline_hours: float) -> Delivery | None:
    """Make a failed or skipped row pending again, keeping its papers and Message-ID; commits."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    delivery.status = "failed-temporary" if delivery.papers_until is not None else "pending"
    delivery.next_attempt_at = now
    delivery.give_up_at = now + timedelta(hours=deadline_hours)
    delivery.last_error = None
    delivery.updated_at = now
    session.commit()
    return delivery


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
) -> Preview:
    """What ``subscriber`` would get for ``digest_date`` (default: their local today), rendered with
    placeholder links. Reads the database, writes nothing (the session is rolled back)."""
    now = utc(now or datetime.now(UTC))
    zone = _zone(subscriber.timezone)
    today = now.astimezone(zone).date()
    day = digest_date or today
    at = now if day >= today else datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
    at = min(now, utc(at))
    previous = queries.previous_papers_until(session, [subscriber.id], day) if subscriber.id else {}
    job = Job(subscriber, day, previous.get(subscriber.id))
    [composed] = Composer(settings, session).compose([job], at)
    session.rollback()
    digest = digest_of(composed, settings, PREVIEW_TOKEN)
    rendered = Renderer(settings.mail_from_name).render(digest)
    sender = mailer.sender_for(settings)
    envelope = mailer.Envelope(
        subscriber.email, mailer.new_message_id(sender.domain, "preview"), now, digest.links.unsubscribe
    )
    message = mailer.build_message(sender, envelope, rendered.subject, rendered.text, rendered.html)
    return Preview(composed, digest, rendered.subject, rendered.text, rendered.html, message)
