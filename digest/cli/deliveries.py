"""``digest deliveries``: the delivery ledger."""

from __future__ import annotations

import click

from digest.cli.common import (
    App,
    json_text,
    now_of,
    now_option,
    out,
    parse_date,
    pass_app,
    print_json_lines,
    shown,
    table,
)
from digest.usecases.terms import DELIVERY_STATUSES


@click.group("deliveries")
def deliveries_group() -> None:
    """The delivery ledger: one row per subscriber and digest date.

    \b
    Example:
      digest deliveries list --date 2026-11-24 --status failed-temporary
    """


@deliveries_group.command("list")
@click.option("--date", "day", help="Only digests of this date (YYYY-MM-DD).")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), help="Only rows with this status.")
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
    from digest.usecases import deliveries

    found = deliveries.list_deliveries(app.context, day=parse_date(day, "--date"), status=status, limit=limit)
    if as_json:
        print_json_lines(found)
        return
    rows = table("id", "date", "subscriber", "status", "tries", "subject or error")
    for row in found:
        rows.add_row(
            str(row["id"]),
            row["date"],
            shown(row["email"]),
            row["status"],
            str(row["attempts"]),
            shown(row["error"] or row["subject"] or ""),
        )
    out().print(rows)
    out().print(f"{len(found)} deliveries.")


@deliveries_group.command("show")
@click.argument("delivery_id", type=int)
@pass_app
def deliveries_show(app: App, delivery_id: int) -> None:
    """Show one ledger row as JSON, with the papers it held.

    \b
    Example:
      digest deliveries show 42
    """
    from digest.usecases import deliveries

    click.echo(json_text(deliveries.show_delivery(app.context, delivery_id), indent=2))


@deliveries_group.command("retry")
@click.argument("delivery_id", type=int)
@now_option
@pass_app
def deliveries_retry(app: App, delivery_id: int, now_text: str | None) -> None:
    """Send a failed digest again with the next `digest send` (same papers, same Message-ID): it is
    due again from now (or --now) and retried for retry_deadline hours from then.

    \b
    Examples:
      digest deliveries retry 42 && digest send
      digest deliveries retry 42 --now 2026-11-24T08:00:00+00:00
    """
    from digest.usecases import deliveries

    deliveries.retry(app.context, delivery_id, now_of(app, now_text))
    out().print(f"Delivery {delivery_id} will be sent by the next `digest send`.")
