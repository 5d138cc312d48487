"""Engine, sessions and schema version checks. The only module that opens database connections.

SQLite gets WAL, foreign keys and a busy timeout on every connection; PostgreSQL is used as is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Integer, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import DatabaseError, SchemaOutOfDate, UsageError
from digest.resources import resource_dir

SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``. Raises DatabaseError when a SQLite file's folder is missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            raise DatabaseError(
                f"The folder of the SQLite database {database} does not exist ({folder}). "
                "Create it, or point DIGEST_DATABASE_URL at another path."
            )
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs the shipped migrations on ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(resource_dir("migrations")))
    head = script.get_current_head()
    assert head is not None, "migrations/ has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database. Raises DatabaseError if unreachable."""
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise DatabaseError(_unreachable(engine, exc)) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise DatabaseError(_unreachable(engine, exc)) from None


def downgrade(engine: Engine, revision: str) -> None:
    try:
        command.downgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise DatabaseError(_unreachable(engine, exc)) from None


def new_revision(engine: Engine, message: str) -> str:
    """Autogenerate a migration from the difference between the models and ``engine``; returns its path."""
    head = head_revision()
    rev_id = f"{int(head) + 1:04d}" if head.isdigit() else None
    script = command.revision(alembic_config(engine), message=message, autogenerate=True, rev_id=rev_id)
    scripts = script if isinstance(script, list) else [script]
    return ", ".join(str(item.path) for item in scripts if item is not None)


def require_current_schema(engine: Engine) -> None:
    """Refuse to go on with a database whose schema is not at head.

    Raises SchemaOutOfDate naming ``digest db upgrade``, or DatabaseError when unreachable.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaOutOfDate(
            f"The database {where} has no digest tables yet. Run `digest db upgrade` to create them."
        )
    raise SchemaOutOfDate(
        f"The database {where} is at schema revision {current}, this digest needs {head}. "
        "Run `digest db upgrade` (back up the database first in production)."
    )


def _unreachable(engine: Engine, exc: SQLAlchemyError) -> str:
    where = engine.url.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return (
        f"Cannot open the database {where}: {reason}. "
        "Check DIGEST_DATABASE_URL and that the database server is running."
    )


COPY_CHUNK = 1_000


def copy(
    source: Engine, target: Engine, progress: Callable[[str, int], None] = lambda _t, _n: None
) -> dict[str, int]:
    """Copy every row of ``source`` into ``target`` (both at the current schema), table by table in
    one transaction on the target, and move the target's id sequences past the copied ids. Returns
    the rows copied per table. Raises SchemaOutOfDate for a database behind, and UsageError when the
    target already holds papers, subscribers or deliveries (what a new database holds is replaced)."""
    from digest.models import Base, Delivery, Paper, Subscriber

    require_current_schema(source)
    require_current_schema(target)
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
        with source.connect() as reader:
            for table in tables:
                copied[table.name] = 0
                rows = reader.execute(table.select()).mappings()
                while chunk := rows.fetchmany(COPY_CHUNK):
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
