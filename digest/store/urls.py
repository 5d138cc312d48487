"""Database URLs: whether a text is one, and how to show one with its secrets masked."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_SECRET_QUERY_KEYS = ("password", "passwd", "pass", "secret", "token", "sslpassword")


def check_database_url(url: str) -> None:
    """Raise ValueError saying what a database URL looks like, unless ``url`` is one."""
    try:
        make_url(url)
    except ArgumentError as exc:
        raise ValueError(
            "not a database URL; use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
        ) from exc


def backend(url: str) -> str:
    """The database kind of ``url``: sqlite, postgresql, ..."""
    return make_url(url).get_backend_name()


def sqlite_file(url: str) -> Path | None:
    """The absolute path of the file a SQLite ``url`` names (from the current folder); None for
    another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def masked_url(raw: str) -> str:
    """``raw`` with its password and any secret query value masked (all of it if it is no URL)."""
    try:
        url = make_url(raw)
    except ArgumentError:
        return "********"
    secret_keys = [key for key in url.query if key.lower() in _SECRET_QUERY_KEYS]
    if secret_keys:
        url = url.update_query_dict({key: "***" for key in secret_keys})
    if url.password is None and not secret_keys:
        return raw
    return url.render_as_string(hide_password=True)


def with_search_path(url: str, schema: str) -> str:
    """A PostgreSQL ``url`` whose connections use ``schema`` (for a benchmark's or a test's own)."""
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)
