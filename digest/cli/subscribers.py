"""``digest subscribers``: add, change, list, import and export subscribers."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import click

from digest.cli.common import App, err, out, pass_app, print_json_lines, shown, table
from digest.errors import DigestError, UsageError
from digest.usecases.terms import SUBSCRIBER_STATUSES

PREFERENCE_OPTIONS = {
    "interests",
    "timezone",
    "send_hour",
    "frequency",
    "weekly_day",
    "max_papers",
    "min_score",
    "trending_section",
    "status",
}


@click.group("subscribers")
def subscribers_group() -> None:
    """Add, change, list, import and export subscribers.

    \b
    Example:
      digest subscribers add ada@example.org --interests '"diffusion model"' --tz Europe/London --active
    """


def _interest_options(command: Any, editing: bool = False) -> Any:
    """The preference options; ``editing`` adds --daily (back from weekly), which only edit takes."""
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
        click.option(
            "--trending/--no-trending", "trending_section", default=None, help="Add a 'trending today' part."
        ),
    ]
    if editing:
        options.append(click.option("--daily", is_flag=True, help="Back to a daily digest."))
    for option in reversed(options):
        command = option(command)
    return command


def _changes(values: dict[str, Any]) -> dict[str, Any]:
    """The preferences the command-line options set."""
    if values.get("interests") is not None and values.get("interests_file"):
        raise UsageError("Give --interests or --interests-file, not both.")
    if values.get("interests_file"):
        values["interests"] = Path(values["interests_file"]).read_text(encoding="utf-8")
    if values.get("weekly_day"):
        values["frequency"] = "weekly"
    if values.get("daily"):
        values["frequency"], values["weekly_day"] = "daily", ""
    return {key: value for key, value in values.items() if key in PREFERENCE_OPTIONS and value is not None}


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
    from digest.usecases import subscribers

    record = subscribers.add(app.context, email, _changes(options), active=active)
    out().print(f"Added {record.email} ({record.status}).")


@subscribers_group.command("edit")
@click.argument("email")
@functools.partial(_interest_options, editing=True)
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Set the status.")
@pass_app
def subscribers_edit(app: App, email: str, **options: Any) -> None:
    """Change a subscriber's preferences; options left out stay as they are. Making an unsubscribed
    or bounced subscriber active (or paused) again starts them with a clean slate, as when they
    subscribe again themselves.

    \b
    Example:
      digest subscribers edit ada@example.org --max 5 --min-score 2 --status paused
    """
    from digest.usecases import subscribers

    out().print(f"Updated {subscribers.edit(app.context, email, _changes(options))}.")


@subscribers_group.command("list")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), help="Only subscribers with this status.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per subscriber per line.")
@pass_app
def subscribers_list(app: App, status: str | None, as_json: bool) -> None:
    """List subscribers.

    \b
    Example:
      digest subscribers list --status active
    """
    from digest.usecases import subscribers

    found = subscribers.list_subscribers(app.context, status)
    if as_json:
        print_json_lines(found)
        return
    rows = table("email", "status", "zone", "hour", "frequency", "max", "interests")
    for row in found:
        frequency = row["frequency"] + (f" ({row['weekly_day']})" if row["weekly_day"] else "")
        first_lines = "; ".join(row["interests"].splitlines()[:3]) or "(trending only)"
        rows.add_row(
            row["email"],
            row["status"],
            row["timezone"],
            str(row["send_hour"]),
            frequency,
            str(row["max_papers"]),
            first_lines,
        )
    out().print(rows)
    out().print(f"{len(found)} subscribers.")


@subscribers_group.command("show")
@click.argument("email")
@pass_app
def subscribers_show(app: App, email: str) -> None:
    """Show one subscriber as JSON.

    \b
    Example:
      digest subscribers show ada@example.org
    """
    from digest.usecases import subscribers

    click.echo(json.dumps(subscribers.show(app.context, email), indent=2))


@subscribers_group.command("remove")
@click.argument("email")
@pass_app
def subscribers_remove(app: App, email: str) -> None:
    """Delete a subscriber and everything stored about them.

    \b
    Example:
      digest subscribers remove ada@example.org
    """
    from digest.usecases import subscribers

    out().print(f"Removed {subscribers.remove(app.context, email)}.")


@subscribers_group.command("import-library")
@click.argument("email")
@click.argument("library_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--fetch",
    is_flag=True,
    help="Look up the papers not stored here on the arXiv API (at arXiv's pace, 3 s a request of "
    "100) and store them, so they can be liked. No digest takes them for new.",
)
@pass_app
def subscribers_import_library(app: App, email: str, library_file: str, fetch: bool) -> None:
    """Record the papers of a reference manager's export as liked by EMAIL, so their digests
    bring papers near them (as "related"). LIBRARY_FILE is BibTeX (Zotero, Mendeley, JabRef: an
    arXiv id in eprint, url, doi or journal), RIS, or a plain list of arXiv ids or URLs, one a line.

    Only papers stored here are recorded; the others are listed, or with --fetch looked up on
    arXiv first. A paper the subscriber rated before keeps its rating. Entries that cannot be read
    or name no arXiv id are listed by line; the rest is imported. Exits 1 when nothing could be
    recorded or the lookup failed (what was found stays recorded: run it again), 2 when the file
    names no arXiv paper.

    \b
    Examples:
      digest subscribers import-library ada@example.org My-Library.bib
      digest subscribers import-library ada@example.org zotero-export.ris --fetch
      digest subscribers import-library ada@example.org arxiv-ids.txt
    """
    from digest.usecases import library

    try:
        text = Path(library_file).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{library_file} is not UTF-8 text; export the library as UTF-8.") from None
    done = library.import_library(app.context, email, text, fetch=fetch)
    console, errors = out(), err()
    for problem in done.problems:
        errors.print(f"{shown(library_file)}, {shown(problem)}", soft_wrap=True)
    named = done.liked or done.kept or done.missing or done.not_on_arxiv
    if not named:
        raise UsageError(
            f"{library_file} names no arXiv paper (by eprint, URL, DOI or id); export the library "
            "as BibTeX or RIS with URLs, or list arXiv ids one a line."
        )
    papers = "1 paper" if len(done.liked) == 1 else f"{len(done.liked)} papers"
    console.print(
        f"Recorded {papers} of {shown(library_file)} as liked by {shown(done.email)}.", soft_wrap=True
    )
    if done.fetched:
        console.print(f"Fetched from arXiv ({len(done.fetched)}): {_some(done.fetched)}.", soft_wrap=True)
    if done.kept:
        console.print(f"Kept as rated before ({len(done.kept)}): {_some(done.kept)}.", soft_wrap=True)
    if done.not_on_arxiv:
        console.print(
            f"Not on arXiv, so not recorded ({len(done.not_on_arxiv)}): {_some(done.not_on_arxiv)}.",
            soft_wrap=True,
        )
    if done.missing:
        then = "" if fetch else " Run it again with --fetch to look them up on arXiv."
        console.print(
            f"Not stored here, so not recorded ({len(done.missing)}): {_some(done.missing)}.{then}",
            soft_wrap=True,
        )
    if done.fetch_error:
        errors.print(
            f"The arXiv lookup stopped: {shown(done.fetch_error)} What was found is recorded; once that "
            "is fixed (or arXiv answers again), run the same command for the rest.",
            soft_wrap=True,
        )
        sys.exit(1)
    if not (done.liked or done.kept):
        sys.exit(1)


def _some(ids: list[str], most: int = 20) -> str:
    """The first ``most`` of ``ids``, and how many more."""
    listed = ", ".join(shown(paper) for paper in ids[:most])
    return listed + (f" and {len(ids) - most} more" if len(ids) > most else "")


@subscribers_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--active", is_flag=True, help="New subscribers without a status are active (they agreed already)."
)
@click.option(
    "--confirm",
    is_flag=True,
    help="New subscribers without a status are pending, and every pending one is mailed a "
    "confirmation link, as a web sign-up is.",
)
@pass_app
def subscribers_import(app: App, csv_file: str, active: bool, confirm: bool) -> None:
    """Add or update subscribers from a CSV file (as `export` writes it; only 'email' is required).

    All rows are checked first: one bad row imports nothing, and every bad row is named by its
    line. A new subscriber needs a status column value, or one of --active (they agreed already)
    and --confirm (mail them a confirmation link; they get digests once they follow it).

    \b
    Examples:
      digest subscribers import subscribers.csv
      digest subscribers import newsletter-list.csv --active
      digest subscribers import sign-up-sheet.csv --confirm
    """
    from digest.usecases import subscribers

    try:
        text = Path(csv_file).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{csv_file} is not UTF-8 text; save it as UTF-8 CSV.") from None
    done = subscribers.import_csv(app.context, text, active=active, confirm=confirm)
    made = f" ({done.activated} made active by --active)" if done.activated else ""
    console = out()
    rows = "1 row" if done.rows == 1 else f"{done.rows} rows"
    console.print(f"Imported {rows}: {done.added} added{made}, {done.updated} updated.")
    if confirm:
        mailed = "1 pending subscriber" if done.mailed == 1 else f"{done.mailed} pending subscribers"
        console.print(f"Mailed a confirmation link to {mailed}.")
        if done.awaiting:
            console.print(
                f"Not mailed again: {done.awaiting} pending "
                f"{'subscriber whose' if done.awaiting == 1 else 'subscribers whose'} "
                "confirmation link from before is unused and still valid.",
                soft_wrap=True,
            )
        for email, why in done.unsent:
            err().print(f"{email}: the confirmation mail was not sent: {why}", soft_wrap=True)
        for email in done.maybe_mailed:
            err().print(
                f"{email}: the connection was lost after the confirmation mail, which may have "
                "arrived; its link stays valid, so an import does not mail them again before it expires.",
                soft_wrap=True,
            )
        if done.unsent:
            raise DigestError(
                f"{len(done.unsent)} of the confirmation mails were not sent (above); "
                "run the same import with --confirm again to mail them a new link."
            )
    elif done.pending:
        console.print(
            f"{done.pending} of them {'is' if done.pending == 1 else 'are'} pending: no digest until "
            "they confirm, and no mail asks them to; "
            "import with --confirm to mail them a confirmation link.",
            soft_wrap=True,
        )


@subscribers_group.command("export")
@pass_app
def subscribers_export(app: App) -> None:
    """Write every subscriber as CSV to standard output (`import` reads it back).

    \b
    Example:
      digest subscribers export > subscribers.csv
    """
    from digest.usecases import subscribers

    click.echo(subscribers.export_csv(app.context), nl=False)
