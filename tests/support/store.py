"""Filling and reading a test's database: captured listings, subscribers, sends, the ledger, the
outbox, and the use cases' context over it."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.deliver.sender import Sender, Summary
from digest.fetch.http import Fetcher
from digest.ingest.scrape import scrape
from digest.mail.transports import transport_for
from digest.model.time import system_clock
from digest.store import schema
from digest.store.engine import Database
from digest.store.models import Delivery, Paper, Source, Subscriber
from digest.usecases.context import Context
from tests.support.data import HF_PAGE, INTERESTS, NOW


def migrated_sessions(url: str) -> sessionmaker[Session]:
    """Sessions on the database at ``url``, migrated to the newest schema."""
    database = Database.open(url)
    schema.upgrade(database.engine)
    return database.sessions


def ingest_fixture(
    sessions: sessionmaker[Session], path: Path = HF_PAGE, seen: datetime | None = None
) -> None:
    """Store a captured listing as a source's fetch; its papers count as first seen at ``seen``."""
    with sessions.begin() as session:
        source = Source(
            name=path.stem[:90],
            kind="hf-page"
            if path.suffix == ".html"
            else "arxiv-api"
            if "arxiv_api" in path.name
            else "hf-daily",
            url=str(path),
            created_at=NOW,
        )
        session.add(source)
    with Fetcher(Settings(host_min_interval=0)) as fetcher:
        [report] = scrape(Database(sessions.kw["bind"]), fetcher, [source], system_clock)
    assert report.status == "ok"
    with sessions.begin() as session:
        ids = [
            paper.id
            for paper in session.scalars(select(Paper).where(Paper.updated_at == Paper.first_seen_at))
        ]
        session.execute(
            update(Paper).where(Paper.id.in_(ids)).values(first_seen_at=seen or NOW - timedelta(hours=2))
        )


def add_subscriber(sessions: sessionmaker[Session], email_address: str = "ada@example.org", **fields) -> int:
    values = {
        "status": "active",
        "interests": INTERESTS,
        "timezone": "UTC",
        "send_hour": 7,
        "frequency": "daily",
        "max_papers": 5,
        "min_score": 0.0,
        "trending_section": True,
        **fields,
    }
    values.setdefault("created_at", NOW - timedelta(days=2))
    with sessions.begin() as session:
        subscriber = Subscriber(email=email_address, updated_at=values["created_at"], **values)
        session.add(subscriber)
        session.flush()
        return subscriber.id


def context(
    settings: Settings, sessions: sessionmaker[Session], clock: Callable[[], datetime] = system_clock
) -> Context:
    """The use cases' context over the test's database, on ``clock``."""
    return Context(settings, clock, Database(sessions.kw["bind"]))


def send(settings: Settings, sessions: sessionmaker[Session], now: datetime = NOW) -> Summary:
    with transport_for(settings) as transport:
        return Sender(settings, Database(sessions.kw["bind"]), transport).run(now)


def outbox(settings: Settings) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(Path(settings.outbox_dir).glob("*.eml"))
    ]


def ledger(sessions: sessionmaker[Session]) -> list[Delivery]:
    with sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))
