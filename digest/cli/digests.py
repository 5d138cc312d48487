"""``digest score``, ``digest preview``, ``digest send`` and ``digest run``: digests."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from digest.cli.common import (
    App,
    err,
    now_of,
    now_option,
    out,
    parse_date,
    parse_now,
    pass_app,
    print_json_lines,
    ranking_ready,
    shown,
    table,
    terminal_text,
)
from digest.errors import UsageError


@click.command("score")
@click.argument("email", required=False)
@click.option("--interests", "adhoc", help="Score these interest lines instead of a subscriber's.")
@click.option(
    "--date",
    "day",
    help="The digest date (YYYY-MM-DD; default: today where the subscriber is): rank the papers its "
    "digest chooses from, as preview and send do.",
)
@click.option("--listed", help="Rank the papers a source listed on this date (YYYY-MM-DD) instead.")
@click.option("--all", "every", is_flag=True, help="Rank every stored paper instead.")
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
    listed: str | None,
    every: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """Rank papers for a subscriber (or ad-hoc interests) and say why each was picked.

    By default, the papers the digest of today (or of --date, a day in the subscriber's time zone)
    chooses from: first seen since their previous digest, not sent to them before, as `digest
    preview` and `digest send` choose them. --listed ranks what a source listed on a date instead
    (say, after `digest scrape --since`), --all every stored paper.

    \b
    Examples:
      digest score ada@example.org
      digest score ada@example.org --date 2026-11-20
      digest score ada@example.org --listed 2024-08-01
      digest score --interests '"video generation"' --all --limit 5 --json
    """
    from digest.usecases import digests

    ranking_ready(app)
    scored = digests.score(
        app.context,
        email,
        adhoc,
        digest_date=parse_date(day, "--date"),
        listed=parse_date(listed, "--listed"),
        every=every,
        limit=limit,
    )
    if as_json:
        print_json_lines(scored.rows)
        return
    console = out()
    if scored.already_sent is not None:
        then = "below are the papers of its window that it did not hold"
        _say_sent(scored.already_sent, f"{scored.digest_date}", then)
    if scored.sent_before:
        verb = "is" if scored.sent_before == 1 else "are"
        left = f"{scored.sent_before} sent to them before {verb} left out"
        which = "Of the" if scored.considered else "All"
        console.print(f"{which} {scored.chosen_from}: {left}.", soft_wrap=True)
    if not scored.considered and not scored.sent_before:
        console.print(
            f"No {scored.chosen_from}. `digest scrape` stores new ones; --all ranks every stored paper.",
            soft_wrap=True,
        )
    if not scored.considered:
        return
    if not scored.rows:
        console.print(f"None of the {scored.considered} {scored.chosen_from} matched.", soft_wrap=True)
        return
    console.print(f"{len(scored.rows)} of {scored.considered} {scored.chosen_from}:", soft_wrap=True)
    for number, row in enumerate(scored.rows, start=1):
        console.print(f"{number:>3}. [bold]{shown(row['title'])}[/] ({shown(row['id'])})", highlight=False)
        if row["tldr"]:
            console.print(f"     {shown(row['tldr'])}", highlight=False)
        if row["line"]:
            why = f"matched {digests.listed_terms(row['matched'])} (line: {row['line']})"
        elif row["liked"]:
            why = f"related, because you liked: {row['liked']['title']} ({row['liked']['id']})"
        else:
            why = "trending"
        score = f"score {row['score']:.2f} (relevance {row['relevance']:.2f}, trending {row['trending']:.2f})"
        console.print(f"     {score}; {shown(why)}")
        if row["snippet"]:
            console.print(f"     {shown(row['snippet'])}")


@click.command("preview")
@click.argument("email", required=False)
@click.option("--interests", "adhoc", help="Preview for these interest lines instead of a subscriber's.")
@click.option("--date", "day", help="The digest date (YYYY-MM-DD; default: today where the subscriber is).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "html", "eml"]),
    help="The plain-text part (the default), the HTML part (the default with --open), or the whole message.",
)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), help="Write to this file.")
@click.option("--open", "open_it", is_flag=True, help="Open the result in a browser (HTML) or viewer.")
@pass_app
def preview_command(
    app: App,
    email: str | None,
    adhoc: str | None,
    day: str | None,
    fmt: str | None,
    out_path: str | None,
    open_it: bool,
) -> None:
    """Render a digest as it would be sent, without sending or storing anything.

    Papers are chosen as `digest send` would: first seen since the subscriber's last digest (or the
    last day), never sent to them before; the mail is made as `digest send` makes it. Links carry a
    placeholder token.

    \b
    Examples:
      digest preview ada@example.org
      digest preview ada@example.org --format html --out ada.html --open
      digest preview --interests '"diffusion model"
      LLM agents' --format eml
    """
    from digest.usecases import digests

    ranking_ready(app)
    result = digests.preview(app.context, email, adhoc, digest_date=parse_date(day, "--date"))
    fmt = fmt or ("html" if open_it else "text")
    content = {"text": result.text, "html": result.html}.get(fmt)
    data = result.message if content is None else content.encode("utf-8")
    if out_path is None and open_it:
        suffix = {"text": "txt"}.get(fmt, fmt)
        out_path = str(Path(tempfile.mkdtemp(prefix="digest-preview-")) / f"preview.{suffix}")
    if out_path is None:
        shown_text = data.decode("utf-8")
        click.echo(shown_text if content is None else terminal_text(shown_text, lines=True), nl=False)
    else:
        try:
            Path(out_path).write_bytes(data)
        except OSError as exc:
            raise UsageError(
                f"Cannot write {out_path}: {exc.strerror}. Give --out a path in a folder that exists."
            ) from None
        err().print(f"Wrote {out_path}: {result.subject}")
        if open_it:
            _open(out_path)
    if result.already_sent is not None:
        day = result.composed.job.digest_date.isoformat()
        _say_sent(result.already_sent, day, "this is made of the papers of its window that it did not hold")
    elif result.digest.empty:
        err().print("Nothing to send: no new paper matched. `digest send` would skip this digest.")


def _say_sent(sent: tuple[Any, str], day: str, then: str) -> None:
    """Say on stderr that the digest for ``day`` went out (when, with which Message-ID), then ``then``."""
    at, message_id = sent
    err().print(
        f"The digest for {day} was already sent at {at:%H:%M} UTC, Message-ID {message_id}; {then}.",
        soft_wrap=True,
    )


def _open(path: str) -> None:
    """Open ``path`` in the desktop's viewer; with no desktop (no display, or an opener that fails),
    say where the file is instead, without the opener's own errors."""
    if sys.platform.startswith("linux"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            err().print(
                f"No display to open it on (DISPLAY is not set): open {path} yourself.", soft_wrap=True
            )
            return
        try:
            opened = subprocess.run(["xdg-open", path], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            opened = False
    else:
        opened = click.launch(path) == 0
    if not opened:
        err().print(f"Could not open a viewer here: open {path} yourself.", soft_wrap=True)


def print_send_summary(summary: Any) -> None:
    rows = table("newly due", "sent", "skipped", "failed temporary", "failed permanent")
    rows.add_row(
        str(summary.planned),
        str(summary.sent),
        str(summary.skipped),
        str(summary.failed_temporary),
        str(summary.failed_permanent),
    )
    console = out()
    console.print(rows)
    if summary.failed_temporary:
        console.print(
            "Temporary failures are retried by later runs: "
            "`digest deliveries list --status failed-temporary` shows them."
        )
    if summary.failed_permanent:
        console.print("See why with `digest deliveries list --status failed-permanent`.")
    if summary.deferred:
        console.print(f"{summary.deferred} digests wait for the subscriber's earlier one, still being sent.")
    if summary.held:
        console.print(
            f"{summary.held} digests wait for a late source, at most hold_for_sources hours past their hour "
            "(`digest sources list` says which)."
        )
    if summary.possible_duplicates:
        console.print(
            f"{len(summary.possible_duplicates)} digests were resent after a sender stopped mid-send; "
            "if the server had accepted them, they went out twice (the log names them)."
        )


def _print_due(summary: Any) -> None:
    """The digests a dry run or test send took up: whom, which date, how many papers, the subject."""
    for email, zone in summary.unknown_zones:
        err().print(f"{email}: unknown time zone {zone!r}, left out.")
    rows = table("subscriber", "date", "papers (with trending)", "subject")
    for row in summary.rows:
        if row.status == "deferred":
            subject = "(waits for the subscriber's earlier digest)"
        elif row.subject is None and row.status == "skipped":
            subject = f"(nothing: skipped, {row.error})" if row.error else "(nothing: skipped)"
        elif row.subject is None:
            subject = f"({row.status}: {row.error})"
        else:
            subject = row.subject
        rows.add_row(row.email, row.day.isoformat(), str(row.papers), subject)
    out().print(rows)


@click.command("send")
@now_option
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
    --dry-run and --test-to take up exactly what the real send would, the same way (--test-to
    mails them, so given both, it is a test send). --only with --test-to mails that subscriber's
    digest even when none is due (as preview makes it); a test send that sends nothing says why
    and exits 1.

    \b
    Examples:
      digest send
      digest send --dry-run
      digest send --only ada@example.org --test-to me@example.org
      digest send --now 2026-11-24T08:00:00+00:00
    """
    from digest.usecases import digests

    ranking_ready(app)
    now = now_of(app, now_text)
    if test_to:
        summary = digests.test_send(app.context, now, test_to, only=only)
        _print_due(summary)
        sent = sum(row.status == "sent" for row in summary.rows)
        out().print(f"Sent {sent} test messages to {summary.test_to}; nothing recorded.")
        failed = [row for row in summary.rows if row.status.startswith("failed") and row.subject is not None]
        for row in failed:
            out().print(f"[red]failed:[/] {shown(row.error or '')}")
        if not summary.rows:
            err().print(
                "Nothing was due, so nothing was sent: no active subscriber's send hour has passed "
                "without a digest. Give --only EMAIL to test one subscriber's digest whatever is due."
            )
        elif not sent and not failed:
            err().print("Nothing was sent: every digest taken up was empty (see above).")
        if failed or not sent:
            sys.exit(1)
        return
    if dry_run:
        summary = digests.dry_run(app.context, now, only=only)
        _print_due(summary)
        out().print(f"{len(summary.rows)} digests due (dry run: nothing sent or stored).")
        return
    with err().status("sending") as status:
        summary = digests.send(app.context, now, only=only, progress=status.update)
    print_send_summary(summary)
    if summary.failed:
        sys.exit(1)


@click.command("run")
@now_option
@pass_app
def run_command(app: App, now_text: str | None) -> None:
    """The daily job once: fetch every enabled source, then send every digest that is due.

    Unreachable sources are reported and the digests are still sent from what is stored. Exits
    non-zero when every source failed or a digest could not be sent.

    \b
    Example:
      digest run
    """
    from digest.cli.sources import print_scrape_summary, print_states
    from digest.usecases import digests, sources

    ranking_ready(app)
    given = parse_now(now_text)
    with err().status("fetching") as fetching:
        reports = sources.scrape_sources(app.context, progress=fetching.update, require_any=False)
    if reports:
        print_scrape_summary(reports, False)
    else:
        out().print("No enabled sources: sending from the papers already stored.")
    now = given or app.context.now()  # after the fetch: what it stored is first seen before now
    if reports:
        print_states(sources.list_sources(app.context, now), {report.name for report in reports})
    with err().status("sending") as sending:
        summary = digests.send(app.context, now, progress=sending.update)
    print_send_summary(summary)
    settings = app.settings
    where = {"outbox": f" in {settings.outbox_dir}/", "console": " on standard output"}.get(
        settings.transport, ""
    )
    if summary.sent:
        out().print(f"{summary.sent} {'digest' if summary.sent == 1 else 'digests'} delivered{where}.")
    if summary.failed or (reports and all(report.status == "error" for report in reports)):
        sys.exit(1)
