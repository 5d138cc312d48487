"""``digest db``: create, migrate and copy the database."""

from __future__ import annotations

import click

from digest.cli.common import App, err, out, pass_app


@click.group("db")
def db_group() -> None:
    """Create and migrate the database schema.

    \b
    Example:
      digest db upgrade
    """


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_app
def db_upgrade(app: App, revision: str) -> None:
    """Migrate the database to REVISION (default: the newest). Creates the tables on a new database.

    \b
    Example:
      digest db upgrade
    """
    from digest.usecases import maintenance

    where, before, after = maintenance.upgrade(app.context, revision)
    if before == after:
        out().print(f"{where} is already at revision {after}.")
    else:
        out().print(f"{where}: migrated from {before or 'an empty database'} to revision {after}.")


@db_group.command("downgrade")
@click.argument("revision")
@pass_app
def db_downgrade(app: App, revision: str) -> None:
    """Migrate the database back to REVISION ('base' drops every table: all data is lost).

    \b
    Example:
      digest db downgrade base
    """
    from digest.usecases import maintenance

    after = maintenance.downgrade(app.context, revision)
    out().print(f"Database now at revision {after or 'base (empty)'}.")


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the schema change does, e.g. 'add subscribers'.")
@pass_app
def db_revision(app: App, message: str) -> None:
    """For developers: write a new migration under migrations/versions from the models' changes.

    Run it on a database at head; read and tidy the generated file before committing it.

    \b
    Example:
      digest db revision -m "add subscribers"
    """
    from digest.usecases import maintenance

    path = maintenance.new_revision(app.context, message)
    out().print(f"Wrote {path}. Review it, then run `digest db upgrade`.")


@db_group.command("copy")
@click.argument("target_url")
@pass_app
def db_copy(app: App, target_url: str) -> None:
    """Copy everything from this database (DIGEST_DATABASE_URL) into the new database TARGET_URL,
    e.g. to move from SQLite to PostgreSQL. Run `digest db upgrade` on the target first; stop
    digest while it copies. The source is not changed.

    \b
    Example:
      DIGEST_DATABASE_URL=postgresql+psycopg://digest@db/digest digest db upgrade
      digest db copy postgresql+psycopg://digest@db/digest
    """
    from digest.usecases import maintenance

    where, rows = maintenance.copy_to(
        app.context, target_url, progress=lambda table, count: err().print(f"{table}: {count} rows")
    )
    out().print(f"Copied {rows} rows into {where}. Point DIGEST_DATABASE_URL at it and start digest.")


@db_group.command("current")
@pass_app
def db_current(app: App) -> None:
    """Show the database's schema revision and the one this digest needs.

    \b
    Example:
      digest db current
    """
    from digest.usecases import maintenance

    current, head = maintenance.revisions(app.context)
    state = "up to date" if current == head else "behind: run `digest db upgrade`"
    out().print(f"database: {current or 'empty'}; code: {head} ({state})")


@db_group.command("corpus")
@click.option("--rebuild", is_flag=True, help="Count the statistics again from every stored paper first.")
@pass_app
def db_corpus(app: App, rebuild: bool) -> None:
    """Check the corpus statistics (the document frequencies behind IDF, and the acronym
    definitions) that digest keeps as papers are stored against a full recount of the stored
    papers; with --rebuild, count them again from scratch first. Reads every stored paper. Exits 1
    when they disagree.

    \b
    Examples:
      digest db corpus
      digest db corpus --rebuild
    """
    from digest.errors import DigestError
    from digest.usecases import maintenance

    checked = maintenance.rebuild_corpus(app.context) if rebuild else maintenance.check_corpus(app.context)
    out().print(
        f"papers: {checked.papers} stored, {checked.counted} counted; stems: {checked.terms}, "
        f"{checked.terms_wrong} counted wrong; acronym definitions: {checked.definitions}, "
        f"{checked.definitions_wrong} counted wrong."
    )
    if not checked.agrees:
        raise DigestError(
            "The corpus statistics disagree with the stored papers: run `digest db corpus --rebuild` "
            "(stop digest's fetches while it counts)."
        )
