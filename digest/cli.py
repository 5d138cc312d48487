"""The ``digest`` command line. Every command's docstring is its help and ends with an example."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import socket
import sys
import tempfile
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import click
import httpx
from pythonjsonlogger.json import JsonFormatter
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from digest import __version__, composer, db, delivery, ingest, mailer, queries, scoring
from digest import subscribers as subscriber_records
from digest.config import DEFAULT_CONTACT_URL, Settings, load_settings
from digest.errors import ConfigError, DigestError, FetchError, UsageError
from digest.interests import parse_interests
from digest.models import Delivery, Paper, Source, Subscriber, utcnow
from digest.sources import parse_document
from digest.sources.base import KINDS, parse_arxiv_id
from digest.sources.http import Fetcher, is_local

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False)


class App:
    """What commands share: settings, engine and sessions, made on first use."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path

    @cached_property
    def settings(self) -> Settings:
        settings = load_settings(self.config_path)
        handler = logging.StreamHandler()
        if settings.log_format == "json":
            handler.setFormatter(
                JsonFormatter(
                    "%(levelname)s %(name)s %(message)s", timestamp=True, rename_fields={"levelname": "level"}
                )
            )
        else:
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=settings.log_level, handlers=[handler])
        return settings

    @cached_property
    def engine(self) -> Engine:
        return db.make_engine(self.settings.db_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on a database whose schema is current; raises SchemaOutOfDate otherwise."""
        db.require_current_schema(self.engine)
        return db.session_factory(self.engine)


class DigestGroup(click.Group):
    """A click group that turns expected failures (DigestError) into a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.echo(f"{click.style('error:', fg='red', bold=True)} {exc}", err=True)
            ctx.exit(exc.exit_code)


pass_app = click.make_pass_decorator(App)


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. {option} 2026-11-20."
        ) from None


def print_json_lines(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="DIGEST_CONFIG",
    help="TOML settings file (DIGEST_* environment variables override it).",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """digest: new research papers from Hugging Face, arXiv and any feed, ranked for each subscriber's
    interests and mailed once a day (to ./outbox until DIGEST_SMTP_URL is set). Settings come from
    DIGEST_* variables and --config; the database and outbox are in the current folder by default.

    \b
    First run:
      digest db upgrade && digest run
    """
    ctx.obj = App(config_path)


@cli.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def check_config(app: App, as_json: bool) -> None:
    """Print the effective settings, secrets masked, and exit non-zero if they are invalid.

    \b
    Example:
      DIGEST_DATABASE_URL=postgresql+psycopg://me:secret@db/digest digest check-config
    """
    shown = app.settings.masked()
    if as_json:
        click.echo(json.dumps(shown, default=str, indent=2))
        return
    table = Table("setting", "environment variable", "value", box=None)
    for name, value in shown.items():
        table.add_row(name, f"DIGEST_{name.upper()}", str(value))
    out.print(table)
    out.print(f"User-Agent: {app.settings.user_agent}")
    if app.settings.contact_url == DEFAULT_CONTACT_URL:
        out.print(
            "note: contact_url is the project's default; set DIGEST_CONTACT_URL to a page or mailto: "
            "of yours so the sites you fetch from can reach you."
        )


# --- db ---------------------------------------------------------------------------------------


@cli.group("db")
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
    before = db.current_revision(app.engine)
    db.upgrade(app.engine, revision)
    after = db.current_revision(app.engine)
    where = app.engine.url.render_as_string(hide_password=True)
    if before == after:
        out.print(f"{where} is already at revision {after}.")
    else:
        out.print(f"{where}: migrated from {before or 'an empty database'} to revision {after}.")


@db_group.command("downgrade")
@click.argument("revision")
@pass_app
def db_downgrade(app: App, revision: str) -> None:
    """Migrate the database back to REVISION ('base' drops every table: all data is lost).

    \b
    Example:
      digest db downgrade base
    """
    db.downgrade(app.engine, revision)
    out.print(f"Database now at revision {db.current_revision(app.engine) or 'base (empty)'}.")


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
    db.require_current_schema(app.engine)
    path = db.new_revision(app.engine, message)
    out.print(f"Wrote {path}. Review it, then run `digest db upgrade`.")


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
    target = db.make_engine(target_url)
    where = target.url.render_as_string(hide_password=True)
    copied = db.copy(app.engine, target, progress=lambda table, rows: err.print(f"{table}: {rows} rows"))
    out.print(
        f"Copied {sum(copied.values())} rows into {where}. Point DIGEST_DATABASE_URL at it and start digest."
    )


@db_group.command("current")
@pass_app
def db_current(app: App) -> None:
    """Show the database's schema revision and the one this digest needs.

    \b
    Example:
      digest db current
    """
    current = db.current_revision(app.engine)
    head = db.head_revision()
    state = "up to date" if current == head else "behind: run `digest db upgrade`"
    out.print(f"database: {current or 'empty'}; code: {head} ({state})")


# --- parse ------------------------------------------------------------------------------------


@cli.command("parse")
@click.argument("location")
@click.option(
    "--kind",
    type=click.Choice(["auto", *KINDS]),
    default="auto",
    show_default=True,
    help="What LOCATION is; 'auto' tells from the content.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per paper per line.")
@pass_app
def parse_command(app: App, location: str, kind: str, as_json: bool) -> None:
    """Parse a listing (a file, file:// URL or http(s) URL) and print its papers. No database needed.

    \b
    Examples:
      digest parse tests/data/fixtures/hf_papers_page_2024-08-01.html
      digest parse https://huggingface.co/api/daily_papers --json
    """
    with Fetcher(app.settings) as fetcher:
        try:
            result = fetcher.fetch(location)
        except FetchError as exc:
            if is_local(location):  # a bad input file, not a failed operation
                raise UsageError(str(exc)) from None
            raise
    papers = parse_document(result.content or b"", kind)
    if as_json:
        print_json_lines(paper.to_json() for paper in papers)
        return
    table = Table("#", "id", "upvotes", "published", "title", box=None)
    for paper in papers:
        table.add_row(
            str(paper.rank or ""),
            paper.id,
            "" if paper.upvotes is None else str(paper.upvotes),
            paper.published.isoformat() if paper.published else "",
            paper.title,
        )
    out.print(table)
    kinds = sorted({paper.kind for paper in papers})
    out.print(f"{len(papers)} papers ({', '.join(kinds) or kind}).")


# --- sources ----------------------------------------------------------------------------------


@cli.group("sources")
def sources_group() -> None:
    """List and manage the listings digest fetches.

    \b
    Example:
      digest sources add ml-rss --kind arxiv-rss --url https://rss.arxiv.org/rss/cs.LG+cs.CL
    """


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source per line.")
@pass_app
def sources_list(app: App, as_json: bool) -> None:
    """Show every source with its last fetch.

    \b
    Example:
      digest sources list
    """
    with app.sessions() as session:
        rows = [_source_json(source) for source in queries.all_sources(session)]
    if as_json:
        print_json_lines(rows)
        return
    table = Table("name", "kind", "enabled", "last status", "failures", "last fetched", "url", box=None)
    for row in rows:
        table.add_row(
            row["name"],
            row["kind"],
            "yes" if row["enabled"] else "no",
            row["last_status"] or "never fetched",
            str(row["consecutive_failures"]),
            row["last_fetched_at"] or "",
            row["url"],
        )
    out.print(table)


def _source_json(source: Source) -> dict[str, Any]:
    return {
        "name": source.name,
        "kind": source.kind,
        "url": source.url,
        "enabled": source.enabled,
        "last_status": source.last_status,
        "last_error": source.last_error,
        "last_fetched_at": source.last_fetched_at.isoformat(timespec="seconds")
        if source.last_fetched_at
        else None,
        "consecutive_failures": source.consecutive_failures,
    }


@sources_group.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="What the URL serves.")
@click.option("--url", required=True, help="http(s) URL, file:// URL or local path. '{date}' is replaced.")
@click.option("--disabled", is_flag=True, help="Add it without fetching it yet.")
@pass_app
def sources_add(app: App, name: str, kind: str, url: str, disabled: bool) -> None:
    """Add a source NAME of a KIND at a URL.

    \b
    Examples:
      digest sources add ml-rss --kind arxiv-rss --url https://rss.arxiv.org/rss/cs.LG+cs.AI
      digest sources add hf-page --kind hf-page --url https://huggingface.co/papers
    """
    if not name.strip() or len(name) > 100:
        raise UsageError("A source name must be 1 to 100 characters.")
    if is_local(url) and not url.lower().startswith("file:"):
        url = str(Path(url).expanduser().resolve())  # so a scrape from another folder (cron) finds it
    with app.sessions.begin() as session:
        if queries.source_by_name(session, name) is not None:
            raise UsageError(f"A source named {name!r} exists already; pick another name or remove it first.")
        session.add(Source(name=name, kind=kind, url=url, enabled=not disabled, created_at=utcnow()))
    out.print(f"Added source {name} ({kind}) {'disabled' if disabled else 'enabled'}: {url}")


