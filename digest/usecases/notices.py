"""The web front's confirmation and manage mails, sent by one background thread so that no page
waits on the mail server.

A notice that meets a temporary failure (a 4xx reply, a server that refuses or stays silent) is
tried again after each of RETRY_DELAYS; the recipient's refusal (5xx), a connection lost after the
final dot (the server may have the mail), the last try, or a full queue drops it with a log line,
and the reader signs up again (the page after a sign-up says so); the link of a mail that surely did
not go is deleted, so nothing takes it for mailed. One thread sends one mail at a
time, so against a silent server each try costs smtp_timeout. Notices
are kept in memory only: their links' secrets are never stored, so one still queued when the
process stops is not sent, and stop() logs how many.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass

from digest import metrics
from digest.errors import DigestError
from digest.mail.transports import Outcome
from digest.usecases.context import Context
from digest.usecases.subscribers import Notice, discard_unsent, send_notice

log = logging.getLogger(__name__)

RETRY_DELAYS = (30.0, 120.0, 600.0)  # seconds at least before the second, third and fourth try
MAX_QUEUED = 1000  # notices waiting at most; a sign-up beyond it is dropped (the page is the same)
STOP_WAIT = 5.0  # seconds stop() waits for a try in flight


@dataclass(order=True, frozen=True, slots=True)
class _Queued:
    due: float  # on the monotonic clock
    order: int
    notice: Notice
    tries: int


class NoticeQueue:
    """Queue notices with put(); a thread started by start() sends them through ``send_notice``."""

    def __init__(
        self,
        context: Context,
        delays: tuple[float, ...] = RETRY_DELAYS,
        limit: int = MAX_QUEUED,
    ) -> None:
        self.context = context
        self.delays = delays
        self.limit = limit
        self._queued: list[_Queued] = []
        self._order = itertools.count()
        self._sending = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # the running thread's own: a stopped one never comes back

    def start(self) -> None:
        """Start the sending thread (once; again after stop())."""
        with self._changed:
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="digest-notices", daemon=True
                )
                self._thread.start()

    def put(self, notice: Notice) -> bool:
        """Queue ``notice`` to be sent now; False (logged) when the queue is full."""
        with self._changed:
            full = len(self._queued) + self._sending >= self.limit
            if not full:
                heapq.heappush(self._queued, _Queued(time.monotonic(), next(self._order), notice, 0))
                self._changed.notify_all()
                return True
        log.warning(
            "the %s mail to %s was dropped: %d mails wait already; is the mail server answering?",
            notice.kind,
            notice.email,
            self.limit,
        )
        metrics.mail(notice.kind, False)
        self._discard([notice])
        return False

    def settle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is queued or being sent; True if so."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._queued or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def stop(self) -> None:
        """Stop the thread after the try in flight (waiting STOP_WAIT seconds at most); logs the
        notices left unsent, and a try still going on (it may yet deliver its mail)."""
        with self._changed:
            self._stop.set()
            self._changed.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(STOP_WAIT)
        with self._changed:
            left, flying = [queued.notice for queued in self._queued], self._sending
            self._queued.clear()
        if left:
            log.warning("%d confirmation or manage mails were not sent: the web front stopped", len(left))
            self._discard(left)
        if flying:
            log.warning(
                "%d confirmation or manage mail was still being sent when the web front stopped", flying
            )

    def _next(self, stop: threading.Event) -> _Queued | None:
        """The next notice due, once it is due; None once ``stop`` is set."""
        with self._changed:
            while not stop.is_set():
                wait = self._queued[0].due - time.monotonic() if self._queued else None
                if wait is not None and wait <= 0:
                    self._sending += 1
                    return heapq.heappop(self._queued)
                self._changed.wait(wait)
            return None

    def _run(self, stop: threading.Event) -> None:
        while (queued := self._next(stop)) is not None:
            notice, tries = queued.notice, queued.tries + 1
            outcome = self._try(notice)
            again = (
                not outcome.ok
                and not outcome.permanent
                and not outcome.maybe_sent  # the server may have it: a second try could send it twice
                and tries <= len(self.delays)
                and not stop.is_set()
            )
            with self._changed:
                self._sending -= 1
                if again:
                    due = time.monotonic() + self.delays[tries - 1]
                    heapq.heappush(self._queued, _Queued(due, next(self._order), notice, tries))
                self._changed.notify_all()
            if again:
                log.info(
                    "the %s mail to %s will be tried again: %s", notice.kind, notice.email, outcome.error
                )
                continue
            if not outcome.ok:
                log.warning(
                    "the %s mail to %s was not sent (%d tries): %s",
                    notice.kind,
                    notice.email,
                    tries,
                    outcome.error,
                )
                if not outcome.maybe_sent:
                    self._discard([notice])
            metrics.mail(notice.kind, outcome.ok)

    def _discard(self, notices: list[Notice]) -> None:
        """Delete the links of mails that did not go; a database fault here is logged, not raised."""
        try:
            discard_unsent(self.context, notices)
        except Exception:
            log.exception("cannot delete the links of %d unsent mails", len(notices))

    def _try(self, notice: Notice) -> Outcome:
        """One try; what send_notice raises becomes a failure (a setting at fault is not retried)."""
        try:
            return send_notice(self.context, notice, self.context.now())
        except DigestError as exc:
            return Outcome(0, False, permanent=True, error=str(exc))
        except Exception:
            log.exception("cannot send the %s mail to %s", notice.kind, notice.email)
            return Outcome(0, False, error="internal error (logged above)")
