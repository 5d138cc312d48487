"""Scratch databases for benchmarks: a PostgreSQL schema of their own, and bulk loads of rows."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import insert, text

from digest.store.engine import Database, make_engine
from digest.store.models import Listing, MetricSnapshot, Paper, Subscriber
from digest.store.urls import with_search_path

CHUNK = 5_000


def scratch_schema(url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """A new schema on the PostgreSQL at ``url``; returns a URL whose connections use it and what
    drops it with everything in it."""
    schema = f"{prefix}_{secrets.token_hex(4)}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return with_search_path(url, schema), drop


def load(
    database: Database,
    papers: Sequence[dict[str, Any]],
    snapshots: Sequence[dict[str, Any]],
    subscribers: Sequence[dict[str, Any]],
    listings: Sequence[dict[str, Any]] = (),
) -> None:
    """Insert rows of papers, metric snapshots, subscribers and listings (dicts of their columns),
    in one transaction."""
    tables = ((Paper, papers), (MetricSnapshot, snapshots), (Subscriber, subscribers), (Listing, listings))
    with database.engine.begin() as connection:
        for model, rows in tables:
            for start in range(0, len(rows), CHUNK):
                connection.execute(insert(model), list(rows[start : start + CHUNK]))


def analyze(database: Database) -> None:
    """Have PostgreSQL gather the planner's statistics of every table now, as autovacuum would a
    while after a bulk load (without them it may scan a whole table where an index serves); nothing
    to do on SQLite."""
    if database.engine.dialect.name != "postgresql":
        return
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