def _set_enabled(app: App, name: str, enabled: bool) -> None:
    with app.sessions.begin() as session:
        source = _require_source(session, name)
        source.enabled = enabled
    out.print(f"Source {name} {'enabled' if enabled else 'disabled'}.")


def _require_source(session: Session, name: str) -> Source:
    source = queries.source_by_name(session, name)
    if source is None:
        names = ", ".join(s.name for s in queries.all_sources(session)) or "none yet"
        raise UsageError(f"No source named {name!r}. Known sources: {names}. See `digest sources list`.")
    return source


@sources_group.command("enable")
@click.argument("name")
@pass_app
def sources_enable(app: App, name: str) -> None:
    """Fetch source NAME again on the next scrape.

    \b
    Example:
      digest sources enable ml-rss
    """
    _set_enabled(app, name, True)


@sources_group.command("disable")
@click.argument("name")
@pass_app
def sources_disable(app: App, name: str) -> None:
    """Stop fetching source NAME; its papers stay.

    \b
    Example:
      digest sources disable hf-daily
    """
    _set_enabled(app, name, False)


@sources_group.command("remove")
@click.argument("name")
@pass_app
def sources_remove(app: App, name: str) -> None:
    """Remove source NAME with its listings and fetch log; papers stay.

    \b
    Example:
      digest sources remove ml-rss
    """
    with app.sessions.begin() as session:
        session.delete(_require_source(session, name))
    out.print(f"Removed source {name}.")


# --- scrape -----------------------------------------------------------------------------------


@cli.command("scrape")
@click.option(
    "--source", "names", multiple=True, help="Only this source (repeatable). Default: every enabled one."
)
@click.option("--date", "day", help="Fetch this listing date (YYYY-MM-DD) of date-addressed sources.")
@click.option("--since", help="Backfill every date from this one (YYYY-MM-DD) to today.")
@click.option("--dry-run", is_flag=True, help="Fetch and parse, report what would change, write nothing.")
@pass_app
def scrape_command(
    app: App, names: tuple[str, ...], day: str | None, since: str | None, dry_run: bool
) -> None:
    """Fetch sources and store their new papers; print a summary per source.

    Exits non-zero only when every source failed.

    \b
    Examples:
      digest scrape
      digest scrape --source hf-daily --since 2026-11-01
      digest scrape --dry-run
    """
    if day and since:
        raise UsageError("Give --date or --since, not both.")
    today = ingest.today_utc()
    single, start = parse_date(day, "--date"), parse_date(since, "--since")
    if start is not None and start > today:
        raise UsageError(f"--since {since} is in the future (today is {today.isoformat()} UTC).")
    dates = [single] if single else (ingest.dates_since(start, today) if start else None)
    with app.sessions() as session:
        if names:
            sources = [_require_source(session, name) for name in names]
        else:
            sources = [source for source in queries.all_sources(session) if source.enabled]
    if not sources:
        raise DigestError(
            "No enabled sources. Add one with `digest sources add` or `digest sources enable` one."
        )
    with Fetcher(app.settings) as fetcher, err.status("fetching") as status:
        reports = ingest.scrape(
            app.sessions, fetcher, sources, dates=dates, dry_run=dry_run, progress=status.update
        )
    _print_scrape_summary(reports, dry_run)
    if all(report.status == "error" for report in reports):
        sys.exit(1)


def _print_scrape_summary(reports: list[ingest.SourceReport], dry_run: bool) -> None:
    table = Table("source", "kind", "status", "seen", "new", "updated", "seconds", box=None)
    for report in reports:
        status = {"ok": "[green]ok[/]", "not-modified": "not modified", "error": "[red]failed[/]"}[
            report.status
        ]
        table.add_row(
            report.name,
            report.kind,
            status,
            str(report.seen),
            str(report.new),
            str(report.updated),
            f"{report.seconds:.2f}",
        )
    out.print(table)
    for report in reports:
        if report.error:
            out.print(f"[red]{report.name}:[/] {report.error}", highlight=False)
    total_new = sum(report.new for report in reports)
    verb = "would add" if dry_run else "added"
    sources = "source" if len(reports) == 1 else "sources"
    note = " (dry run: nothing written)" if dry_run else "."
    out.print(f"{verb} {total_new} new papers from {len(reports)} {sources}{note}")


# --- papers -----------------------------------------------------------------------------------


@cli.group("papers")
def papers_group() -> None:
    """Look at the stored papers.

    \b
    Example:
      digest papers list --since 2026-11-20
    """


