"""APScheduler wiring for `digest serve`: fetch each enabled source on its interval, send what is due
every few minutes, clean up daily.

Jobs never overlap themselves (one instance, missed runs coalesced). Fetches run in a pool of their
own, so a source that never answers holds one fetch thread, never the sender. Exactly-once sending
comes from the ledger, not from here: any number of schedulers on one PostgreSQL share the sending;
a fetch takes an advisory lock per source and skips a source fetched within its interval. On SQLite
one scheduler may run, held by a lock file beside the database.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import IO

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest import metrics
from digest.config import Settings
from digest.usecases import digests, inbound, maintenance, sources
from digest.usecases.context import Context
from digest.usecases.faults import expected

log = logging.getLogger(__name__)
FETCH_THREADS = 4
SOURCES_EVERY = 300.0  # seconds between looks for sources added, enabled or disabled
REPOLL_FIRST = 300.0  # seconds before a late or stale source is polled again, doubling each time


class Scheduler:
    """The service's jobs. ``clock`` gives the time the jobs act at: what is due, what has expired,
    which source was fetched lately (tests move it)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.settings = context.settings
        self.clock = context.clock
        self.stopping = threading.Event()
        self._sending = threading.Lock()
        self._fetching = 0
        self._count_lock = threading.Lock()
        self._lock_file: IO[str] | None = None
        self._behind: dict[int, tuple[bool, str | None]] = {}  # per source: behind or not, for which batch
        self._polls: dict[int, int] = {}  # per late or stale source: the fetches that found it so
        self.scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(2),
                "send": ThreadPoolExecutor(1),
                "fetch": ThreadPoolExecutor(FETCH_THREADS),
            },
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )

    def claim(self) -> None:
        """On SQLite, become the one scheduler of the database; raises AlreadyRunning naming the
        process that is. Nothing to do on PostgreSQL."""
        if self._lock_file is None:
            self._lock_file = maintenance.claim_scheduling(self.context)

    def start(self) -> None:
        """Claim the database (SQLite), add the jobs and start; the sender runs at once."""
        self.claim()
        now = datetime.now(UTC)  # APScheduler runs jobs on the wall clock; the jobs act at self.clock()
        send_every = self.settings.send_interval
        self.scheduler.add_job(
            as_job(self.settings, self.send, "sending"),
            IntervalTrigger(seconds=send_every),
            id="send",
            executor="send",
            next_run_time=now,
            misfire_grace_time=max(1, int(send_every)),
        )
        self.scheduler.add_job(
            as_job(self.settings, self.sync_sources, "looking for new sources"),
            IntervalTrigger(seconds=SOURCES_EVERY),
            id="sources",
            next_run_time=now,
            misfire_grace_time=int(SOURCES_EVERY),
        )
        self.scheduler.add_job(
            as_job(self.settings, self.clean_up, "cleaning up"),
            CronTrigger(hour=3, minute=17, timezone=UTC),
            id="clean-up",
            misfire_grace_time=6 * 3600,
        )
        if self.settings.inbound_imap_url is not None:
            every = self.settings.inbound_imap_interval
            self.scheduler.add_job(
                as_job(self.settings, self.read_mail, "reading the inbound mailbox"),
                IntervalTrigger(seconds=every),
                id="inbound",
                next_run_time=now,
                misfire_grace_time=max(1, int(every)),
            )
        self.scheduler.start()
        log.info(
            "scheduler started: sending every %gs, fetching every %gs",
            send_every,
            self.settings.fetch_interval,
        )

    def _busy(self, change: int) -> None:
        with self._count_lock:
            self._fetching += change

    def fetching(self) -> int:
        """How many fetches are running now."""
        with self._count_lock:
            return self._fetching

    def running(self) -> bool:
        return bool(self.scheduler.running) and not self.stopping.is_set()

    def stop(self) -> None:
        """Stop: no new job starts; a send in progress finishes the messages in flight, records them
        and gives back the rest, and only then is the lock file (SQLite) released. A fetch in
        progress is left to end within its deadline."""
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        with self._sending:  # the message in flight ends within smtp_timeout; the rest is given back
            pass
        if self._lock_file is not None:
            maintenance.release_scheduling(self._lock_file)
            self._lock_file = None
        log.info("scheduler stopped")

    # -- jobs --------------------------------------------------------------------------------------

    def send(self) -> digests.Summary | None:
        """Send what is due now (the ledger makes this safe to run anywhere, any number of times)."""
        with self._sending:
            if self.stopping.is_set():
                return None
            summary = digests.send(self.context, self.clock(), stop=self.stopping)
            log.info(
                "send run: %d newly due, %d sent, %d skipped, %d failed",
                summary.planned,
                summary.sent,
                summary.skipped,
                summary.failed,
            )
            return summary

    def sync_sources(self) -> None:
        """Keep one fetch job per enabled source: add new ones, drop removed or disabled ones."""
        enabled = sources.enabled_names(self.context)
        jobs = {job.id: job for job in self.scheduler.get_jobs() if job.id.startswith("fetch:")}
        wanted = {f"fetch:{source_id}": name for source_id, name in enabled.items()}
        for job_id in jobs.keys() - wanted.keys():
            self.scheduler.remove_job(job_id)
        every = self.settings.fetch_interval
        for job_id in wanted.keys() - jobs.keys():
            self.scheduler.add_job(
                as_job(self.settings, self.fetch, f"fetching {wanted[job_id]}"),
                IntervalTrigger(seconds=every, jitter=min(60, every / 10)),
                args=[int(job_id.split(":")[1])],
                id=job_id,
                name=f"fetch {wanted[job_id]}",
                executor="fetch",
                next_run_time=datetime.now(UTC),
                misfire_grace_time=max(1, int(every / 2)),
            )

    def fetch(self, source_id: int, interval: float | None = None) -> sources.SourceReport | None:
        """Fetch one source, unless it was fetched within its interval (``interval`` seconds for
        a re-poll) or another scheduler is fetching it (see digest.usecases.sources.fetch_due).
        A source found late or stale is polled again sooner (see _follow)."""
        report = sources.fetch_due(self.context, source_id, self.stopping.is_set, self._busy, interval)
        if report is None:
            return None
        metrics.FETCHES.labels(report.name, report.status).inc()
        metrics.PAPERS.labels(report.name).inc(report.new)
        if report.status == "error":
            log.warning("fetching %s failed: %s", report.name, report.error)
        else:
            log.info(
                "fetched %s (%s): %d seen, %d new, %d updated in %.1f s",
                report.name,
                report.status,
                report.seen,
                report.new,
                report.updated,
                report.seconds,
            )
            self._follow(source_id)
        return report

    def _follow(self, source_id: int) -> None:
        """After a fetch: when the source is late or stale, warn once for that batch (not once
        per fetch) and poll it again sooner: REPOLL_FIRST seconds, doubling at each poll that
        still finds that batch missing, at most fetch_interval. Once it has its batch, the
        re-polls stop."""
        state = sources.source_state(self.context, source_id, self.clock())
        if state is None:
            return
        behind = state["state"] in ("late", "stale")
        episode = (behind, state["due_at"])  # late turning stale for the same batch is no news
        if behind and self._behind.get(source_id) != episode:
            log.warning("source %s is %s: %s", state["name"], state["state"], state["state_why"])
            self._polls[source_id] = 0
        self._behind[source_id] = episode
        job_id = f"repoll:{source_id}"
        if not behind:
            self._polls.pop(source_id, None)
            if self.scheduler.get_job(job_id):
                self.scheduler.remove_job(job_id)
            return
        polls = self._polls[source_id] = self._polls[source_id] + 1
        delay = min(self.settings.fetch_interval, REPOLL_FIRST * 2 ** (polls - 1))
        self.scheduler.add_job(
            as_job(self.settings, self.fetch, f"re-polling {state['name']}"),
            DateTrigger(run_date=datetime.now(UTC) + timedelta(seconds=delay)),
            args=[source_id, delay],
            id=job_id,
            name=f"re-poll {state['name']}",
            executor="fetch",
            replace_existing=True,
            misfire_grace_time=max(1, int(delay / 2)),
        )

    def read_mail(self) -> None:
        """Handle what waits in the inbound mailbox (inbound_imap_url)."""
        fetched = inbound.fetch(self.context)
        if fetched.outcomes:
            log.info(
                "inbound mailbox: %d handled, %d to the failed folder", len(fetched.outcomes), fetched.failed
            )

    def clean_up(self) -> dict[str, int]:
        """Delete expired tokens and old fetch log entries."""
        counts = maintenance.clean_up(self.context, self.clock())
        log.info("clean-up: deleted %s", counts)
        return counts


def as_job(settings: Settings, run: Callable[..., object], what: str) -> Callable[..., None]:
    """``run`` as a job: an expected failure (the database locked or gone, say) is one log line and
    the job runs again at its next turn; anything else goes on to APScheduler, which logs it with
    its traceback."""

    def job(*args: object) -> None:
        try:
            run(*args)
        except Exception as exc:
            failure = expected(exc, settings)
            if failure is None:
                raise
            log.error("%s failed; it runs again at its next turn: %s", what, failure)

    return job


def run_until_signalled(service: Scheduler) -> None:
    """Run ``service`` in this thread until SIGTERM or SIGINT, then stop it."""
    stopped = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_args: stopped.set())
    service.start()
    try:
        while not stopped.wait(1.0):
            pass
    finally:
        service.stop()
    exit_leaving_fetches(service)


def exit_leaving_fetches(service: Scheduler) -> None:
    """After ``service`` stopped: if fetches still run, exit now with status 0 rather than wait for
    them (what a fetch stored is committed; one still waiting for a source is dropped, and tried
    again at the next start). Returns when none runs."""
    if service.fetching():
        log.warning(
            "exiting with %d fetches unfinished; they are tried again at the next start", service.fetching()
        )
        logging.shutdown()
        os._exit(0)
