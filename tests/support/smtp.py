"""A real SMTP server on loopback (aiosmtpd) that refuses, drops and stalls on cue."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiosmtpd.controller import Controller

STALL = 3.0


class ScriptedServer:
    """An aiosmtpd handler. A test queues the next replies per stage ("MAIL", "RCPT", "DATA"; a DATA
    reply "drop" closes the connection, "stall" sleeps STALL seconds first) and names addresses to
    refuse; with nothing queued every command is accepted and the message recorded."""

    def __init__(self, pipelining: bool = False) -> None:
        self.pipelining = pipelining
        self.contents: list[bytes] = []
        self.next: dict[str, list[str]] = {"MAIL": [], "RCPT": [], "DATA": []}
        self.refuse: dict[str, str] = {}
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.senders: list[str] = []  # the envelope sender of each message received
        self.connections = 0
        self.quits = 0
        self.port = 0

    def _scripted(self, stage: str) -> str | None:
        return self.next[stage].pop(0) if self.next[stage] else None

    @property
    def message_ids(self) -> list[str]:
        return [message_id for _, message_id in self.received]

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list):
        self.connections += 1  # smtplib says EHLO once per connection (no STARTTLS offered here)
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list):
        if reply := self._scripted("MAIL"):
            return reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list):
        if reply := self._scripted("RCPT") or self.refuse.get(address):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self._scripted("DATA")
        if reply == "drop":
            server.transport.close()
            return "250 OK"  # never reaches the client
        if reply == "stall":
            await asyncio.sleep(STALL)
        elif reply:
            return reply
        self.contents.append(envelope.original_content)
        self.senders.append(envelope.mail_from)
        message_id = email.message_from_bytes(envelope.content)["Message-ID"]
        self.received.extend((recipient, message_id) for recipient in envelope.rcpt_tos)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(handler: ScriptedServer) -> Iterator[ScriptedServer]:
    """``handler`` answering on a free port of 127.0.0.1 (``handler.port``) until the block ends."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    try:
        yield handler
    finally:
        controller.stop()


@contextmanager
def silent_server() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 that takes connections (the kernel completes them) and never
    says a word, as a stalled mail server does; closing it resets them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener
