"""SQLAlchemy 2.x models: what is stored. Schema changes go through Alembic (migrations/)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from digest.model.ledger import CLAIMABLE as CLAIMABLE_STATUSES

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware, on SQLite (which keeps no zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: digest stores timezone-aware UTC timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: UTCDateTime(),
    }


class Source(Base):
    """A listing we fetch: its kind, URL, and how the last fetches went."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    url: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_fetched_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_new_at: Mapped[datetime | None]  # when a fetch last brought an item it had never listed
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class Paper(Base):
    """One paper, however many sources list it. ``id`` is the arXiv id without version, else a URL."""

    __tablename__ = "papers"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int | None]
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list[str]] = mapped_column(default=list)
    published: Mapped[date | None] = mapped_column(Date)
    abs_url: Mapped[str] = mapped_column(Text)
    pdf_url: Mapped[str | None] = mapped_column(Text)
    hf_url: Mapped[str | None] = mapped_column(Text)
    categories: Mapped[list[str]] = mapped_column(default=list)
    github_repo: Mapped[str | None] = mapped_column(Text)
    project_page: Mapped[str | None] = mapped_column(Text)
    ai_keywords: Mapped[list[str]] = mapped_column(default=list)
    ai_summary: Mapped[str | None] = mapped_column(Text)  # Hugging Face's one-line summary
    first_seen_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    # How far the stored title and abstract are believed (digest.model.source.text_authority).
    text_authority: Mapped[int] = mapped_column(default=1, server_default="1")
    # False while only a reader's library names the paper: no digest takes it for new until a
    # source lists it, which makes that its first-seen time.
    listed: Mapped[bool] = mapped_column(default=True, server_default=true())

    listings: Mapped[list[Listing]] = relationship(back_populates="paper", passive_deletes=True)


class CorpusTerm(Base):
    """How many stored papers hold ``stem`` in their title or abstract: the document frequency
    behind IDF, kept as papers are stored or their text changes (digest.store.corpus)."""

    __tablename__ = "corpus_terms"

    stem: Mapped[str] = mapped_column(Text, primary_key=True)
    papers: Mapped[int]


class CorpusDefinition(Base):
    """How many stored papers define the acronym ``short`` as ``long`` (their stems, joined by
    spaces), written ``short_text`` and ``long_text``: what the learned acronyms come from."""

    __tablename__ = "corpus_definitions"

    short: Mapped[str] = mapped_column(Text, primary_key=True)
    long: Mapped[str] = mapped_column(Text, primary_key=True, index=True)
    short_text: Mapped[str] = mapped_column(Text, primary_key=True)
    long_text: Mapped[str] = mapped_column(Text, primary_key=True)
    papers: Mapped[int]


class CorpusTotal(Base):
    """A count over the whole corpus; ``name`` "papers" is the number of stored papers."""

    __tablename__ = "corpus_totals"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int]


class PaperText(Base):
    """Source S's version of paper P's text, as S last listed it (kept whatever the paper shows)."""

    __tablename__ = "paper_texts"

    paper_id: Mapped[str] = mapped_column(Text, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int | None]
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors: Mapped[list[str]] = mapped_column(default=list)
    seen_at: Mapped[datetime]


