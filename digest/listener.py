"""The inbound listener: LMTP (or plain SMTP) on loopback for an MTA to hand mail to, each message
acted on by digest.usecases.inbound as `digest inbound handle` would.

Only digest's own addresses are taken (RCPT of any other: 550); a message over
``inbound_max_bytes`` is refused with 552 (at MAIL FROM when the client gives its SIZE). What the
message holds never fails the transfer: the MTA hears 250 and the outcome is logged. A failure of
ours (the database away) answers 451, so the MTA keeps the message and tries again: nothing is
lost, and a message handled before is not acted on twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from digest.usecases import inbound
from digest.usecases.context import Context

log = logging.getLogger(__name__)


class _Handler:
    def __init__(self, context: Context, lmtp: bool) -> None:
        self.context = context
        self.lmtp = lmtp

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if not inbound.takes(self.context, address):
            return "550 5.1.1 not an address of this digest"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        try:
            handled = await loop.run_in_executor(
                None, lambda: inbound.handle(self.context, raw, envelope.rcpt_tos, None, envelope.mail_from)
            )
            status = f"250 2.0.0 {handled.outcome}"
        except Exception:  # ours, not the message's: the MTA keeps it and tries again
            log.exception("inbound: could not handle a message from %s", envelope.mail_from)
            status = "451 4.3.0 cannot handle the message now; try again later"
        # LMTP answers DATA once per recipient (RFC 2033 §4.2); SMTP once.
        return "\r\n".join([status] * len(envelope.rcpt_tos)) if self.lmtp else status


class _Controller(Controller):
    def __init__(self, context: Context, host: str, port: int, lmtp: bool) -> None:
        self.lmtp = lmtp
        self.limit = context.settings.inbound_max_bytes
        super().__init__(_Handler(context, lmtp), hostname=host, port=port, ready_timeout=10)

    def factory(self) -> SMTP:
        kind = LMTP if self.lmtp else SMTP
        return kind(self.handler, data_size_limit=self.limit, hostname="digest", ident="digest inbound")


class Listener:
    """Listen on ``host:port`` (LMTP, or SMTP with ``lmtp`` false) in a thread of its own:
    start() returns once it listens, stop() closes it. Raises OSError when the port is taken."""

    def __init__(self, context: Context, host: str, port: int, lmtp: bool = True) -> None:
        self._controller = _Controller(context, host, port, lmtp)

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
