"""What an address must look like to go into a mail header and the SMTP envelope."""

from __future__ import annotations

import re

from digest.errors import MessageError

_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def checked_address(address: str) -> str:
    """The address in ASCII form for a header and the envelope; raises MessageError otherwise.

    A non-ASCII domain is sent in its IDNA form; a non-ASCII local part would need SMTPUTF8.
    """
    local, _, domain = address.strip().rpartition("@")
    if domain and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise MessageError(f"{address!r} has a domain that cannot be written in ASCII") from None
    candidate = f"{local}@{domain}"
    if not _ADDRESS.fullmatch(candidate):
        raise MessageError(
            f"{address!r} cannot be put in a mail header (only ASCII addresses are sent); "
            "correct it with `digest subscribers edit`"
        )
    return candidate
