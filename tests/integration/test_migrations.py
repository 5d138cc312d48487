"""Alembic migrations on SQLite and PostgreSQL: up, down, and agreeing with the models."""

from __future__ import annotations

import os

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, select, text

from digest.cli import cli
from digest.config import Settings
from digest.scheduler import Scheduler
from digest.store import engine as db
from digest.store import schema
from digest.store.models import Base, Source
from digest.usecases.context import Context

TABLES = {
    "sources",
    "papers",
    "listings",
    "metric_snapshots",
    "fetch_log",
    "subscribers",
    "deliveries",
    "delivery_papers",
    "tokens",
}


def test_upgrade_to_head_then_downgrade_to_base(database_url: str) -> None:
    engine = db.make_engine(database_url)
    schema.upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
    assert schema.current_revision(engine) == schema.head_revision()
    schema.downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    assert schema.current_revision(engine) is None
    engine.dispose()


def test_the_freshness_revision_counts_earlier_fetches_new_papers_as_fresh(database_url: str) -> None:
    """Fetch log entries kept from before 0009 give a feed's rhythm and its last new paper."""
    engine = db.make_engine(database_url)
    schema.upgrade(engine, "0008")
    with engine.begin() as connection:
        source = connection.scalar(text("SELECT id FROM sources WHERE name = 'hf-daily'"))
        for day, new in ((1, 5), (2, 0), (3, 7)):
            connection.execute(
                text(
                    "INSERT INTO fetch_log (source_id, url, started_at, status, seen, new, updated)"
                    " VALUES (:source, 'u', :started, 'ok', 9, :new, 0)"
                ),
                {"source": source, "started": f"2026-09-0{day} 08:00:00+00:00", "new": new},
            )
    schema.upgrade(engine)
    with engine.connect() as connection:
        fresh = connection.scalars(text("SELECT fresh FROM fetch_log ORDER BY started_at")).all()
        last_new = connection.scalar(text("SELECT last_new_at FROM sources WHERE id = :id"), {"id": source})
    engine.dispose()
    assert fresh == [5, 0, 7]
    assert str(last_new).startswith("2026-09-03 08:00:00")


