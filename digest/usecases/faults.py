"""Faults of the database seen by whoever ran the job: one line that names the cause and the fix,
for the command line, the scheduler's log and the web front's log alike."""

from __future__ import annotations

from digest.config import Settings
from digest.errors import DatabaseError, DigestError
from digest.store.engine import fault_message, is_fault


def database_fault(exc: BaseException, settings: Settings) -> DatabaseError | None:
    """The DatabaseError ``exc`` stands for when it is the database failing (locked, gone, full,
    damaged); None when it is anything else, such as a bug."""
    if not is_fault(exc):
        return None
    return DatabaseError(fault_message(settings.db_url, exc))


def expected(exc: BaseException, settings: Settings) -> DigestError | None:
    """The expected failure ``exc`` is (a DigestError, or a database fault as one); None for a bug."""
    return exc if isinstance(exc, DigestError) else database_fault(exc, settings)
