"""``digest check-config``: the effective settings."""

from __future__ import annotations

import json

import click

from digest.cli.common import App, escape, out, pass_app, table


@click.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def check_config(app: App, as_json: bool) -> None:
    """Print the effective settings, secrets masked, then what they resolve to here (the mail
    transport auto stands for, the SQLite file and the outbox as absolute paths); exit non-zero if
    they are invalid. --json puts the latter under "resolved".

    \b
    Example:
      DIGEST_DATABASE_URL=postgresql+psycopg://me:secret@db/digest digest check-config
    """
    from digest.config import DEFAULT_CONTACT_URL

    shown = app.settings.masked()
    where = app.settings.where()
    if as_json:
        click.echo(json.dumps({**shown, "resolved": where}, default=str, indent=2))
        return
    rows = table("setting", "environment variable", "value")
    for name, value in shown.items():
        rows.add_row(name, f"DIGEST_{name.upper()}", str(value))
    out().print(rows)
    for name, value in where.items():
        out().print(f"{name.replace('_', ' ')}: {escape(value)}")
    out().print(f"User-Agent: {app.settings.user_agent}")
    if app.settings.contact_url == DEFAULT_CONTACT_URL:
        out().print(
            "note: contact_url is the project's default; set DIGEST_CONTACT_URL to a page or mailto: "
            "of yours so the sites you fetch from can reach you."
        )
