"""``digest inbound``: mail that comes back after the send (delivery reports, complaints)."""

from __future__ import annotations

import dataclasses
import sys

import click

from digest.cli.common import App, out, pass_app, print_json_lines, shown
from digest.errors import UsageError


@click.group("inbound")
def inbound_group() -> None:
    """Read mail that comes back: bounces and complaints."""


@inbound_group.command("handle")
@click.argument("message", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--to", "recipients", multiple=True, help="An envelope recipient of the message (repeatable).")
@click.option(
    "--from",
    "envelope_sender",
    help="The envelope sender (SMTP MAIL FROM) of the message; empty for a bounce's null sender.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@pass_app
def handle_command(
    app: App, message: str, recipients: tuple[str, ...], envelope_sender: str | None, as_json: bool
) -> None:
    """Act on one message (a file, or - for standard input) that came in. A report: a permanent
    failure counts as a hard bounce, a delay is recorded, a complaint unsubscribes its recipient;
    it is tied to its digest by the return address it came to (give it with --to, as an MTA's pipe
    transport does) or by the Message-ID it quotes. To unsubscribe_mailto: unsubscribes the address
    it names. To commands_address: carries out (or asks to confirm) its commands and answers. A
    message handled before is not acted on again. Exits 0 whatever the message holds.

    \b
    Examples:
      digest inbound handle bounce.eml --to bounces+20261124.7.0a1b2c3d4e5f6789@example.org
      (Postfix master.cf) digest unix - n n - - pipe
          user=digest argv=/srv/digest/.venv/bin/digest inbound handle - --to ${original_recipient}
          --from ${sender}
    """
    from digest.usecases import inbound

    limit = app.context.settings.inbound_max_bytes
    try:
        if message == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with open(message, "rb") as stream:
                raw = stream.read(limit + 1)
    except OSError as exc:
        raise UsageError(
            f"Cannot read {message}: {exc.strerror}. Give a message file, or - for standard input."
        ) from None
    handled = inbound.handle(app.context, raw, recipients, envelope_sender=envelope_sender)
    if as_json:
        print_json_lines([dataclasses.asdict(handled)])
        return
    about = f" for {shown(handled.subscriber)}" if handled.subscriber else ""
    row = f" (delivery {handled.delivery_id})" if handled.delivery_id is not None else ""
    out().print(f"{handled.outcome}{about}{row}: {shown(handled.detail) or 'nothing to do'}", soft_wrap=True)
