"""Delivery reports as relays send them, for the tests of reading and acting on them."""

from __future__ import annotations


def dsn(recipient: str, status: str = "5.1.1", action: str = "failed", quoting: str | None = None) -> bytes:
    """A relay's RFC 3464 report on ``recipient`` of a digest; it quotes the headers of the
    message ``quoting`` (a Message-ID) when given, and nothing of it otherwise, as many relays do."""
    quoted = (
        f"--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <{quoting}>\nTo: {recipient}\n\n"
        if quoting
        else ""
    )
    return f"""From: MAILER-DAEMON@relay.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

{quoted}--b--
""".encode()
