"""An IMAP mailbox read for incoming mail (imap-tools over imaplib): list what waits, read one
message's bytes, and move it to a folder once handled.

A message leaves the folder read only by a MOVE (RFC 6851), after it is handled: a crash before
the move leaves it in place to be read again, and the handler acts on a message once however often
it reads it. Where the server lacks MOVE, imap-tools copies and expunges instead, and a crash
between the two can leave a second copy in the done folder (handled once all the same).
"""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError, MailboxStarttlsError, UnexpectedCommandStatusError

from digest.errors import ConfigError, DigestError
from digest.model.network import names_loopback


class MailboxError(DigestError):
    """The mailbox cannot be reached or read: says which setting to check."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class Waiting:
    """A message in the folder: its UID and size in bytes."""

    uid: str
    size: int


class Mailbox:
    """An open mailbox on its folder (see ``opened``)."""

    def __init__(self, box: MailBox | MailBoxStartTls | MailBoxUnencrypted) -> None:
        self._box = box

    def waiting(self) -> list[Waiting]:
        """The messages in the folder, oldest first, without reading them (nor marking them seen)."""
        found = self._box.fetch(headers_only=True, mark_seen=False, bulk=200)
        return [Waiting(message.uid, message.size_rfc822) for message in found if message.uid]

    def read(self, uid: str) -> bytes | None:
        """The whole message ``uid`` as sent (None when it is gone), not marked seen."""
        status, data = self._box.client.uid("FETCH", uid, "(BODY.PEEK[])")
        if status != "OK":
            raise MailboxError(f"The IMAP server would not give message {uid}: {data!r}.")
        for item in data:
            if isinstance(item, tuple):
                return bytes(item[1])
        return None

    def move(self, uid: str, folder: str) -> None:
        """Move message ``uid`` to ``folder`` (made when missing)."""
        if not self._box.folder.exists(folder):
            self._box.folder.create(folder)
        self._box.move(uid, folder)


@contextmanager
def opened(url: str, timeout: float) -> Iterator[Mailbox]:
    """The mailbox of ``url`` (imaps:// TLS; imap:// STARTTLS, or plain on loopback when the server
    offers no STARTTLS), logged in, on the URL's folder (INBOX by default). Raises MailboxError,
    naming inbound_imap_url, when it cannot be reached or logged into."""
    parsed = urlsplit(url)
    host, folder = parsed.hostname or "", unquote(parsed.path.lstrip("/")) or "INBOX"
    user, password = unquote(parsed.username or ""), unquote(parsed.password or "")
    try:
        box = _connect(parsed.scheme, host, parsed.port, timeout)
        box.login(user, password, initial_folder=folder)
        _refresh_capabilities(box.client)
    except MailboxLoginError:
        raise MailboxError(
            f"The IMAP server {host} refused the login of {user!r} (or has no folder {folder!r}): "
            "check the user, password and folder in DIGEST_INBOUND_IMAP_URL."
        ) from None
    except (OSError, imaplib.IMAP4.error, MailboxStarttlsError) as exc:
        raise MailboxError(
            f"Cannot reach the IMAP server {host}: {exc}. Check the host and port of "
            "DIGEST_INBOUND_IMAP_URL (imaps://…:993, or imap://…:143 with STARTTLS)."
        ) from None
    try:
        yield Mailbox(box)
    except (OSError, imaplib.IMAP4.error, UnexpectedCommandStatusError) as exc:
        raise MailboxError(
            f"The IMAP server {host} failed while digest read {folder!r}: {exc}. What was not moved "
            "yet is read again next time."
        ) from None
    finally:
        with suppress(OSError, imaplib.IMAP4.error):
            box.logout()


def _refresh_capabilities(client: imaplib.IMAP4) -> None:
    """Ask again what the server can do: many (Dovecot) name MOVE only once logged in, and imaplib
    keeps what the greeting said, so imap-tools would copy and expunge instead of moving."""
    status, data = client.capability()
    if status == "OK" and data and data[-1]:
        client.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())


def _connect(
    scheme: str, host: str, port: int | None, timeout: float
) -> MailBox | MailBoxStartTls | MailBoxUnencrypted:
    context = ssl.create_default_context()
    if scheme == "imaps":
        return MailBox(host, port or 993, timeout=timeout, ssl_context=context)
    plain = MailBoxUnencrypted(host, port or 143, timeout=timeout)
    if "STARTTLS" in plain.client.capabilities:
        plain.logout()
        return MailBoxStartTls(host, port or 143, timeout=timeout, ssl_context=context)
    if not names_loopback(host):
        plain.logout()
        raise ConfigError(
            f"The IMAP server {host} offers no STARTTLS, and digest sends no password in clear: use "
            "imaps:// in DIGEST_INBOUND_IMAP_URL."
        )
    return plain
