"""The one path from a composed digest to a message: compose -> render -> MIME. The send, its dry
run and test send, and ``digest preview`` all make their mail here, so they cannot drift apart."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from digest.compose.choose import Composed, digest_of
from digest.compose.digest import Digest
from digest.mail.message import Envelope, Identity, build_message, return_path
from digest.mail.transports import Outgoing
from digest.model.address import checked_address
from digest.render.mails import Rendered, Renderer

PLACEHOLDER_TOKEN = "preview"  # the links of a mail no ledger row stands behind (preview, test send)


@dataclass(frozen=True, slots=True)
class DigestMail:
    """A digest ready to hand to a transport, with what it was made from."""

    outgoing: Outgoing
    subject: str  # as rendered, before any prefix
    rendered: Rendered
    digest: Digest


@dataclass(frozen=True, slots=True)
class MailMaker:
    """Makes digest mails: who sends them, the renderer, and where their links point."""

    identity: Identity
    renderer: Renderer
    base_url: str

    def make(
        self,
        composed: Composed,
        *,
        token: str,
        message_id: str,
        now: datetime,
        key: int = 0,
        to: str | None = None,
        subject_prefix: str = "",
        notes: tuple[str, ...] = (),
        quiet: str = "",
    ) -> DigestMail:
        """The message of ``composed``, its links made with ``token``, to the subscriber (or ``to``),
        with ``notes`` (a line each) above its papers, and ``quiet`` (why nothing new came) in place
        of "nothing matched" when it has none. Raises MessageError for an address or header that
        cannot be sent."""
        digest = dataclasses.replace(digest_of(composed, self.base_url, token), notes=notes, quiet=quiet)
        rendered = self.renderer.render(digest)
        recipient = to or digest.email
        envelope = Envelope(recipient, message_id, now, digest.links.unsubscribe)
        data = build_message(
            self.identity, envelope, subject_prefix + rendered.subject, rendered.text, rendered.html
        )
        sender = return_path(self.identity, message_id)
        outgoing = Outgoing(key, sender, checked_address(recipient), message_id, data)
        return DigestMail(outgoing, rendered.subject, rendered, digest)
