"""``digest inbound``: mail that comes in (delivery reports, complaints, unsubscribes, commands)."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from typing import TYPE_CHECKING

import click

from digest.cli.common import App, err, out, pass_app, print_json_lines, shown
from digest.config import listen_address
from digest.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from digest.listener import Listener


@click.group("inbound")
def inbound_group() -> None:
    """Read mail that comes in: bounces, complaints, unsubscribes and commands."""


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


@inbound_group.command("fetch")
@click.option("--limit", type=click.IntRange(1), help="Handle at most this many messages.")
@pass_app
def fetch_command(app: App, limit: int | None) -> None:
    """Read the IMAP mailbox of inbound_imap_url once: act on each message waiting there as
    `digest inbound handle` does, then move it to inbound_imap_done (inbound_imap_failed when it
    cannot be read). A message is moved only once handled, and never acted on twice, so a crash
    loses nothing. `digest serve` does this every inbound_imap_interval when the URL is set.

    \b
    Examples:
      DIGEST_INBOUND_IMAP_URL='imaps://digest%40example.org:APP-PASSWORD@imap.example.org/INBOX' \\
        digest inbound fetch
    """
    from digest.usecases import inbound

    if app.settings.inbound_imap_url is None:
        raise ConfigError(
            "No mailbox to read: set DIGEST_INBOUND_IMAP_URL (imaps://user:password@host:993/INBOX)."
        )
    fetched = inbound.fetch(app.context, limit)
    counts: dict[str, int] = {}
    for outcome in fetched.outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    said = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "nothing waiting"
    out().print(f"{len(fetched.outcomes)} messages: {said}; {fetched.failed} to the failed folder")


DEFAULT_LISTEN = "127.0.0.1:8024"


@inbound_group.command("serve")
@click.option("--listen", help=f"HOST:PORT to take mail on (default: inbound_listen, else {DEFAULT_LISTEN}).")
@click.option("--smtp", is_flag=True, help="Speak plain SMTP rather than LMTP (default: inbound_protocol).")
@pass_app
def serve_command(app: App, listen: str | None, smtp: bool) -> None:
    """Take mail from an MTA by LMTP (or SMTP) and act on each message as `digest inbound handle`
    does: reports, unsubscribes, commands. Only digest's own addresses are accepted; a failure of
    ours answers 451, so the MTA keeps the message and tries again. SIGTERM or Ctrl-C stops it.
    `digest serve` runs the same listener when inbound_listen is set.

    \b
    Examples:
      digest inbound serve
      digest inbound serve --listen 127.0.0.1:2525 --smtp
      (Postfix main.cf) transport_maps = inline:{ commands@example.org=lmtp:inet:127.0.0.1:8024 }
    """
    settings = app.settings
    lmtp = not smtp and settings.inbound_protocol == "lmtp"
    listener = start_listener(app, listen or settings.inbound_listen or DEFAULT_LISTEN, lmtp)
    stopped = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_args: stopped.set())
    try:
        while not stopped.wait(1.0):
            pass
    finally:
        listener.stop()


def start_listener(app: App, listen: str, lmtp: bool) -> Listener:
    """The inbound listener on ``listen``, started; raises UsageError or ConfigError, naming the fix,
    for an address that is not HOST:PORT or cannot be listened on."""
    from digest.listener import Listener

    try:
        host, port = listen_address(listen)
    except ValueError as exc:
        raise UsageError(f"{exc}, with --listen or DIGEST_INBOUND_LISTEN.") from None
    listener = Listener(app.context, host, port, lmtp)
    try:
        listener.start()
    except (OSError, RuntimeError) as exc:
        raise ConfigError(
            f"Cannot take mail on {listen}: {exc}. Give a free HOST:PORT with --listen or "
            "DIGEST_INBOUND_LISTEN."
        ) from None
    err().print(
        f"digest: taking mail by {'LMTP' if lmtp else 'SMTP'} on {listen}; Ctrl-C or SIGTERM stops it."
    )
    return listener
