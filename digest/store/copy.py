"""Copying a whole database into a new one (``digest db copy``: SQLite to PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import Connection, Engine, Integer, RowMapping, Table, func, select, text
from sqlalchemy.engine import URL

from digest.errors import SchemaOutOfDate, UsageError
from digest.store.engine import faults_named
from digest.store.models import Base, Delivery, Paper, Subscriber
from digest.store.schema import require_current_schema

CHUNK = 1_000
TARGET = "the TARGET_URL of `digest db copy`"


def copy(
    source: Engine, target: Engine, progress: Callable[[str, int], None] = lambda _t, _n: None
) -> dict[str, int]:
    """Copy every row of ``source`` into ``target`` (both at the current schema), table by table in
    one transaction on the target, and move the target's id sequences past the copied ids. Returns
    the rows copied per table. Raises SchemaOutOfDate for a database behind, and UsageError when the
    target already holds papers, subscribers or deliveries (what a new database holds is replaced)."""
    require_current_schema(source)
    try:
        require_current_schema(target, TARGET)
    except SchemaOutOfDate:
        where = target.url.render_as_string(hide_password=True)
        password = " (with its password for ***)" if target.url.password else ""
        raise SchemaOutOfDate(
            f"The target database {where} is not at this digest's schema. Migrate the target, not "
            f"this database, then copy again: DIGEST_DATABASE_URL='{where}' digest db upgrade{password}"
        ) from None
    with faults_named(target.url, TARGET):
        return _copy_rows(source, target, progress)


def _copy_rows(source: Engine, target: Engine, progress: Callable[[str, int], None]) -> dict[str, int]:
    """The copy itself; a fault of the source is named as the source's (the caller names the target's)."""
    tables = Base.metadata.sorted_tables
    with target.begin() as connection:
        held = {
            model.__tablename__: connection.scalar(select(func.count()).select_from(model))
            for model in (Paper, Subscriber, Delivery)
        }
        if any(held.values()):
            counts = ", ".join(f"{count} {name}" for name, count in held.items() if count)
            raise UsageError(
                f"The target database already holds data ({counts}). Copy into a new database: "
                "create it, run `digest db upgrade` on it, then copy again."
            )
        for table in reversed(tables):
            connection.execute(table.delete())
        copied = {}
        with faults_named(source.url):
            reader = source.connect()
        with reader:
            for table in tables:
                copied[table.name] = 0
                for chunk in _chunks(reader, table, source.url):
                    connection.execute(table.insert(), [dict(row) for row in chunk])
                    copied[table.name] += len(chunk)
                progress(table.name, copied[table.name])
        if target.dialect.name == "postgresql":
            for table in tables:
                key = table.c.get("id")
                if key is not None and key.primary_key and isinstance(key.type, Integer):
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}"
                        )
                    )
    return copied


def _chunks(reader: Connection, table: Table, url: URL) -> Iterator[Sequence[RowMapping]]:
    """``table``'s rows, CHUNK at a time; a fault reading them is named as the source's (the
    consumer's own writes are not inside this block)."""
    with faults_named(url):
        rows = reader.execute(table.select()).mappings()
        while chunk := rows.fetchmany(CHUNK):
            yield chunk
