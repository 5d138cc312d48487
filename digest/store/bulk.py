"""Helpers for statements over many rows, portable between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

CHUNK = 500  # rows per statement: SQLite's parameter limit and PostgreSQL's plan sizes stay low


def chunked(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_for(session: Session, model: type) -> Any:
    """The dialect's INSERT for ``model``, which has ``on_conflict_do_nothing``."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