class Listing(Base):
    """Source S listed paper P on date D, at this rank, with this arXiv announce type."""

    __tablename__ = "listings"
    __table_args__ = (
        UniqueConstraint("source_id", "paper_id", "listed_on"),
        Index(None, "listed_on"),
        Index(None, "paper_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    paper_id: Mapped[str] = mapped_column(Text, ForeignKey("papers.id", ondelete="CASCADE"))
    listed_on: Mapped[date] = mapped_column(Date)
    rank: Mapped[int | None]
    announce_type: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime]

    paper: Mapped[Paper] = relationship(back_populates="listings")


class MetricSnapshot(Base):
    """Upvotes, comments, GitHub stars and trending place of a paper at one moment: the trending signal
    over time."""

    __tablename__ = "metric_snapshots"
    __table_args__ = (Index(None, "paper_id", "taken_at"), Index(None, "source_id", "taken_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[str] = mapped_column(Text, ForeignKey("papers.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    taken_at: Mapped[datetime]
    upvotes: Mapped[int | None]
    comments: Mapped[int | None]
    github_stars: Mapped[int | None]
    trending_rank: Mapped[int | None]  # place in Hugging Face's trending order, from a sort=trending source


class FetchLog(Base):
    """One fetch of one source: when, what HTTP said, what it brought, what went wrong."""

    __tablename__ = "fetch_log"
    __table_args__ = (Index(None, "source_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    http_status: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(20))
    seen: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    # Items of the source's current listing it had never listed: 0 on a re-served batch. Only
    # fetches of the current listing count (a fetch for a given date is a back-fill).
    fresh: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)


class Subscriber(Base):
    """Someone who gets the digest: where, when, and what they care about (interest lines)."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # a SubscriberStatus
    interests: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str] = mapped_column(Text, default="UTC")
    send_hour: Mapped[int] = mapped_column(Integer, default=7)
    frequency: Mapped[str] = mapped_column(String(10), default="daily")
    weekly_day: Mapped[str | None] = mapped_column(String(3))
    max_papers: Mapped[int] = mapped_column(Integer, default=10)
    min_score: Mapped[float] = mapped_column(Float, default=0.0)
    trending_section: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    hard_bounces: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bounced_at: Mapped[datetime | None]  # the last hard bounce, at send time or reported later


CLAIMABLE = text("status IN (" + ", ".join(f"'{status}'" for status in CLAIMABLE_STATUSES) + ")")


class Delivery(Base):
    """The ledger: one row per subscriber and digest date, whatever happens to it.

    ``status`` is a ``DeliveryStatus`` (see digest.model.ledger for the moves between them):
    pending, sending (claimed until ``lease_until``), sent, skipped (nothing to send), superseded,
    failed-temporary (retried from ``next_attempt_at`` until ``give_up_at``) or failed-permanent.
    Once the papers are chosen, ``papers_after`` and ``papers_until`` bound the first-seen times of
    the papers it could hold; the next digest takes papers first seen after this one's ``papers_until``.
    The unique (subscriber, date) pair is what makes a digest go out at most once a day.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "digest_date"),
        # What senders claim, in id order: a small index however long the ledger grows.
        Index("ix_deliveries_claimable", "id", postgresql_where=CLAIMABLE, sqlite_where=CLAIMABLE),
        Index(None, "digest_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    digest_date: Mapped[date] = mapped_column(Date)
    papers_after: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    papers_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    give_up_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    smtp_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # What a report that came back by mail after the send said: "bounced: …", "delayed: …", "complaint: …"
    report: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime | None]

    papers: Mapped[list[DeliveryPaper]] = relationship(
        back_populates="delivery", passive_deletes=True, order_by="DeliveryPaper.position"
    )


class DeliveryPaper(Base):
    """A paper in a digest, where it stood and why: what "never sent before" and "view in browser" read."""

    __tablename__ = "delivery_papers"
    __table_args__ = (Index(None, "paper_id"),)

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    paper_id: Mapped[str] = mapped_column(Text, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(10), default="main")
    score: Mapped[float] = mapped_column(Float)
    relevance: Mapped[float] = mapped_column(Float)
    trending: Mapped[float] = mapped_column(Float)
    line: Mapped[int | None]
    # For a related paper (matched by no line): the paper the subscriber liked that it is near.
    liked_paper_id: Mapped[str | None] = mapped_column(Text)

    delivery: Mapped[Delivery] = relationship(back_populates="papers")


class Token(Base):
    """A link token; only its SHA-256 is stored. Digest mails carry a ``manage`` token of their delivery;
    a ``confirm`` token (single use) carries in ``payload`` the preferences its sign-up asked for."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class InboundMessage(Base):
    """A message that came in (a report, an unsubscribe, commands), kept so that one handed over
    twice is acted on once: ``key`` is the SHA-256 of its Message-ID (of the whole message when it
    has none). ``answered_at`` says when an answer went to ``sender``."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    sender: Mapped[str | None] = mapped_column(Text, index=True)
    role: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None]


class Feedback(Base):
    """What a subscriber said of a paper: more like this (+1) or less like this (-1). One row per
    (subscriber, paper), the latest word; none when they said nothing or took it back."""

    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("value IN (-1, 1)", name="value"),)

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    paper_id: Mapped[str] = mapped_column(
        Text, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    value: Mapped[int] = mapped_column(SmallInteger)
    origin: Mapped[str] = mapped_column(String(20))  # a FeedbackOrigin: where it was said (cli)
    updated_at: Mapped[datetime]
