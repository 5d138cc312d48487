"""Engines and sessions: the only module that opens database connections.

SQLite gets WAL, foreign keys and a busy timeout on every connection; PostgreSQL is used as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import DatabaseError

SQLITE_BUSY_TIMEOUT_MS = 10_000

__all__ = [
    "Database",
    "Session",
    "fault_message",
    "faults_named",
    "is_fault",
    "make_engine",
    "session_factory",
]


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


# What an operator can do about each fault SQLite names (its messages are stable). Any other SQLite
# error ("no such table", a syntax error) is the code's, not the database's.
_SQLITE_FAULTS = (
    (
        ("database is locked", "database table is locked"),
        "The SQLite database {file} stayed locked by another process for over {busy:g} s, so this gave up "
        "and kept nothing it had not finished. Let the other digest process (a send, a scrape or the "
        "service) finish and run it again; to run several at once, use PostgreSQL (see the README).",
    ),
    (
        ("readonly database",),
        "The SQLite database {file} is read-only for this user. Let the user write the file and its "
        "folder (SQLite writes a -wal and a -shm file beside it).",
    ),
    (
        ("database or disk is full",),
        "The disk of the SQLite database {file} is full. Free some space and run it again.",
    ),
    (
        ("file is not a database", "database disk image is malformed"),
        "{file} is not a SQLite database, or it is damaged ({reason}). Point {setting} at the right "
        "file, or restore it from a backup.",
    ),
    (
        ("unable to open database file", "disk i/o error"),
        "Cannot open the SQLite database {file} ({reason}). Check that the path is right and that this "
        "user may read and write the file and its folder.",
    ),
)
# PostgreSQL: what the server said when it answered and refused (libpq's FATAL at connecting).
_POSTGRES_REFUSALS = (
    (
        ("password authentication failed", "role", "no pg_hba.conf entry"),
        "The database server of {where} refused the login: {reason}. Check the user and password in "
        "{setting}, and that the server lets this user in from here (pg_hba.conf).",
    ),
    (
        ("the database system is", "terminating connection"),
        "The database server of {where} is starting, stopping or recovering: {reason}. Run it again "
        "in a minute.",
    ),
    (
        ("database",),
        "The database server of {where} answered, but: {reason}. Create the database (createdb, "
        "then `digest db upgrade`) or fix its name in {setting}.",
    ),
    (
        ("too many clients", "remaining connection slots"),
        "The database server of {where} has no connection to spare: {reason}. Run it again later, or "
        "raise the server's max_connections.",
    ),
)
# A PostgreSQL error with one of these words is the server or the network, not the statement.
_SERVER_GONE = (
    "could not connect",
    "connection refused",
    "could not translate host name",
    "server closed the connection",
    "connection timed out",
    "connection to server",
    "ssl syscall error",
    "no route to host",
)


def is_fault(exc: BaseException) -> bool:
    """True when ``exc`` is the database or its server failing (locked, gone, full, damaged, a login
    refused), as opposed to a statement the code got wrong, which must keep its traceback."""
    if not (isinstance(exc, OperationalError | InterfaceError) or type(exc) is SQLAlchemyDatabaseError):
        return False
    original = getattr(exc, "orig", None)
    if type(original).__module__ == "sqlite3":
        reason = str(original).lower()
        return any(word in reason for words, _advice in _SQLITE_FAULTS for word in words)
    return True


@contextmanager
def faults_named(url: str | URL, setting: str = "DIGEST_DATABASE_URL") -> Iterator[None]:
    """Raise a database fault inside the block as a DatabaseError carrying fault_message."""
    try:
        yield
    except SQLAlchemyError as exc:
        if not is_fault(exc):
            raise
        raise DatabaseError(fault_message(url, exc, setting)) from None


def fault_message(url: str | URL, exc: BaseException, setting: str = "DIGEST_DATABASE_URL") -> str:
    """One line for an operator: what failed at the database ``url`` (given by ``setting``) and what
    to do about it."""
    parsed = make_url(url)
    reason = " ".join(str(getattr(exc, "orig", exc)).split()).rstrip(" .?!") or "no reason given"
    lowered = reason.lower()
    if parsed.get_backend_name() == "sqlite":
        file = parsed.database or "digest.db"
        for words, advice in _SQLITE_FAULTS:
            if any(word in lowered for word in words):
                return advice.format(
                    file=file, busy=SQLITE_BUSY_TIMEOUT_MS / 1000, reason=reason, setting=setting
                )
        return (
            f"The SQLite database {file} failed: {reason}. Run it again; if it keeps failing, check the disk."
        )
    where = parsed.render_as_string(hide_password=True)
    if "fatal:" in lowered:
        said = reason[lowered.index("fatal:") + len("fatal:") :].strip()
        for words, advice in _POSTGRES_REFUSALS:
            if any(word in said.lower() for word in words):
                return advice.format(where=where, reason=said, setting=setting)
        return f"The database server of {where} refused the connection: {said}. Check {setting}."
    if any(word in lowered for word in _SERVER_GONE):
        return (
            f"Cannot reach the database server of {where}: {reason}. Check {setting} and that the "
            "server is running and reachable from here."
        )
    return (
        f"The database {where} failed: {reason}. Run it again; if it keeps failing, the database "
        "server's log says why."
    )
