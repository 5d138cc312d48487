"""MIME messages: multipart/alternative (text part first, quoted-printable UTF-8; the HTML part
7-bit when it can be) with the list headers, DKIM-signed when configured."""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from digest.errors import ConfigError, MessageError
from digest.mail.headers import MAX_LINE, UNSAFE, encode_header, header_text
from digest.model.address import checked_address


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a message needs besides its content."""

    to: str
    message_id: str
    date: datetime
    unsubscribe_url: str | None  # None for a mail about the subscription itself: no list headers
    in_reply_to: str | None = None  # an answer's: the Message-ID it answers (checked, see QUOTED_ID)
    auto_replied: bool = False  # an answer made by a program: Auto-Submitted: auto-replied (RFC 3834)


@dataclass(frozen=True, slots=True)
class Identity:
    """The constant part of every message: who sends it (the name is the list's name too), optional
    DKIM."""

    address: str
    name: str
    domain: str
    unsubscribe_mailto: str | None = None
    bounce_address: str | None = None  # delivery reports go to its LOCAL+ID@DOMAIN (VERP) when set
    dkim_selector: str | None = None
    dkim_key: bytes | None = None

    @property
    def from_header(self) -> str:
        return "From: " + formataddr((header_text(self.name), checked_address(self.address)), "utf-8")

    @property
    def list_id(self) -> str:
        return "List-Id: " + formataddr((header_text(self.name), f"digest.{self.domain}"), "utf-8")


DKIM_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


# A Message-ID taken from outside mail to answer it: printable ASCII, no space or angle bracket inside.
QUOTED_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")


def new_message_id(domain: str, label: str) -> str:
    """A unique ``<…@domain>`` id; ``label`` (digits, dots) makes it readable in logs."""
    return f"<{label}.{secrets.token_hex(8)}@{domain}>"


def message_token(message_id: str) -> str:
    """The left part of a Message-ID (``<LEFT@host>``): what a VERP return address carries."""
    return message_id.strip("<>").rsplit("@", 1)[0]


def return_path(sender: Identity, message_id: str) -> str:
    """The envelope sender of the message ``message_id``: ``LOCAL+ID@DOMAIN`` of the bounce address
    (ID the Message-ID's left part, so a delivery report names its message even when it quotes
    nothing of it), or the From address when no bounce address is set."""
    if sender.bounce_address is None:
        return sender.address
    local, domain = sender.bounce_address.rsplit("@", 1)
    return f"{local}+{message_token(message_id)}@{domain}"


def build_message(sender: Identity, envelope: Envelope, subject: str, text: str, html: str) -> bytes:
    """A multipart/alternative message (text, then HTML) with list headers; DKIM-signed if configured.

    Raises MessageError for an address or URL that cannot go into a header safely.
    """
    to = checked_address(envelope.to)
    boundary = f"=_digest_{secrets.token_hex(12)}"
    headers = [
        sender.from_header,
        f"To: {to}",
        encode_header("Subject", subject),
        f"Date: {format_datetime(envelope.date)}",
        f"Message-ID: {_message_id(envelope.message_id)}",
    ]
    if envelope.in_reply_to is not None:
        if not QUOTED_ID.fullmatch(envelope.in_reply_to):
            raise MessageError(f"{envelope.in_reply_to!r} cannot go into In-Reply-To")
        headers += [f"In-Reply-To: {envelope.in_reply_to}", f"References: {envelope.in_reply_to}"]
    if envelope.auto_replied:
        headers.append("Auto-Submitted: auto-replied")
    if envelope.unsubscribe_url is not None:
        unsubscribe = [_header_url(envelope.unsubscribe_url)]
        if sender.unsubscribe_mailto:
            unsubscribe.append(
                f"mailto:{checked_address(sender.unsubscribe_mailto)}?subject={quote('unsubscribe ' + to)}"
            )
        headers += [
            sender.list_id,
            "List-Unsubscribe: " + ",\r\n ".join(f"<{url}>" for url in unsubscribe),
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        ]
    headers += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"']
    parts = [
        f"--{boundary}\r\n".encode(),
        _part("text/plain", text),
        f"\r\n--{boundary}\r\n".encode(),
        _html_part(html),
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    message = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + b"".join(parts)
    if sender.dkim_selector and sender.dkim_key:
        message = dkim_sign(message, sender)
    return message


def _part(content_type: str, body: str) -> bytes:
    """A UTF-8 text part, quoted-printable."""
    data = "\r\n".join(body.splitlines()).encode("utf-8") + b"\r\n"
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + binascii.b2a_qp(data, istext=True)


def _html_part(html: str) -> bytes:
    """The HTML part as 7-bit text when it can be (non-ASCII as character references, no NUL, no line
    over SMTP's limit): nothing to encode or decode. Else quoted-printable."""
    data = html.encode("ascii", "xmlcharrefreplace").replace(b"\r", b"").replace(b"\x00", b"&#65533;")
    if max(map(len, data.split(b"\n"))) > MAX_LINE:
        return _part("text/html", html)
    return (
        b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
        + data.replace(b"\n", b"\r\n")
        + b"\r\n"
    )


def _message_id(value: str) -> str:
    if not re.fullmatch(r"<[A-Za-z0-9._-]+@[A-Za-z0-9.-]+>", value):
        raise MessageError(f"{value!r} is not a Message-ID digest makes")
    return value


def _header_url(url: str) -> str:
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not url.isascii() or UNSAFE.search(url) or " " in url:
        raise MessageError(f"{url!r} cannot go into List-Unsubscribe")
    return url.replace(">", "%3E").replace(",", "%2C")


def dkim_sign(message: bytes, sender: Identity) -> bytes:
    """Prepend a DKIM-Signature (relaxed/relaxed) that covers the list headers too."""
    import dkim

    assert sender.dkim_selector and sender.dkim_key
    signature = dkim.sign(
        message,
        sender.dkim_selector.encode(),
        sender.domain.encode(),
        sender.dkim_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=list(DKIM_HEADERS),
    )
    return signature + message


def identity_for(settings: Any) -> Identity:
    """The Identity the settings describe; reads the DKIM key file. Raises ConfigError if unreadable."""
    key = None
    if settings.dkim_key_file is not None:
        if not settings.dkim_selector:
            raise ConfigError("dkim_key_file is set but dkim_selector is not: set DIGEST_DKIM_SELECTOR.")
        try:
            key = Path(settings.dkim_key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"Cannot read the DKIM key {settings.dkim_key_file}: {exc.strerror}. "
                "Fix DIGEST_DKIM_KEY_FILE."
            ) from None
    sender = Identity(
        address=settings.mail_from,
        name=settings.mail_from_name,
        domain=settings.mail_domain,
        unsubscribe_mailto=settings.unsubscribe_mailto,
        bounce_address=settings.bounce_address,
        dkim_selector=settings.dkim_selector if key else None,
        dkim_key=key,
    )
    if key is not None:
        try:
            dkim_sign(b"From: a@b.example\r\nSubject: key check\r\n\r\nbody\r\n", sender)
        except Exception as exc:
            raise ConfigError(
                f"The DKIM key {settings.dkim_key_file} cannot sign ({exc}). Give a PEM RSA private key "
                "in DIGEST_DKIM_KEY_FILE."
            ) from None
    return sender