def paper_json(paper: Paper) -> dict[str, Any]:
    return {
        "id": paper.id,
        "version": paper.version,
        "title": paper.title,
        "authors": paper.authors,
        "abstract": paper.abstract,
        "published": paper.published.isoformat() if paper.published else None,
        "url": paper.abs_url,
        "pdf_url": paper.pdf_url,
        "hf_url": paper.hf_url,
        "categories": paper.categories,
        "github_repo": paper.github_repo,
        "project_page": paper.project_page,
        "ai_keywords": paper.ai_keywords,
        "first_seen_at": paper.first_seen_at.isoformat(timespec="seconds"),
        "updated_at": paper.updated_at.isoformat(timespec="seconds"),
    }


@papers_group.command("list")
@click.option("--since", help="Only papers listed on or after this date (YYYY-MM-DD).")
@click.option("--source", "source_name", help="Only papers listed by this source.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per paper per line.")
@pass_app
def papers_list(app: App, since: str | None, source_name: str | None, limit: int, as_json: bool) -> None:
    """List stored papers, newest first.

    \b
    Examples:
      digest papers list --limit 10
      digest papers list --source hf-daily --since 2026-11-20 --json
    """
    since_day = parse_date(since, "--since")
    with app.sessions() as session:
        source = _require_source(session, source_name) if source_name else None
        papers = list(session.scalars(queries.papers_query(since=since_day, source=source, limit=limit)))
        upvotes = _latest_upvotes(session, [paper.id for paper in papers])
    if as_json:
        print_json_lines({**paper_json(paper), "upvotes": upvotes.get(paper.id)} for paper in papers)
        return
    table = Table("id", "upvotes", "first seen", "title", box=None)
    for paper in papers:
        up = upvotes.get(paper.id)
        table.add_row(
            paper.id, "" if up is None else str(up), paper.first_seen_at.date().isoformat(), paper.title
        )
    out.print(table)
    out.print(f"{len(papers)} papers.")


def _latest_upvotes(session: Session, ids: list[str]) -> dict[str, int | None]:
    return {paper_id: values[0] for paper_id, values in queries.latest_metrics(session, ids).items()}


@papers_group.command("show")
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@pass_app
def papers_show(app: App, paper_id: str, as_json: bool) -> None:
    """Show one paper with its listings and upvote history. ID may be an arXiv id (with or without
    version) or an arXiv URL.

    \b
    Example:
      digest papers show 2407.21783
    """
    found = parse_arxiv_id(paper_id)
    if found is not None:
        paper_id = found[0]
    with app.sessions() as session:
        paper = session.get(Paper, paper_id)
        if paper is None:
            raise UsageError(f"No paper {paper_id!r} is stored. Find ids with `digest papers list`.")
        listings = queries.paper_listings(session, paper_id)
        metrics = queries.paper_metrics(session, paper_id)
    data = paper_json(paper)
    data["listings"] = [
        {"source": name, "listed_on": day.isoformat(), "rank": rank, "announce_type": kind}
        for name, day, rank, kind in listings
    ]
    data["metrics"] = [
        {"taken_at": at.isoformat(timespec="seconds"), "upvotes": up, "comments": co, "github_stars": st}
        for at, up, co, st in metrics
    ]
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]{paper.title}[/]")
    out.print(f"{paper.id}" + (f"v{paper.version}" if paper.version else "") + f"  {paper.abs_url}")
    out.print(", ".join(paper.authors))
    for label in ("published", "pdf_url", "hf_url", "github_repo", "project_page"):
        if data[label]:
            out.print(f"{label}: {data[label]}")
    if paper.categories:
        out.print("categories: " + ", ".join(paper.categories))
    out.print()
    out.print(paper.abstract)
    out.print()
    for listing in data["listings"]:
        out.print(
            f"listed by {listing['source']} on {listing['listed_on']}"
            + (f" at #{listing['rank']}" if listing["rank"] else "")
            + (f" ({listing['announce_type']})" if listing["announce_type"] else "")
        )
    for metric in data["metrics"]:
        labels = {"upvotes": "upvotes", "comments": "comments", "github_stars": "GitHub stars"}
        counts = [f"{metric[key]} {label}" for key, label in labels.items() if metric[key] is not None]
        out.print(f"{metric['taken_at']}: {', '.join(counts)}")


# --- subscribers ------------------------------------------------------------------------------


@cli.group("subscribers")
def subscribers_group() -> None:
    """Add, change, list, import and export subscribers.

    \b
    Example:
      digest subscribers add ada@example.org --interests '"diffusion model"' --tz Europe/London --active
    """


