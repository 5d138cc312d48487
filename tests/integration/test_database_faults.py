"""A database that fails (locked by another process, not there, not a database) ends in one line
naming the cause and the fix: on the command line, in the scheduler's log, on the web front."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from digest.config import Settings
from digest.scheduler import Scheduler, as_job
from digest.store import engine
from digest.store.engine import Database
from digest.usecases.context import Context
from digest.web import Web, create_app
from tests.support.cli import digest

LOCKED = "stayed locked by another process for over 0.2 s"


def one_error_line(output: str) -> str:
    """The one line a failed command printed (no traceback, nothing else)."""
    assert "Traceback" not in output
    [line] = output.strip().splitlines()
    assert line.startswith("error: ")
    return line


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    assert digest("db", "upgrade", url=url).exit_code == 0
    return url


@pytest.fixture
def locked(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The database, its write lock held by another connection; digest waits 0.2 s for it."""
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield sqlite_url
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_command_on_a_locked_sqlite_database_says_it_is_locked_and_what_to_do(locked) -> None:
    result = digest("subscribers", "add", "ada@example.org", url=locked)
    assert result.exit_code == 3
    line = one_error_line(result.output)
    assert LOCKED in line and "use PostgreSQL" in line
    assert "server" not in line  # a busy file, not an unreachable server


def test_a_command_on_a_file_that_is_not_a_database_names_the_file(tmp_path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    result = digest("sources", "list", url=f"sqlite:///{path}")
    assert result.exit_code == 3
    assert f"{path} is not a SQLite database, or it is damaged" in one_error_line(result.output)


def test_a_command_on_an_unreachable_postgresql_server_says_where_it_looked() -> None:
    result = digest("sources", "list", url="postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test")
    assert result.exit_code == 3
    line = one_error_line(result.output)
    assert "Cannot reach the database server of postgresql+psycopg://postgres:***@127.0.0.1:1/test" in line
    assert "s3cret" not in line


def test_a_scheduler_job_on_a_locked_database_logs_one_line_and_runs_again_later(locked, caplog) -> None:
    settings = Settings(database_url=locked)
    scheduler = Scheduler(Context(settings))
    with caplog.at_level(logging.ERROR, "digest.scheduler"):
        as_job(settings, scheduler.clean_up, "cleaning up")()
    [record] = [record for record in caplog.records if record.name == "digest.scheduler"]
    assert record.exc_info is None
    assert record.getMessage().startswith("cleaning up failed; it runs again at its next turn: ")
    assert LOCKED in record.getMessage()


def test_a_page_on_a_locked_database_asks_the_reader_to_come_back(locked, caplog) -> None:
    settings = Settings(database_url=locked, base_url="https://digest.example.org")
    with TestClient(create_app(Web(Context(settings))), base_url=settings.base_url) as client:
        page = client.get("/")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        answer = client.post("/", data={"email": "ada@example.org", "csrf": token})
    assert answer.status_code == 503 and "try again in a few minutes" in answer.text
    assert answer.headers["x-frame-options"] == "DENY"
    [record] = [record for record in caplog.records if record.name == "digest.web.app"]
    assert record.exc_info is None and LOCKED in record.getMessage()


def test_a_postgresql_database_that_does_not_exist_is_not_called_unreachable() -> None:
    result = digest("sources", "list", url="postgresql+psycopg://postgres@127.0.0.1:5432/no_such_database")
    assert result.exit_code == 3
    line = one_error_line(result.output)
    assert 'answered, but: database "no_such_database" does not exist' in line and "createdb" in line


def test_a_postgresql_login_refused_says_to_check_the_user() -> None:
    result = digest("sources", "list", url="postgresql+psycopg://no_such_role:pw@127.0.0.1:5432/test")
    assert result.exit_code == 3
    line = one_error_line(result.output)
    assert "refused the login" in line and "no_such_role:***@" in line and "pw@" not in line


def test_a_mistake_in_a_statement_is_not_taken_for_a_database_fault(sqlite_url) -> None:
    database = Database.open(sqlite_url)
    with pytest.raises(SQLAlchemyError) as raised, database.session() as session:
        session.execute(text("SELECT nothing FROM no_such_table"))
    assert not engine.is_fault(raised.value)  # a bug keeps its traceback


def test_copying_into_a_target_that_is_not_a_database_names_the_target(sqlite_url, tmp_path) -> None:
    target = tmp_path / "target.db"
    target.write_text("not a database\n" * 100)
    result = digest("db", "copy", f"sqlite:///{target}", url=sqlite_url)
    assert result.exit_code == 3
    line = one_error_line(result.output)
    assert f"{target} is not a SQLite database" in line and "TARGET_URL of `digest db copy`" in line
