"""``digest parse``, ``digest sources`` and ``digest scrape``: listings, and fetching them."""

from __future__ import annotations

import sys
from typing import Any

import click

from digest.cli.common import (
    App,
    err,
    now_of,
    now_option,
    out,
    parse_date,
    pass_app,
    print_json_lines,
    shown,
    table,
)
from digest.usecases.terms import KINDS


@click.command("parse")
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
    from digest.usecases import sources

    papers = sources.parse_location(app.context, location, kind)
    if as_json:
        print_json_lines(paper.to_json() for paper in papers)
        return
    rows = table("#", "id", "upvotes", "published", "title")
    for paper in papers:
        rows.add_row(
            str(paper.rank or ""),
            shown(paper.id),
            "" if paper.upvotes is None else str(paper.upvotes),
            paper.published.isoformat() if paper.published else "",
            shown(paper.title),
        )
    out().print(rows)
    kinds = sorted({paper.kind for paper in papers})
    out().print(f"{len(papers)} papers ({', '.join(kinds) or kind}).")


@click.group("sources")
def sources_group() -> None:
    """List and manage the listings digest fetches.

    \b
    Example:
      digest sources add ml-rss --kind arxiv-rss --url https://rss.arxiv.org/rss/cs.LG+cs.CL
    """


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source per line.")
@now_option
@pass_app
def sources_list(app: App, as_json: bool, now_text: str | None) -> None:
    """Show every source with its state, its last new paper, its next expected batch and its
    last fetch. A state: fresh (has its latest batch), resting (no batch expected today), late (a
    batch is due and missing), stale (it served the previous batch again, or nothing, where a new
    one was due) or failing (its last fetch failed); each one not fresh is explained below the table.

    \b
    Examples:
      digest sources list
      digest sources list --json
      digest sources list --now 2026-12-04T10:00:00-05:00
    """
    from digest.usecases import sources

    found = sources.list_sources(app.context, now_of(app, now_text))
    if as_json:
        print_json_lines(found)
        return
    rows = table("name", "kind", "enabled", "state", "last new paper", "next batch", "last fetch", "url")
    for row in found:
        rows.add_row(
            shown(row["name"]),
            row["kind"],
            "yes" if row["enabled"] else "no",
            row["state"],
            _minute(row["last_new_at"]) or "none yet",
            _minute(row["next_batch_at"]) or "unknown",
            _last_fetch(row),
            shown(row["url"]),
        )
    out().print(rows)
    for row in found:
        if row["state"] != "fresh":
            _explain(row)


def _minute(moment: str | None) -> str:
    """An ISO moment from the JSON, cut to the minute and read as UTC: "2026-12-01 20:00 UTC"."""
    return f"{moment[:16].replace('T', ' ')} UTC" if moment else ""


def _last_fetch(row: dict[str, Any]) -> str:
    if not row["last_status"]:
        return "never fetched"
    failures = row["consecutive_failures"]
    said = f"{row['last_status']} {_minute(row['last_fetched_at'])}"
    return f"{said} ({failures} failures in a row)" if failures > 1 else said


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
    from digest.usecases import sources

    stored = sources.add_source(app.context, name, kind, url, enabled=not disabled)
    out().print(f"Added source {name} ({kind}) {'disabled' if disabled else 'enabled'}: {stored}")


@sources_group.command("enable")
@click.argument("name")
@pass_app
def sources_enable(app: App, name: str) -> None:
    """Fetch source NAME again on the next scrape.

    \b
    Example:
      digest sources enable ml-rss
    """
    from digest.usecases import sources

    sources.set_enabled(app.context, name, True)
    out().print(f"Source {name} enabled.")


@sources_group.command("disable")
@click.argument("name")
@pass_app
def sources_disable(app: App, name: str) -> None:
    """Stop fetching source NAME; its papers stay.

    \b
    Example:
      digest sources disable hf-daily
    """
    from digest.usecases import sources

    sources.set_enabled(app.context, name, False)
    out().print(f"Source {name} disabled.")


@sources_group.command("remove")
@click.argument("name")
@pass_app
def sources_remove(app: App, name: str) -> None:
    """Remove source NAME with its listings and fetch log; papers stay.

    \b
    Example:
      digest sources remove ml-rss
    """
    from digest.usecases import sources

    sources.remove_source(app.context, name)
    out().print(f"Removed source {name}.")


@click.command("scrape")
@click.option(
    "--source", "names", multiple=True, help="Only this source (repeatable). Default: every enabled one."
)
@click.option("--date", "day", help="Fetch this listing date (YYYY-MM-DD) of date-addressed sources.")
@click.option(
    "--since",
    help="Backfill every date from this one (YYYY-MM-DD) to today, for sources that take dates; "
    "others are fetched once.",
)
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
    from digest.usecases import sources

    single, start = parse_date(day, "--date"), parse_date(since, "--since")
    with err().status("fetching") as status:
        reports = sources.scrape_sources(
            app.context, names, day=single, since=start, dry_run=dry_run, progress=status.update
        )
    print_scrape_summary(reports, dry_run)
    if all(report.status == "error" for report in reports):
        sys.exit(1)


def print_states(found: list[dict[str, Any]], names: set[str]) -> None:
    """One line with the state of each source in ``names``, then why each late or stale one is."""
    chosen = [row for row in found if row["name"] in names]
    said = ", ".join(f"{shown(row['name'])} {row['state']}" for row in chosen)
    out().print(f"Sources now: {said}.", highlight=False)
    for row in chosen:
        if row["state"] in ("late", "stale"):
            _explain(row)


def _explain(row: dict[str, Any]) -> None:
    """The line that says why a source is in its state: "ml: late: the batch due … has not arrived."."""
    why = shown(row["state_why"]).rstrip(".")
    out().print(f"{shown(row['name'])}: {row['state']}: {why}.", soft_wrap=True, highlight=False)


def print_scrape_summary(reports: list[Any], dry_run: bool) -> None:
    rows = table("source", "kind", "status", "seen", "new", "updated", "seconds")
    for report in reports:
        status = {"ok": "[green]ok[/]", "not-modified": "not modified", "error": "[red]failed[/]"}[
            report.status
        ]
        rows.add_row(
            shown(report.name),
            report.kind,
            status,
            str(report.seen),
            str(report.new),
            str(report.updated),
            f"{report.seconds:.2f}",
        )
    out().print(rows)
    for report in reports:
        if report.error:
            out().print(f"[red]{shown(report.name)}:[/] {shown(report.error)}", highlight=False)
    total_new = sum(report.new for report in reports)
    verb = "would add" if dry_run else "added"
    noun = "source" if len(reports) == 1 else "sources"
    note = " (dry run: nothing written)" if dry_run else "."
    out().print(f"{verb} {total_new} new papers from {len(reports)} {noun}{note}")
