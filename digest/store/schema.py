"""The schema's migrations (Alembic, from migrations/) and the check every command makes that the
database is at the code's revision."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from digest.errors import SchemaOutOfDate
from digest.resources import resource_dir
from digest.store.engine import faults_named


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


def current_revision(engine: Engine, setting: str = "DIGEST_DATABASE_URL") -> str | None:
    """The revision the database is at; None for an empty database. Raises DatabaseError if unreachable."""
    with faults_named(engine.url, setting), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with faults_named(engine.url):
        command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    with faults_named(engine.url):
        command.downgrade(alembic_config(engine), revision)


def new_revision(engine: Engine, message: str) -> str:
    """Autogenerate a migration from the difference between the models and ``engine``; returns its path."""
    head = head_revision()
    rev_id = f"{int(head) + 1:04d}" if head.isdigit() else None
    script = command.revision(alembic_config(engine), message=message, autogenerate=True, rev_id=rev_id)
    scripts = script if isinstance(script, list) else [script]
    return ", ".join(str(item.path) for item in scripts if item is not None)


def require_current_schema(engine: Engine, setting: str = "DIGEST_DATABASE_URL") -> None:
    """Refuse to go on with a database whose schema is not at head.

    Raises SchemaOutOfDate naming ``digest db upgrade``, or DatabaseError when unreachable (naming
    ``setting`` as where the URL came from).
    """
    current = current_revision(engine, setting)
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
