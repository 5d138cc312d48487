"""Engines and sessions: the only module that opens database connections.

SQLite gets WAL, foreign keys and a busy timeout on every connection; PostgreSQL is used as is.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import DatabaseError

SQLITE_BUSY_TIMEOUT_MS = 10_000

__all__ = ["Database", "Session", "make_engine", "session_factory"]


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


class Database:
    """One database: its engine and a session factory. Connects on first use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)

    @classmethod
    def open(cls, url: str) -> Database:
        """The database at ``url``. Raises DatabaseError for a SQLite file whose folder is missing."""
        return cls(make_engine(url))

    def session(self) -> Session:
        """A new session (use it as a context manager; it commits only when told)."""
        return self.sessions()

    def begin(self) -> AbstractContextManager[Session]:
        """A session in a transaction that commits at the end of the ``with`` block."""
        return self.sessions.begin()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def where(self) -> str:
        """The URL, password hidden: for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def sqlite_file(self) -> Path | None:
        """The file of a SQLite database; None for PostgreSQL or an in-memory one."""
        if self.dialect != "sqlite":
            return None
        return Path(self.engine.url.database or "digest.db")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def unreachable(engine: Engine, exc: SQLAlchemyError) -> str:
    """What to tell an operator whose database did not answer."""
    where = engine.url.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return (
        f"Cannot open the database {where}: {reason}. "
        "Check DIGEST_DATABASE_URL and that the database server is running."
    )
