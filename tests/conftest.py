"""Shared fixtures: real databases (a SQLite file and a PostgreSQL schema of each test's own), settings,
and an SMTP sink on loopback. Tests under system/ are marked ``system`` (the slow ones: the command
line in processes, the browser, kills, deployment files, benchmarks)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.score.warm import warm_ranking
from digest.store import schema
from digest.store.engine import Database, make_engine
from tests.support.smtp import ScriptedServer, serving

POSTGRES_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("DIGEST_TEST_REQUIRE_POSTGRES") == "1"
SYSTEM = Path(__file__).resolve().parent / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(SYSTEM):
            item.add_marker(pytest.mark.system)


@pytest.fixture(autouse=True, scope="session")
def _ranking_kernel_compiled() -> None:
    """Compile (or load) the ranking kernel before any test runs a command, so that no command's
    output holds the once-per-machine "compiling" line, whichever test happens to run first."""
    warm_ranking()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's DIGEST_* settings or writes into the checkout."""
    for name in list(os.environ):
        if name.startswith("DIGEST_") and not name.startswith("DIGEST_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _postgres_available() -> str | None:
    if not POSTGRES_URL:
        return "DIGEST_TEST_POSTGRES_URL is empty"
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
    except OperationalError as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc.orig}"
    return None


_PG_PROBLEM = _postgres_available()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    if _PG_PROBLEM:
        if REQUIRE_POSTGRES:
            pytest.fail(_PG_PROBLEM)
        pytest.skip(_PG_PROBLEM)
    schema = f"test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def migrated_url(database_url: str) -> str:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    engine.dispose()
    return database_url


@pytest.fixture
def database(migrated_url: str) -> Iterator[Database]:
    opened = Database.open(migrated_url)
    yield opened
    opened.dispose()


@pytest.fixture
def sessions(database: Database) -> sessionmaker[Session]:
    return database.sessions


@pytest.fixture
def settings(migrated_url: str) -> Settings:
    """Settings for fast tests: no waiting between requests or retries."""
    return Settings(
        database_url=migrated_url,
        host_min_interval=0,
        retry_backoff=0.01,
        fetch_deadline=10,
        respect_robots_txt=True,
    )


@pytest.fixture
def mail_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings whose mail goes to a file outbox of the test's own, with https links."""
    return settings.model_copy(
        update={"outbox_dir": tmp_path / "outbox", "base_url": "https://digest.example.org"}
    )


@pytest.fixture
def sink() -> Iterator[ScriptedServer]:
    """An SMTP server on loopback that accepts everything (with PIPELINING) and records it."""
    with serving(ScriptedServer(pipelining=True)) as handler:
        yield handler
