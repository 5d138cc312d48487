"""What becomes of a ledger row after a try: the outcome policy. Plain functions, no I/O.

A message the server accepted is sent. A refusal of the recipient (5xx) fails for good and counts
as a hard bounce. Anything else is temporary: tried again after a growing delay, until the row's
retry deadline has passed, when it fails for good too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from digest.model.ledger import DeliveryStatus, retry_delay


class RetryOptions(Protocol):
    retry_delay: float  # seconds before the first retry
    retry_deadline: float  # hours a row is retried, from its first claim


@dataclass(frozen=True, slots=True)
class Verdict:
    """A row's next status, the error to record, and when to try again (for a temporary failure)."""

    status: DeliveryStatus
    error: str | None = None
    retry_at: datetime | None = None


def after_failure(
    error: str,
    *,
    permanent: bool,
    attempts: int,
    give_up_at: datetime | None,
    now: datetime,
    options: RetryOptions,
) -> Verdict:
    """A failed try: permanent as given, or temporary until ``give_up_at`` has come."""
    if permanent:
        return Verdict(DeliveryStatus.FAILED_PERMANENT, error)
    if give_up_at is not None and now >= give_up_at:
        return Verdict(
            DeliveryStatus.FAILED_PERMANENT, f"gave up after {options.retry_deadline:g} h of retries: {error}"
        )
    retry_at = now + timedelta(seconds=retry_delay(options.retry_delay, attempts))
    return Verdict(DeliveryStatus.FAILED_TEMPORARY, error, retry_at)


def counts_as_bounce(permanent: bool, code: int | None) -> bool:
    """A permanent refusal the server gave a code for is the recipient's: a hard bounce."""
    return permanent and code is not None
