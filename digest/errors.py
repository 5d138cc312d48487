"""Errors an operator can act on.

Every DigestError carries a message that names the cause and what to do about it. The CLI prints the
message (no traceback) and exits with the error's ``exit_code``.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every expected failure; ``str(err)`` is shown to the operator as is."""

    exit_code = 1


class ConfigError(DigestError):
    """The settings (environment, TOML file) are invalid or unreadable."""

    exit_code = 2


class UsageError(DigestError):
    """A command got input it cannot use (bad date, unknown name, unreadable file)."""

    exit_code = 2


class SchemaOutOfDate(DigestError):
    """The database schema is behind the code's migrations."""

    exit_code = 3


class DatabaseError(DigestError):
    """The database cannot be reached or opened."""

    exit_code = 3


class ParseError(DigestError):
    """A fetched or local document is not the kind of listing it was said to be."""

    exit_code = 2


class UnsafeDocument(ParseError):
    """An XML document declares entities or external references; it is refused unparsed."""


class FetchError(DigestError):
    """A source could not be fetched (network, HTTP status, size or time limit, robots.txt)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BenchmarkFailed(DigestError):
    """A benchmark's run broke a check it makes (a digest lost, or sent twice without a log line)."""


class MessageError(DigestError):
    """A message cannot be built safely (an address that is not one); it is never sent."""
