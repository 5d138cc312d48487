"""A message written to one of digest's addresses by a person: who sent it, what it says, and
whether it must go unanswered (RFC 3834).

Nothing here trusts the message: the sender is an address only once it parses as one, the text is
the first text/plain part (or nothing), and a message that cannot be read comes back with
``automatic`` saying so, never as an exception.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

from digest.mail.message import QUOTED_ID

MAX_TEXT = 20_000  # characters of the text part read: commands fit in far less
# Senders RFC 3834 (§2) says not to answer: the mailboxes of mail systems and list managers.
_MACHINE = re.compile(
    r"(mailer-daemon|postmaster|listserv|majordomo|mailman|no-?reply|do-?not-?reply|bounces?)(\+.*)?|"
    r"owner-.+|.+-(owner|request|bounces)(\+.*)?",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"[^@\s<>\"',;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


@dataclass(frozen=True, slots=True)
class Letter:
    """A person's message: ``sender`` (the From address, lower-cased; None when it has none that
    parses), ``message_id`` (None unless well formed), ``subject`` and ``text`` (the first
    text/plain part), and ``automatic``: why it must not be answered, or None."""

    sender: str | None
    message_id: str | None
    subject: str
    text: str
    automatic: str | None


def read_letter(raw: bytes, envelope_sender: str | None = None, ours: frozenset[str] = frozenset()) -> Letter:
    """Read ``raw``. ``envelope_sender`` is the SMTP MAIL FROM when known ("" or "<>": the null
    sender of a bounce); ``ours`` are digest's own addresses (as base_address gives them), never
    answered."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        sender = _sender(message)
        letter = Letter(
            sender,
            _message_id(message),
            " ".join(str(message.get("Subject", "")).split())[:200],
            _text(message),
            _automatic(message, sender, envelope_sender, ours),
        )
    except Exception as exc:  # a message is outside text: any failure to read it is its own
        return Letter(None, None, "", "", f"unreadable ({type(exc).__name__})")
    return letter


def base_address(address: str) -> str:
    """``address`` lower-cased without a ``+tag`` (``bounces+ID@x`` is ``bounces@x``)."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _sender(message: EmailMessage) -> str | None:
    """The one From address, when it looks like an address (a From of two is nobody's)."""
    found = [address for _, address in getaddresses([str(value) for value in message.get_all("From", [])])]
    if len(found) != 1 or not _ADDRESS.fullmatch(found[0]):
        return None
    return found[0].lower()


def _message_id(message: EmailMessage) -> str | None:
    value = str(message.get("Message-ID", "")).strip()
    return value if QUOTED_ID.fullmatch(value) else None


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    content = part.get_content()
    return content[:MAX_TEXT] if isinstance(content, str) else ""


def _automatic(
    message: EmailMessage, sender: str | None, envelope_sender: str | None, ours: frozenset[str]
) -> str | None:
    """Why RFC 3834 says not to answer ``message``, or None."""
    if envelope_sender is not None and envelope_sender.strip("<> ") == "":
        return "a null envelope sender (a delivery report)"
    submitted = str(message.get("Auto-Submitted", "")).split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for header in ("List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond"):
        if message.get(header) is not None:
            return f"a {header} header"
    if message.get_content_type() == "multipart/report":
        return "a delivery or feedback report"
    if sender is None:
        return "no sender address"
    if base_address(sender) in ours:
        return "sent by digest itself"
    if _MACHINE.fullmatch(sender.rsplit("@", 1)[0]):
        return f"sent by a mail system ({sender.rsplit('@', 1)[0]})"
    return None