def test_models_and_migrations_agree(migrated_url: str) -> None:
    engine = db.make_engine(migrated_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_a_new_database_fetches_hugging_face_daily_papers(sessions) -> None:
    with sessions() as session:
        [source] = session.scalars(select(Source)).all()
    assert (source.name, source.kind, source.enabled) == ("hf-daily", "hf-daily", True)
    assert source.url == "https://huggingface.co/api/daily_papers"


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
    engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": db.SQLITE_BUSY_TIMEOUT_MS}


def test_db_copy_moves_everything_from_sqlite_to_postgresql_and_sending_goes_on(
    tmp_path, postgres_url, mail_settings
) -> None:
    from datetime import timedelta

    from click.testing import CliRunner
    from sqlalchemy import func

    from digest.cli import cli
    from digest.store.models import Delivery, Paper, Subscriber, Token
    from tests.support.data import NOW
    from tests.support.store import add_subscriber, ingest_fixture, send

    sqlite_url = f"sqlite:///{tmp_path / 'digest.db'}"
    source = db.make_engine(sqlite_url)
    schema.upgrade(source)
    sessions = db.session_factory(source)
    ingest_fixture(sessions)
    add_subscriber(sessions)
    settings = mail_settings.model_copy(update={"database_url": sqlite_url})
    assert send(settings, sessions).sent == 1
    target = db.make_engine(postgres_url)
    schema.upgrade(target)

    result = CliRunner().invoke(cli, ["db", "copy", postgres_url], env={"DIGEST_DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result.output

    def counts(engine) -> list[int]:
        with engine.connect() as connection:
            return [
                connection.scalar(select(func.count()).select_from(model))
                for model in (Paper, Subscriber, Delivery, Token, Source)
            ]

    assert counts(target) == counts(source) and counts(target)[0] > 0
    moved = db.session_factory(target)
    add_subscriber(moved, "after@example.org")  # the ids go on past the copied ones
    later = send(
        mail_settings.model_copy(update={"database_url": postgres_url}), moved, NOW + timedelta(days=1)
    )
    assert later.sent >= 1
    again = CliRunner().invoke(cli, ["db", "copy", postgres_url], env={"DIGEST_DATABASE_URL": sqlite_url})
    assert again.exit_code == 2 and "already holds data" in again.output


def test_copying_into_an_unmigrated_target_says_to_migrate_the_target(tmp_path) -> None:
    source_url, target_url = (f"sqlite:///{tmp_path / name}" for name in ("digest.db", "new.db"))
    schema.upgrade(db.make_engine(source_url))
    result = CliRunner().invoke(cli, ["db", "copy", target_url], env={"DIGEST_DATABASE_URL": source_url})
    assert result.exit_code == 3
    assert f"Migrate the target, not this database, then copy again: DIGEST_DATABASE_URL='{target_url}'" in (
        result.output
    )


def test_copying_while_a_scheduler_runs_on_the_sqlite_source_is_refused(tmp_path) -> None:
    source_url, target_url = (f"sqlite:///{tmp_path / name}" for name in ("digest.db", "new.db"))
    schema.upgrade(db.make_engine(source_url))
    schema.upgrade(db.make_engine(target_url))
    scheduler = Scheduler(Context(Settings(database_url=source_url)))
    scheduler.claim()
    try:
        result = CliRunner().invoke(cli, ["db", "copy", target_url], env={"DIGEST_DATABASE_URL": source_url})
    finally:
        scheduler.stop()
    assert result.exit_code == 2 and f"(pid {os.getpid()}) is running on" in result.output
    after = CliRunner().invoke(cli, ["db", "copy", target_url], env={"DIGEST_DATABASE_URL": source_url})
    assert after.exit_code == 0, after.output


def test_papers_stored_before_authority_was_kept_take_their_best_sources(database_url: str) -> None:
    engine = db.make_engine(database_url)
    schema.upgrade(engine, "0004")
    now = "2026-11-24 08:00:00+00:00"
    with engine.begin() as connection:
        for source_id, kind, url in (
            (11, "arxiv-rss", "https://rss.arxiv.org/rss/cs.LG"),
            (12, "feed", "https://blog.example.org/feed.xml"),
            (13, "arxiv-rss", "https://mirror.example.org/rss"),
        ):
            connection.execute(
                text(
                    "INSERT INTO sources (id, name, kind, url, enabled, created_at, consecutive_failures) "
                    "VALUES (:id, :name, :kind, :url, true, :now, 0)"
                ),
                {"id": source_id, "name": f"s{source_id}", "kind": kind, "url": url, "now": now},
            )
        for paper_id, sources in (("2401.00001", (11, 12)), ("2401.00002", (12, 13))):
            connection.execute(
                text(
                    "INSERT INTO papers (id, title, abstract, authors, abs_url, categories, ai_keywords, "
                    "first_seen_at, updated_at) VALUES (:id, 't', '', '[]', 'https://arxiv.org/abs/x', '[]', "
                    "'[]', :now, :now)"
                ),
                {"id": paper_id, "now": now},
            )
            for source_id in sources:
                connection.execute(
                    text(
                        "INSERT INTO listings (source_id, paper_id, listed_on, seen_at) "
                        "VALUES (:source, :paper, '2026-11-24', :now)"
                    ),
                    {"source": source_id, "paper": paper_id, "now": now},
                )
    schema.upgrade(engine)
    with engine.connect() as connection:
        rows = dict(connection.execute(text("SELECT id, text_authority FROM papers")).all())
    engine.dispose()
    assert rows == {"2401.00001": 3, "2401.00002": 1}  # a mirror that looks like arXiv counts as a feed
