"""Feedback on a paper: what a subscriber can say of it, and where they said it."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Verdict(IntEnum):
    """More like this, or less like this (what the ``feedback`` table stores)."""

    UP = 1
    DOWN = -1


class FeedbackOrigin(StrEnum):
    """Where a word was said (the ``origin`` column)."""

    CLI = "cli"  # digest feedback
    MAIL = "mail"  # a digest's "more like this" or "less like this" link, pressed on the page it opens
    WEB = "web"  # the preferences page
    LIBRARY = "library"  # digest subscribers import-library: the papers of the reader's own library