def _interest_options(command: Any) -> Any:
    options = [
        click.option(
            "--interests", help="Interest lines (one per line; see the README's interest language)."
        ),
        click.option(
            "--interests-file",
            type=click.Path(exists=True, dir_okay=False),
            help="Read the interests from a file.",
        ),
        click.option("--tz", "timezone", help="IANA time zone, e.g. Europe/Paris (new subscribers: UTC)."),
        click.option("--hour", "send_hour", type=int, help="Local hour (0-23) to send at (new: 7)."),
        click.option("--max", "max_papers", type=int, help="Most papers per digest, 1-100 (new: 10)."),
        click.option("--min-score", type=float, help="Leave out papers scoring below this (new: 0)."),
        click.option("--weekly", "weekly_day", help="Weekly on this day (mon..sun) instead of daily."),
        click.option("--daily", is_flag=True, help="Back to a daily digest."),
        click.option(
            "--trending/--no-trending", "trending_section", default=None, help="Add a 'trending today' part."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _preference_changes(values: dict[str, Any]) -> dict[str, Any]:
    """The Preferences fields the command-line options set."""
    if values.get("interests") is not None and values.get("interests_file"):
        raise UsageError("Give --interests or --interests-file, not both.")
    if values.get("interests_file"):
        values["interests"] = Path(values["interests_file"]).read_text(encoding="utf-8")
    if values.get("weekly_day"):
        values["frequency"] = "weekly"
    if values.get("daily"):
        values["frequency"], values["weekly_day"] = "daily", ""
    names = {field for field in subscriber_records.COLUMNS if field != "email"}
    return {key: value for key, value in values.items() if key in names and value is not None}


def _record(subscriber: Subscriber) -> subscriber_records.Preferences:
    return subscriber_records.Preferences(
        email=subscriber.email,
        status=subscriber.status,
        interests=subscriber.interests,
        timezone=subscriber.timezone,
        send_hour=subscriber.send_hour,
        frequency=subscriber.frequency,
        weekly_day=subscriber.weekly_day or "",
        max_papers=subscriber.max_papers,
        min_score=subscriber.min_score,
        trending_section=subscriber.trending_section,
    )


def _apply(subscriber: Subscriber, record: subscriber_records.Preferences) -> None:
    """Copy validated preferences onto a row, stamping confirmation and unsubscription times."""
    now = utcnow()
    if record.status == "active" and subscriber.confirmed_at is None:
        subscriber.confirmed_at = now
    if record.status == "unsubscribed" and subscriber.status != "unsubscribed":
        subscriber.unsubscribed_at = now
    elif record.status != "unsubscribed":
        subscriber.unsubscribed_at = None
    for name in subscriber_records.COLUMNS:
        value = getattr(record, name)
        setattr(subscriber, name, (value or None) if name == "weekly_day" else value)
    subscriber.updated_at = now


def _require_subscriber(session: Session, email: str) -> Subscriber:
    subscriber = queries.subscriber_by_email(session, subscriber_records.normalise_email(email))
    if subscriber is None:
        raise UsageError(f"No subscriber {email!r}. See `digest subscribers list`.")
    return subscriber


def _subscriber_json(subscriber: Subscriber) -> dict[str, Any]:
    data = dataclasses.asdict(_record(subscriber))
    for name in ("created_at", "confirmed_at", "unsubscribed_at", "updated_at"):
        value = getattr(subscriber, name)
        data[name] = value.isoformat(timespec="seconds") if value else None
    return data


@subscribers_group.command("add")
@click.argument("email")
@_interest_options
@click.option("--active", is_flag=True, help="Confirmed already (skip double opt-in).")
@pass_app
def subscribers_add(app: App, email: str, active: bool, **options: Any) -> None:
    """Add a subscriber (pending until confirmed, or --active).

    \b
    Examples:
      digest subscribers add ada@example.org --interests 'diffusion^2 -audio' --hour 8 --active
      digest subscribers add bob@example.org --interests-file bob.txt --tz America/New_York --weekly mon
    """
    record = subscriber_records.Preferences(
        email=email, status="active" if active else "pending", **_preference_changes(options)
    ).validated()
    with app.sessions.begin() as session:
        if queries.subscriber_by_email(session, record.email) is not None:
            raise UsageError(
                f"{record.email} is subscribed already; change it with `digest subscribers edit`."
            )
        now = utcnow()
        subscriber = Subscriber(email=record.email, created_at=now, updated_at=now)
        _apply(subscriber, record)
        session.add(subscriber)
    out.print(f"Added {record.email} ({record.status}).")


@subscribers_group.command("edit")
@click.argument("email")
@_interest_options
@click.option("--status", type=click.Choice(subscriber_records.STATUSES), help="Set the status.")
@pass_app
def subscribers_edit(app: App, email: str, **options: Any) -> None:
    """Change a subscriber's preferences; options left out stay as they are.

    \b
    Example:
      digest subscribers edit ada@example.org --max 5 --min-score 2 --status paused
    """
    with app.sessions.begin() as session:
        subscriber = _require_subscriber(session, email)
        changed = dataclasses.replace(_record(subscriber), **_preference_changes(options))
        _apply(subscriber, changed.validated())
    out.print(f"Updated {subscriber.email}.")


@subscribers_group.command("list")
@click.option(
    "--status", type=click.Choice(subscriber_records.STATUSES), help="Only subscribers with this status."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per subscriber per line.")
@pass_app
def subscribers_list(app: App, status: str | None, as_json: bool) -> None:
    """List subscribers.

    \b
    Example:
      digest subscribers list --status active
    """
    with app.sessions() as session:
        rows = [_subscriber_json(subscriber) for subscriber in queries.all_subscribers(session, status)]
    if as_json:
        print_json_lines(rows)
        return
    table = Table("email", "status", "zone", "hour", "frequency", "max", "interests", box=None)
    for row in rows:
        frequency = row["frequency"] + (f" ({row['weekly_day']})" if row["weekly_day"] else "")
        first_lines = "; ".join(row["interests"].splitlines()[:3]) or "(trending only)"
        table.add_row(
            row["email"],
            row["status"],
            row["timezone"],
            str(row["send_hour"]),
            frequency,
            str(row["max_papers"]),
            first_lines,
        )
    out.print(table)
    out.print(f"{len(rows)} subscribers.")


@subscribers_group.command("show")
@click.argument("email")
@pass_app
def subscribers_show(app: App, email: str) -> None:
    """Show one subscriber as JSON.

    \b
    Example:
      digest subscribers show ada@example.org
    """
    with app.sessions() as session:
        click.echo(json.dumps(_subscriber_json(_require_subscriber(session, email)), indent=2))


@subscribers_group.command("remove")
@click.argument("email")
@pass_app
def subscribers_remove(app: App, email: str) -> None:
    """Delete a subscriber and everything stored about them.

    \b
    Example:
      digest subscribers remove ada@example.org
    """
    with app.sessions.begin() as session:
        subscriber = _require_subscriber(session, email)
        session.delete(subscriber)
    out.print(f"Removed {subscriber.email}.")


@subscribers_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@pass_app
def subscribers_import(app: App, csv_file: str) -> None:
    """Add or update subscribers from a CSV file (as `export` writes it; only 'email' is required).

    All rows are checked first: one bad row imports nothing and names its line.

    \b
    Example:
      digest subscribers import subscribers.csv
    """
    try:
        text = Path(csv_file).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{csv_file} is not UTF-8 text; save it as UTF-8 CSV.") from None
    rows = list(subscriber_records.from_csv(text))
    added = updated = 0
    with app.sessions.begin() as session:
        checked = []
        for line, email, given in rows:
            subscriber = queries.subscriber_by_email(session, email)
            base = _record(subscriber) if subscriber else subscriber_records.Preferences(email=email)
            try:
                checked.append((subscriber, dataclasses.replace(base, **given).validated()))
            except UsageError as exc:
                raise UsageError(f"line {line}: {exc}") from None
        for subscriber, record in checked:
            if subscriber is None:
                now = utcnow()
                subscriber = Subscriber(email=record.email, created_at=now, updated_at=now)
                session.add(subscriber)
                added += 1
            else:
                updated += 1
            _apply(subscriber, record)
    out.print(f"Imported {len(rows)} rows: {added} added, {updated} updated.")


@subscribers_group.command("export")
@pass_app
def subscribers_export(app: App) -> None:
    """Write every subscriber as CSV to standard output (`import` reads it back).

    \b
    Example:
      digest subscribers export > subscribers.csv
    """
    with app.sessions() as session:
        click.echo(subscriber_records.to_csv(_record(s) for s in queries.all_subscribers(session)), nl=False)


# --- score ------------------------------------------------------------------------------------


def load_docs(session: Session, day: date | None) -> list[scoring.Doc]:
    """The papers to score (one date's, or all) with their latest metrics, as scoring reads them."""
    return composer.load_docs(session, queries.listed_papers(session, day))


@cli.command("score")
@click.argument("email", required=False)
@click.option("--interests", "adhoc", help="Score these interest lines instead of a subscriber's.")
@click.option("--date", "day", help="Papers first listed on this date (default: the latest listing date).")
@click.option("--all", "every", is_flag=True, help="Rank every stored paper instead of one date's.")
@click.option(
    "--limit", type=click.IntRange(1, 1000), help="At most this many (default: the subscriber's maximum)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per paper per line.")
@pass_app
def score_command(
    app: App,
    email: str | None,
    adhoc: str | None,
    day: str | None,
    every: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """Rank papers for a subscriber (or ad-hoc interests) and say why each was picked.

    \b
    Examples:
      digest score ada@example.org --date 2026-11-20
      digest score --interests '"video generation"' --all --limit 5 --json
    """
    if (email is None) == (adhoc is None):
        raise UsageError("Give a subscriber's EMAIL or --interests TEXT (one of them).")
    with app.sessions() as session:
        if email is not None:
            subscriber = _require_subscriber(session, email)
            text, max_papers, min_score = subscriber.interests, subscriber.max_papers, subscriber.min_score
        else:
            text, max_papers, min_score = adhoc or "", 10, 0.0
        lines = parse_interests(text)
        chosen = (
            None
            if every
            else (parse_date(day, "--date") or queries.latest_listing_day(session, ingest.today_utc()))
        )
        if not every and chosen is None:
            raise UsageError("No papers are stored yet. Run `digest scrape` first.")
        docs = load_docs(session, chosen)
        corpus = scoring.corpus_from(queries.paper_texts(session))
    profile = scoring.Profile(lines, limit=limit or max_papers, min_score=min_score)
    profiles = scoring.ProfileSet.build([profile])
    index = scoring.build_index(docs, corpus, composer.weights(app.settings), profiles.atoms)
    picks = scoring.rank(index, profiles)[0]
    rows = []
    for pick in picks:
        doc = index.docs[pick.doc]
        why = scoring.explain(index, pick, profile)
        rows.append(
            {
                "id": doc.id,
                "title": doc.title,
                "score": round(pick.score, 4),
                "relevance": round(pick.relevance, 4),
                "trending": round(pick.trending, 4),
                "upvotes": doc.upvotes,
                **why.to_json(),
            }
        )
    if as_json:
        print_json_lines(rows)
        return
    where = "all stored papers" if every else f"papers listed on {chosen.isoformat()}"
    out.print(f"{len(rows)} of {len(docs)} {where}:")
    for number, row in enumerate(rows, start=1):
        out.print(f"{number:>3}. [bold]{escape(row['title'])}[/] ({row['id']})", highlight=False)
        why = f"matched {', '.join(row['matched'])} (line: {row['line']})" if row["line"] else "trending"
        score = f"score {row['score']:.2f} (relevance {row['relevance']:.2f}, trending {row['trending']:.2f})"
        out.print(f"     {score}; {why}", markup=False)
        if row["snippet"]:
            out.print(f"     {row['snippet']}", markup=False)


# --- mail ---------------------------------------------------------------------------------------


def parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return composer.utc(datetime.fromisoformat(value))
    except ValueError:
        raise UsageError(
            f"--now {value!r} is not a date and time; use ISO 8601, e.g. --now 2026-11-24T07:30:00+01:00."
        ) from None


@cli.command("preview")
@click.argument("email", required=False)
@click.option("--interests", "adhoc", help="Preview for these interest lines instead of a subscriber's.")
@click.option("--date", "day", help="The digest date (YYYY-MM-DD; default: today where the subscriber is).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "html", "eml"]),
    help="The plain-text part (the default), the HTML part (the default with --open), or the whole message.",
)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file.")
@click.option("--open", "open_it", is_flag=True, help="Open the result in a browser (HTML) or viewer.")
@pass_app
def preview_command(
    app: App,
    email: str | None,
    adhoc: str | None,
    day: str | None,
    fmt: str | None,
    out: str | None,
    open_it: bool,
) -> None:
    """Render a digest as it would be sent, without sending or storing anything.

    Papers are chosen as `digest send` would: first seen since the subscriber's last digest (or the
    last day), never sent to them before. Links carry a placeholder token.

    \b
    Examples:
      digest preview ada@example.org
      digest preview ada@example.org --format html --out ada.html --open
      digest preview --interests '"diffusion model"
      LLM agents' --format eml
    """
    if (email is None) == (adhoc is None):
        raise UsageError("Give a subscriber's EMAIL or --interests TEXT (one of them).")
    digest_date = parse_date(day, "--date")
    with app.sessions() as session:
        if email is not None:
            subscriber = _require_subscriber(session, email)
        else:
            text = subscriber_records.check_interests(adhoc or "")
            subscriber = Subscriber(
                id=0,
                email="preview@example.org",
                interests=text,
                timezone="UTC",
                send_hour=0,
                frequency="daily",
                max_papers=10,
                min_score=0.0,
                trending_section=True,
            )
        result = composer.preview(app.settings, session, subscriber, digest_date)
    if result.composed.error:
        raise UsageError(result.composed.error)
    fmt = fmt or ("html" if open_it else "text")
    content = {"text": result.text, "html": result.html}.get(fmt)
    data = result.message if content is None else content.encode("utf-8")
    if out is None and open_it:
        suffix = {"text": "txt"}.get(fmt, fmt)
        out = str(Path(tempfile.mkdtemp(prefix="digest-preview-")) / f"preview.{suffix}")
    if out is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        try:
            Path(out).write_bytes(data)
        except OSError as exc:
            raise UsageError(
                f"Cannot write {out}: {exc.strerror}. Give --out a path in a folder that exists."
            ) from None
        err.print(f"Wrote {out}: {result.subject}")
        if open_it:
            click.launch(out)
    if result.digest.empty:
        err.print("Nothing to send: no new paper matched. `digest send` would skip this digest.")


def _print_send_summary(summary: delivery.Summary) -> None:
    table = Table("newly due", "sent", "skipped", "failed temporary", "failed permanent", box=None)
    table.add_row(
        str(summary.planned),
        str(summary.sent),
        str(summary.skipped),
        str(summary.failed_temporary),
        str(summary.failed_permanent),
    )
    out.print(table)
    if summary.failed_temporary:
        out.print(
            "Temporary failures are retried by later runs: "
            "`digest deliveries list --status failed-temporary` shows them."
        )
    if summary.failed_permanent:
        out.print("See why with `digest deliveries list --status failed-permanent`.")
    if summary.deferred:
        out.print(f"{summary.deferred} digests wait for the subscriber's earlier one, still being sent.")
    if summary.possible_duplicates:
        out.print(
            f"{len(summary.possible_duplicates)} digests were resent after a sender stopped mid-send; "
            "if the server had accepted them, they went out twice (the log names them)."
        )


@cli.command("send")
@click.option("--now", "now_text", help="Act as if it were this time (ISO 8601; no zone means UTC).")
@click.option(
    "--dry-run", is_flag=True, help="Show who is due and what they would get; send and store nothing."
)
@click.option("--only", "only", help="Only this subscriber.")
@click.option(
    "--test-to", help="Send what is due to this address instead, and record nothing (to check a mail)."
)
@pass_app
def send_command(
    app: App, now_text: str | None, dry_run: bool, only: str | None, test_to: str | None
) -> None:
    """Send every digest that is due: active subscribers whose local send hour has passed and who have
    none for their local date yet, plus retries. Each digest goes out once, even across crashes.

    \b
    Examples:
      digest send
      digest send --dry-run
      digest send --only ada@example.org --test-to me@example.org
      digest send --now 2026-11-24T08:00:00+00:00
    """
    now = parse_now(now_text) or datetime.now(UTC)
    only_email = subscriber_records.normalise_email(only) if only else None
    if dry_run or test_to:
        _send_without_ledger(app, now, only_email, test_to)
        return
    with mailer.transport_for(app.settings) as transport, err.status("sending") as status:
        sender = delivery.Sender(app.settings, app.sessions, transport, progress=status.update)
        summary = sender.run(now, only_email)
    _print_send_summary(summary)
    if summary.failed:
        sys.exit(1)


def _send_without_ledger(app: App, now: datetime, only: str | None, test_to: str | None) -> None:
    """--dry-run and --test-to: compose what is due and print it, or mail it to one address."""
    recipient = subscriber_records.normalise_email(test_to) if test_to else None
    with app.sessions() as session:
        query = select(Subscriber).where(Subscriber.status == "active").order_by(Subscriber.email)
        if only:
            query = query.where(Subscriber.email == only)
        chooser = composer.Composer(app.settings, session)
        due = []
        for subscriber in session.scalars(query).all():
            last = session.scalar(
                select(func.max(Delivery.digest_date)).where(Delivery.subscriber_id == subscriber.id)
            )
            try:
                day = delivery.local_date_if_due(subscriber, now, last)
            except (ValueError, KeyError):  # an unknown time zone: `send` leaves them out too
                err.print(f"{subscriber.email}: unknown time zone {subscriber.timezone!r}, left out.")
                continue
            if day is None:
                continue
            stored = select(Delivery.id).where(
                Delivery.subscriber_id == subscriber.id, Delivery.digest_date == day
            )
            if last is None or last < day or session.scalar(stored) is None:  # no row for that day
                result = composer.preview(app.settings, session, subscriber, day, now, chooser)
                due.append((subscriber.email, day, result))
    table = Table("subscriber", "date", "papers (with trending)", "subject", box=None)
    for email, day, result in due:
        papers = len(result.digest.items) + len(result.digest.trending)
        subject = "(nothing: skipped)" if result.digest.empty else result.subject
        table.add_row(email, day.isoformat(), str(papers), subject)
    out.print(table)
    if recipient is None:
        out.print(f"{len(due)} digests due (dry run: nothing sent or stored).")
        return
    sender = mailer.sender_for(app.settings)
    messages = []
    for number, (_email, _day, result) in enumerate(due):
        if result.digest.empty and not app.settings.send_empty_digest:
            continue
        message_id = mailer.new_message_id(sender.domain, "test")
        envelope = mailer.Envelope(recipient, message_id, now, result.digest.links.unsubscribe)
        data = mailer.build_message(sender, envelope, "[test] " + result.subject, result.text, result.html)
        messages.append(
            mailer.Outgoing(number, sender.address, mailer.checked_address(recipient), message_id, data)
        )
    with mailer.transport_for(app.settings) as transport:
        outcomes = list(transport.deliver(messages))
    failed = [outcome for outcome in outcomes if not outcome.ok]
    out.print(f"Sent {len(outcomes) - len(failed)} test messages to {recipient}; nothing recorded.")
    for outcome in failed:
        out.print(f"[red]failed:[/] {escape(outcome.error or '')}")
    if failed:
        sys.exit(1)


@cli.command("run")
@click.option("--now", "now_text", help="Act as if it were this time (ISO 8601; no zone means UTC).")
@pass_app
def run_command(app: App, now_text: str | None) -> None:
    """The daily job once: fetch every enabled source, then send every digest that is due.

    Unreachable sources are reported and the digests are still sent from what is stored. Exits
    non-zero when every source failed or a digest could not be sent.

    \b
    Example:
      digest run
    """
    now = parse_now(now_text)
    with app.sessions() as session:
        sources = [source for source in queries.all_sources(session) if source.enabled]
    reports: list[ingest.SourceReport] = []
    if sources:
        with Fetcher(app.settings) as fetcher, err.status("fetching") as status:
            reports = ingest.scrape(app.sessions, fetcher, sources, progress=status.update)
        _print_scrape_summary(reports, False)
    else:
        out.print("No enabled sources: sending from the papers already stored.")
    with mailer.transport_for(app.settings) as transport, err.status("sending") as status:
        sender = delivery.Sender(app.settings, app.sessions, transport, progress=status.update)
        summary = sender.run(now)
    _print_send_summary(summary)
    where = {"outbox": f" in {app.settings.outbox_dir}/", "console": " on standard output"}.get(
        app.settings.transport, ""
    )
    if summary.sent:
        out.print(f"{summary.sent} {'digest' if summary.sent == 1 else 'digests'} delivered{where}.")
    if summary.failed or (reports and all(report.status == "error" for report in reports)):
        sys.exit(1)


@cli.group("deliveries")
def deliveries_group() -> None:
    """The delivery ledger: one row per subscriber and digest date.

    \b
    Example:
      digest deliveries list --date 2026-11-24 --status failed-temporary
    """


def _delivery_json(row: Delivery, email: str) -> dict[str, Any]:
    def stamp(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "id": row.id,
        "email": email,
        "date": row.digest_date.isoformat(),
        "status": row.status,
        "attempts": row.attempts,
        "message_id": row.message_id,
        "subject": row.subject,
        "smtp_code": row.smtp_code,
        "error": row.last_error,
        "sent_at": stamp(row.sent_at),
        "next_attempt_at": stamp(row.next_attempt_at),
        "give_up_at": stamp(row.give_up_at),
        "papers_after": stamp(row.papers_after),
        "papers_until": stamp(row.papers_until),
        "created_at": stamp(row.created_at),
        "updated_at": stamp(row.updated_at),
    }


@deliveries_group.command("list")
@click.option("--date", "day", help="Only digests of this date (YYYY-MM-DD).")
@click.option("--status", type=click.Choice(delivery.STATUSES), help="Only rows with this status.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row per line.")
@pass_app
def deliveries_list(app: App, day: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List ledger rows, newest first.

    \b
    Examples:
      digest deliveries list
      digest deliveries list --status failed-permanent --json
    """
    digest_date = parse_date(day, "--date")
    with app.sessions() as session:
        query = select(Delivery, Subscriber.email).join(Subscriber).order_by(Delivery.id.desc()).limit(limit)
        if digest_date:
            query = query.where(Delivery.digest_date == digest_date)
        if status:
            query = query.where(Delivery.status == status)
        rows = [_delivery_json(row, email) for row, email in session.execute(query)]
    if as_json:
        print_json_lines(rows)
        return
    table = Table("id", "date", "subscriber", "status", "tries", "subject or error", box=None)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["date"],
            row["email"],
            row["status"],
            str(row["attempts"]),
            row["error"] or row["subject"] or "",
        )
    out.print(table)
    out.print(f"{len(rows)} deliveries.")


def _require_delivery(session: Session, delivery_id: int) -> Delivery:
    row = session.get(Delivery, delivery_id)
    if row is None:
        raise UsageError(f"No delivery {delivery_id}. See `digest deliveries list`.")
    return row


@deliveries_group.command("show")
@click.argument("delivery_id", type=int)
@pass_app
def deliveries_show(app: App, delivery_id: int) -> None:
    """Show one ledger row as JSON, with the papers it held.

    \b
    Example:
      digest deliveries show 42
    """
    with app.sessions() as session:
        row = _require_delivery(session, delivery_id)
        email = session.get(Subscriber, row.subscriber_id).email
        data = _delivery_json(row, email)
        held = [paper.paper_id for paper in row.papers]
        titles = dict(session.execute(select(Paper.id, Paper.title).where(Paper.id.in_(held))).all())
        data["papers"] = [
            {
                "id": paper.paper_id,
                "title": titles.get(paper.paper_id),
                "section": paper.section,
                "score": round(paper.score, 4),
                "line": paper.line,
            }
            for paper in row.papers
        ]
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@deliveries_group.command("retry")
@click.argument("delivery_id", type=int)
@click.option("--now", "now_text", help="Act as if it were this time (ISO 8601; no zone means UTC).")
@pass_app
def deliveries_retry(app: App, delivery_id: int, now_text: str | None) -> None:
    """Send a failed digest again with the next `digest send` (same papers, same Message-ID): it is
    due again from now (or --now) and retried for retry_deadline hours from then.

    \b
    Examples:
      digest deliveries retry 42 && digest send
      digest deliveries retry 42 --now 2026-11-24T08:00:00+00:00
    """
    now = parse_now(now_text) or datetime.now(UTC)
    with app.sessions() as session:
        row = _require_delivery(session, delivery_id)
        if not delivery.retry(session, delivery_id, now, app.settings.retry_deadline):
            raise UsageError(f"Delivery {delivery_id} is {row.status}; only failed ones can be retried.")
    out.print(f"Delivery {delivery_id} will be sent by the next `digest send`.")


# --- bench ------------------------------------------------------------------------------------


@cli.command("serve")
@click.option("--host", help="Address to listen on (default: listen_host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: listen_port, 8000).")
@click.option("--no-web", is_flag=True, help="Run only the scheduler (fetch, send, clean up).")
@click.option("--no-scheduler", is_flag=True, help="Run only the web front.")
@pass_app
def serve_command(app: App, host: str | None, port: int | None, no_web: bool, no_scheduler: bool) -> None:
    """The service: the web front (sign-up, preferences, unsubscribe) and the scheduler, which
    fetches each enabled source every fetch_interval, sends what is due every send_interval and
    cleans up daily. SIGTERM or Ctrl-C finishes the message in flight and exits.

    On SQLite one scheduler may run (start others with --no-scheduler); on PostgreSQL any number.

    \b
    Examples:
      digest serve
      digest serve --host 0.0.0.0 --port 8080 --no-scheduler
      digest serve --no-web
    """
    from digest.scheduler import Scheduler, run_until_signalled

    if no_web and no_scheduler:
        raise UsageError("--no-web and --no-scheduler together leave nothing to run; drop one of them.")
    settings = app.settings
    sessions = app.sessions
    mailer.transport_for(settings).close()  # a mail setting at fault stops us now, not at the first send
    service = None if no_scheduler else Scheduler(settings, sessions)
    if service is not None:
        service.claim()  # on SQLite, refuse a second scheduler before anything starts
    if no_web:
        assert service is not None
        err.print("digest: scheduler running (no web front); Ctrl-C or SIGTERM stops it.")
        run_until_signalled(service)
        return
    import uvicorn

    from digest.web import Web, create_app

    host, port = host or settings.listen_host, port or settings.listen_port
    _check_listen(host, port)
    web_app = create_app(Web(settings, sessions, service))
    what = "web front and scheduler" if service is not None else "web front only"
    err.print(f"digest: serving http://{host}:{port}/ ({what}); Ctrl-C or SIGTERM stops it.")
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again with the handlers it
    # found in place: these make that a normal exit (status 0), as with --no-web.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_args: None)
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level.lower(),
        log_config=None,
        server_header=False,
        access_log=False,
    )


def _check_listen(host: str, port: int) -> None:
    """Raise ConfigError, saying what to change, when ``host:port`` cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"Cannot listen on {host!r}: {exc.strerror}. Give an address of this machine with --host "
            "or DIGEST_LISTEN_HOST (127.0.0.1, or 0.0.0.0 for every interface)."
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"Cannot listen on {host}:{port}: {exc.strerror}. Stop what uses the port, or choose "
                "another with --port or DIGEST_LISTEN_PORT."
            ) from None


@cli.command("healthcheck")
@click.option("--url", help="The readiness address to ask (default: http://127.0.0.1:listen_port/readyz).")
@click.option("--database", "database_only", is_flag=True, help="Check the database only (for --no-web).")
@pass_app
def healthcheck_command(app: App, url: str | None, database_only: bool) -> None:
    """Exit 0 when the service is ready, 1 when not (3 when the database is at fault), with one
    line saying why: for container
    health checks. Asks the web front's /readyz, or with --database checks that the database
    answers with the current schema (for a `digest serve --no-web` container).

    \b
    Examples:
      digest healthcheck
      digest healthcheck --database
    """
    if database_only:
        app.sessions  # noqa: B018 - raises DatabaseError or SchemaOutOfDate, each saying what to do
        click.echo("ready: the database answers with the current schema")
        return
    target = url or f"http://127.0.0.1:{app.settings.listen_port}/readyz"
    try:
        answer = httpx.get(target, timeout=5.0)
        body = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise DigestError(f"not ready: {target} did not answer ({exc}); is `digest serve` running?") from None
    if answer.status_code != 200:
        reasons = ", ".join(f"{key}: {value}" for key, value in body.items() if key != "status")
        raise DigestError(f"not ready: {reasons}")
    click.echo(f"ready: {target}")


@cli.command("clean-up")
@click.option("--now", "now_text", help="Act as if it were this time (ISO 8601; no zone means UTC).")
@pass_app
def clean_up_command(app: App, now_text: str | None) -> None:
    """Delete sign-ups never confirmed, expired link tokens and fetch log entries older than
    fetch_log_days (what `digest serve` does daily; for running without it, from cron or a timer).
    What has expired is judged at the current time, or at --now.

    \b
    Examples:
      digest clean-up
      digest clean-up --now 2027-01-01T00:00:00+00:00
    """
    from digest import accounts

    now = parse_now(now_text) or datetime.now(UTC)
    with app.sessions() as session:
        counts = accounts.clean_up(session, now, app.settings)
    out.print(
        f"Deleted {counts['unconfirmed']} sign-ups never confirmed, {counts['tokens']} expired tokens "
        f"and {counts['fetch_log']} old fetch log entries."
    )


@cli.group("bench")
def bench_group() -> None:
    """Measure speed; each prints a table, or one JSON object with --json.

    \b
    Example:
      digest bench parse --json
    """


@bench_group.command("parse")
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
@click.option(
    "--papers", type=click.IntRange(min=100), default=10_000, show_default=True, help="Papers to ingest."
)
def bench_parse(as_json: bool, papers: int) -> None:
    """Parsing and bulk-ingest speed, beside a one-row-per-transaction baseline measured in the same run.

    Uses a temporary SQLite database; touches nothing of yours.

    \b
    Example:
      digest bench parse --json
    """
    from digest.bench import bench_parse as run

    figures = run(ingest_papers=papers, progress=lambda message: err.print(message))
    _print_figures(figures, as_json)


@bench_group.command("score")
@click.option("--subscribers", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--papers", type=click.IntRange(min=10), default=2_000, show_default=True)
@click.option(
    "--baseline-sample",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Subscribers the naive loop scores.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
def bench_score(subscribers: int, papers: int, baseline_sample: int, as_json: bool) -> None:
    """Scoring speed: subscribers per second for the compiled scorer beside a naive Python loop.

    Papers mix real fixture sentences with fixture words; each subscriber has 5 interest lines
    drawn from fixture keywords and abstracts. Touches no database.

    \b
    Example:
      digest bench score --subscribers 100000 --papers 2000 --json
    """
    from digest.bench import bench_score as run

    figures = run(
        subscribers=subscribers,
        papers=papers,
        baseline_sample=baseline_sample,
        progress=lambda m: err.print(m),
    )
    _print_figures(figures, as_json)


@bench_group.command("render")
@click.option("--messages", type=click.IntRange(min=10), default=5_000, show_default=True)
@click.option(
    "--baseline-sample",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Messages the naive renderer makes.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
def bench_render(messages: int, baseline_sample: int, as_json: bool) -> None:
    """Rendering speed: whole messages (HTML, text, MIME) per second beside a naive renderer.

    Digests of up to 10 papers and 3 trending ones are composed from synthetic papers and
    subscribers (as `bench score` makes them). The naive renderer uses the same templates but inlines
    the stylesheet and wraps text anew for every message and builds each with EmailMessage.

    \b
    Example:
      digest bench render --json
    """
    from digest.bench_mail import bench_render as run

    _print_figures(run(messages=messages, baseline_sample=baseline_sample, progress=err.print), as_json)


@bench_group.command("send")
@click.option("--messages", type=click.IntRange(min=10), default=10_000, show_default=True)
@click.option(
    "--connections",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="SMTP connections at once.",
)
@click.option(
    "--baseline-sample",
    type=click.IntRange(min=1),
    default=1_000,
    show_default=True,
    help="Messages sent with a new connection each.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object of the figures.")
def bench_send(messages: int, connections: int, baseline_sample: int, as_json: bool) -> None:
    """Sending speed: messages of about 30 KB per second over loopback to a fast SMTP sink that the
    benchmark starts in a process of its own, beside one new connection per message.

    \b
    Example:
      digest bench send --connections 2 --json
    """
    from digest.bench_mail import bench_send as run

    figures = run(
        messages=messages, connections=connections, baseline_sample=baseline_sample, progress=err.print
    )
    _print_figures(figures, as_json)


@bench_group.command("pipeline")
@click.option(
    "--subscribers",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="Synthetic subscribers, all due.",
)
@click.option(
    "--papers", type=click.IntRange(1), default=2_000, show_default=True, help="Synthetic papers of the day."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    multiple=True,
    help="Sender processes started at once (default 1). Give it again to run again with as many, "
    "from a fresh database, and get each run's speed as a ratio to the first.",
)
@click.option(
    "--database-url",
    help="A PostgreSQL to run on (in a schema of its own, dropped after); default: a SQLite file.",
)
@click.option(
    "--kill",
    is_flag=True,
    help="SIGKILL one worker once half the digests reached the sink; the others take over its claims "
    "(10 s lease). Needs --workers 2 or more.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='One JSON object of the figures ({"runs": [...]} for several --workers).',
)
def bench_pipeline(
    subscribers: int,
    papers: int,
    workers: tuple[int, ...],
    database_url: str | None,
    kill: bool,
    as_json: bool,
) -> None:
    """The daily send end to end: plan, claim, score and compose, render, send to a fast SMTP sink
    on loopback, record; with --workers processes at once. Reports total_s, digests_per_s,
    peak_rss_mb and each stage's seconds, and fails unless every digest reached the sink (the
    sink records each Message-ID) and any copy is one a sender logged as a possible duplicate.

    \b
    Examples:
      digest bench pipeline --subscribers 100000 --papers 2000 --json
      digest bench pipeline --workers 1 --workers 2 --database-url postgresql+psycopg://postgres@127.0.0.1/test
      digest bench pipeline --subscribers 100000 --workers 4 --kill --database-url postgresql://...
    """
    from digest.bench_pipeline import bench_pipeline as run

    counts = workers or (1,)
    if kill and min(counts) < 2:
        raise UsageError("--kill needs --workers 2 or more: the survivors take over the killed one's claims.")
    runs = [
        run(
            subscribers=subscribers,
            papers=papers,
            workers=count,
            database_url=database_url,
            kill=kill,
            progress=err.print,
        )
        for count in counts
    ]
    first = runs[0]["digests_per_s"]
    for figures in runs:
        figures["ratio_to_first"] = round(figures["digests_per_s"] / first, 2) if first else None
    if as_json:
        click.echo(json.dumps(runs[0] if len(runs) == 1 else {"runs": runs}))
        return
    for figures in runs:
        flat = {key: value for key, value in figures.items() if not isinstance(value, dict | list)}
        flat.update({f"{stage} s": seconds for stage, seconds in figures["stage_s"].items()})
        _print_figures(flat, False)


def _print_figures(figures: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(figures))
        return
    table = Table("figure", "value", box=None)
    for name, value in figures.items():
        table.add_row(name, f"{value:,.2f}" if isinstance(value, float) else str(value))
    out.print(table)


def main() -> None:
    cli(prog_name="digest")
