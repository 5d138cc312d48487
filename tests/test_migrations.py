"""Alembic migrations on SQLite and PostgreSQL: up, down, and agreeing with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from digest import db
from digest.models import Base, Source

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
    db.upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
    assert db.current_revision(engine) == db.head_revision()
    db.downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    assert db.current_revision(engine) is None
    engine.dispose()


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
