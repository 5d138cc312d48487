"""What a report that comes back by mail says: a delivery status notification (RFC 3464, read with
the standard library), an unstructured bounce of a common MTA (read by flufl.bounce, Mailman's
detectors), or a complaint from a feedback loop (ARF, RFC 5965, or Microsoft's older JMRP form).
Pure functions over bytes.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

# flufl.bounce logs a traceback for each of its detectors that fails on a message; read_report
# copes with any message, and the caller logs what it came to.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

BOUNCE = "bounce"
COMPLAINT = "complaint"
FEEDBACK = "feedback"  # an ARF report that is not a recipient's complaint (RFC 6591 auth-failure, not-spam)
NOT_A_REPORT = "not-a-report"
MALFORMED = "malformed"

_ADDRESS = re.compile(r"<?([^\s<>;]+@[^\s<>;]+?)>?$")
_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}")
# The feedback types (RFC 5965 § 7.3) by which a recipient says the mail was unwanted or harmful.
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus"})
# The header Microsoft's Junk Mail Reporting Program puts on the message it returns, in the form it
# used before it sent ARF: the address of the recipient who marked it as junk.
_JMRP_RECIPIENT = "X-HmXmrOriginalRecipient"
_VERP = re.compile(r"^[^+@]+\+([A-Za-z0-9._-]{8,80})@[^@]+$")


@dataclass(frozen=True, slots=True)
class Report:
    """What one incoming message reports. Addresses are lower-cased."""

    kind: str
    permanent: frozenset[str] = frozenset()  # failed for good: counts as a hard bounce
    temporary: frozenset[str] = frozenset()  # delayed or failed for now: recorded only
    complainants: frozenset[str] = frozenset()  # who reported the message as abuse
    original_message_id: str | None = None  # of the message reported on, when the report quotes it
    detail: str = ""  # the status code and diagnostic, or the feedback type, for the record


def read_report(raw: bytes) -> Report:
    """What ``raw`` (one whole message) reports. Never raises: a message that cannot be read as
    MIME is MALFORMED, one that reports nothing recognisable is NOT_A_REPORT."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        return _complaint(message) or _dsn(message) or _unstructured(message)
    except Exception as exc:  # hostile MIME must never stop the listener: the message is recorded as failed
        return Report(MALFORMED, detail=f"{type(exc).__name__}: {exc}"[:500])


def verp_token(recipient: str) -> str | None:
    """The token of a per-message return address ``bounces+TOKEN@domain`` (digest.mail.message.
    return_path: the left part of the message's Message-ID), or None."""
    found = _VERP.match(recipient.strip().strip("<>"))
    return found.group(1) if found else None


def _complaint(message: Message) -> Report | None:
    """An ARF report (its Original-Rcpt-To lines, else the To of the message it quotes), or a
    JMRP one. An ARF report of another feedback type is FEEDBACK: nobody complained."""
    blocks = [part for part in message.walk() if part.get_content_type() == "message/feedback-report"]
    quoted = _quoted(message)
    if not blocks:
        return _jmrp(quoted)
    fields = _fields(blocks[0])
    kind = str(fields.get("Feedback-Type", "")).strip().lower() or "abuse"
    if kind not in _COMPLAINT_TYPES:
        return Report(FEEDBACK, original_message_id=_message_id(quoted), detail=f"feedback-type {kind}")
    recipients = _addresses(fields.get_all("Original-Rcpt-To") or [])
    if not recipients and quoted is not None:
        recipients = _addresses(value for _, value in email.utils.getaddresses(quoted.get_all("To") or []))
    return Report(
        COMPLAINT,
        complainants=frozenset(recipients),
        original_message_id=_message_id(quoted),
        detail=f"feedback-type {kind}",
    )


def _jmrp(quoted: Message | None) -> Report | None:
    """A complaint in Microsoft's pre-ARF form: the returned message, marked with its recipient."""
    if quoted is None or quoted.get(_JMRP_RECIPIENT) is None:
        return None
    return Report(
        COMPLAINT,
        complainants=frozenset(_addresses(quoted.get_all(_JMRP_RECIPIENT) or [])),
        original_message_id=_message_id(quoted),
        detail="microsoft jmrp",
    )


def _dsn(message: Message) -> Report | None:
    """An RFC 3464 report: each recipient block's Action and Status."""
    permanent: set[str] = set()
    temporary: set[str] = set()
    details: list[str] = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_blocks(part)[1:]:  # the first block is about the message, not a recipient
            recipient = _recipient(block)
            if recipient is None:
                continue
            action = str(block.get("Action", "")).strip().lower()
            status = _STATUS.match(str(block.get("Status", "")).strip())
            code = status.group(0) if status else ""
            if action == "failed":
                (temporary if code.startswith("4") else permanent).add(recipient)
            elif action == "delayed":
                temporary.add(recipient)
            else:
                continue
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            details.append(f"{recipient}: {action} {code} {diagnostic}".strip())
    if not (permanent or temporary):
        return None
    return Report(
        BOUNCE,
        frozenset(permanent),
        frozenset(temporary - permanent),
        original_message_id=_message_id(_quoted(message)),
        detail="; ".join(details)[:1000],
    )


def _unstructured(message: Message) -> Report:
    """A bounce in one of the formats MTAs used before (and beside) RFC 3464, by flufl.bounce."""
    temporary, permanent = all_failures(message)
    permanent_addresses = _addresses(_text(address) for address in permanent)
    temporary_addresses = _addresses(_text(address) for address in temporary) - permanent_addresses
    if not permanent_addresses and not temporary_addresses:
        return Report(NOT_A_REPORT)
    return Report(
        BOUNCE,
        frozenset(permanent_addresses),
        frozenset(temporary_addresses),
        original_message_id=_message_id(_quoted(message)),
        detail="read by flufl.bounce",
    )


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status part (the parser gives a list of them)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, str):  # a part the parser left as text: read its blocks ourselves
        return [email.message_from_string(block.strip() + "\n") for block in re.split(r"\n\s*\n", payload)]
    return []


def _fields(part: Message) -> Message:
    """The fields of a message/feedback-report part, however the parser left them."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    text = payload if isinstance(payload, str) else ""
    return email.message_from_string(text.strip() + "\n")


def _quoted(message: Message) -> Message | None:
    """The message a report is about: its message/rfc822 or text/rfc822-headers part."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True) or b""
            return email.message_from_bytes(text.split(b"\n\n", 1)[0] + b"\n\n", policy=email.policy.compat32)
    return None


def _recipient(block: Message) -> str | None:
    """The address a recipient block is about: as the sender gave it (Original-Recipient) when the
    report says, else where the mail ended up (Final-Recipient, perhaps an alias's target)."""
    for name in ("Original-Recipient", "Final-Recipient"):
        value = str(block.get(name, "")).strip()
        kind, _, address = value.partition(";")
        if address and kind.strip().lower() == "rfc822":
            found = _addresses([address])
            if found:
                return next(iter(found))
    return None


def _message_id(message: Message | None) -> str | None:
    if message is None:
        return None
    value = " ".join(str(message.get("Message-ID", "")).split())
    return value.strip("<>") or None


def _addresses(values: Iterable[str]) -> set[str]:
    found = set()
    for value in values:
        match = _ADDRESS.match(" ".join(str(value).split()))
        if match:
            found.add(match.group(1).lower())
    return found


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
