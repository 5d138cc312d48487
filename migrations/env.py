"""Alembic environment: runs on the engine digest passes in, or on the configured database URL."""

from __future__ import annotations

from alembic import context

from digest.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from digest.config import load_settings
        from digest.store.engine import make_engine

        engine = make_engine(load_settings().db_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
