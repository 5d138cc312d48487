"""Keeping the database in shape: migrations, copying it, readiness, and the daily clean-up."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from digest.errors import DigestError, SchemaOutOfDate, UsageError
from digest.mail.transports import transport_for
from digest.score.index import corpus_counts
from digest.store import copy as copier
from digest.store import corpus, ledger, locks, papers, schema, sources, subscribers, tokens
from digest.store.engine import Database
from digest.usecases.context import Context

log = logging.getLogger(__name__)


def upgrade(ctx: Context, revision: str = "head") -> tuple[str, str | None, str | None]:
    """Migrate the database to ``revision``; returns (where, revision before, revision after)."""
    engine = ctx.unchecked_database.engine
    before = schema.current_revision(engine)
    schema.upgrade(engine, revision)
    return ctx.unchecked_database.where, before, schema.current_revision(engine)


def downgrade(ctx: Context, revision: str) -> str | None:
    """Migrate the database back to ``revision``; returns the revision it is at after."""
    engine = ctx.unchecked_database.engine
    schema.downgrade(engine, revision)
    return schema.current_revision(engine)


def revisions(ctx: Context) -> tuple[str | None, str]:
    """(the database's schema revision, the code's)."""
    return schema.current_revision(ctx.unchecked_database.engine), schema.head_revision()


def new_revision(ctx: Context, message: str) -> str:
    """For developers: write a migration from the models' changes; returns its path."""
    return schema.new_revision(ctx.database.engine, message)


class AlreadyRunning(DigestError):
    """Another scheduler holds this SQLite database."""

    exit_code = 4


def claim_scheduling(ctx: Context) -> IO[str] | None:
    """On SQLite, become the one scheduler of the database (a lock file beside it, held until
    release_scheduling or the end of the process); raises AlreadyRunning naming the process that
    is. None on PostgreSQL, where any number may run."""
    database = ctx.database.sqlite_file
    if database is None:
        return None
    try:
        return locks.take_scheduler_lock(database)
    except locks.SchedulerLockHeld as held:
        raise AlreadyRunning(
            f"Another digest scheduler (pid {held.holder}) is running on the SQLite database {database}; "
            "on SQLite only one may run. Stop that one first; more web fronts can run beside it "
            "with `digest serve --no-scheduler`; to run several schedulers, move to PostgreSQL."
        ) from None


def release_scheduling(handle: IO[str]) -> None:
    locks.release_scheduler_lock(handle)


def copy_to(ctx: Context, target_url: str, progress: Callable[[str, int], None]) -> tuple[str, int]:
    """Copy every row into the new database at ``target_url``; returns (where, rows copied). On
    SQLite the copy holds the scheduler lock, so no scheduler runs while it copies: raises
    UsageError naming the one that does."""
    source = ctx.unchecked_database
    held = None
    if source.sqlite_file is not None:
        try:
            held = locks.take_scheduler_lock(source.sqlite_file)
        except locks.SchedulerLockHeld as running:
            raise UsageError(
                f"A digest scheduler (pid {running.holder}) is running on {source.sqlite_file}: stop it "
                "(and any digest timers) before copying, so that nothing changes while it copies."
            ) from None
    target = Database.open(target_url)
    try:
        copied = copier.copy(source.engine, target.engine, progress=progress)
        return target.where, sum(copied.values())
    finally:
        target.dispose()
        if held is not None:
            locks.release_scheduler_lock(held)


def check_database(ctx: Context) -> None:
    """Raise DatabaseError or SchemaOutOfDate, each saying what to do, unless the database answers
    with the current schema."""
    schema.require_current_schema(ctx.unchecked_database.engine)


def check_mail_settings(ctx: Context) -> None:
    """Raise ConfigError, saying what to set, unless mail can be sent as the settings say."""
    transport_for(ctx.settings).close()
    ctx.identity  # noqa: B018 - reads the DKIM key, raising ConfigError when it cannot sign


def readiness(ctx: Context) -> str:
    """``ok``, or why the database is not ready (for /readyz)."""
    try:
        check_database(ctx)
    except SchemaOutOfDate:
        return "schema out of date: run `digest db upgrade`"
    except Exception:
        log.warning("readiness: the database is not usable", exc_info=True)
        return "unreachable (the service's log says why)"
    return "ok"


def backlog(ctx: Context) -> int:
    """Digests due now and not yet sent (for the metrics)."""
    with ctx.session() as session:
        return ledger.backlog(session, ctx.now())


def clean_up(ctx: Context, now: datetime) -> dict[str, int]:
    """Delete sign-ups never confirmed (pending, every confirmation link expired, no digest), then
    expired tokens and fetch log entries older than ``fetch_log_days``, as of ``now``. Returns the
    counts deleted."""
    settings = ctx.settings
    with ctx.database.begin() as session:
        unconfirmed = subscribers.delete_unconfirmed(session, now)
        expired = tokens.delete_expired(session, now, settings.link_days)
        logs = sources.delete_fetch_log_before(session, now - timedelta(days=settings.fetch_log_days))
    return {"unconfirmed": unconfirmed, "tokens": expired, "fetch_log": logs}


@dataclass(frozen=True, slots=True)
class CorpusCheck:
    """The stored corpus statistics against a full recount of the stored papers: how many papers
    each counts, and how many stems and acronym definitions the two count differently."""

    papers: int
    counted: int
    terms: int
    terms_wrong: int
    definitions: int
    definitions_wrong: int

    @property
    def agrees(self) -> bool:
        return self.papers == self.counted and not (self.terms_wrong or self.definitions_wrong)


def check_corpus(ctx: Context) -> CorpusCheck:
    """Count the stored papers' statistics again from their text and compare with the kept ones.
    Reads every stored paper; writes nothing."""
    with ctx.session() as session:
        recount = corpus_counts(papers.paper_texts(session))
        counted, terms, definitions = corpus.everything(session)
    return CorpusCheck(
        recount.papers,
        counted,
        len(recount.df),
        _differences(recount.df, terms),
        len(recount.definitions),
        _differences(recount.definitions, definitions),
    )


def rebuild_corpus(ctx: Context) -> CorpusCheck:
    """Count the corpus statistics again from every stored paper, in one transaction (papers stored
    meanwhile wait for it), and return the check of what it wrote."""
    with ctx.database.begin() as session:
        corpus.clear(session)
        corpus.add(session, corpus_counts(papers.paper_texts(session)))
    return check_corpus(ctx)


def _differences(expected: Mapping[Any, int], stored: Mapping[Any, int]) -> int:
    return sum(1 for key in expected.keys() | stored.keys() if expected.get(key, 0) != stored.get(key, 0))
