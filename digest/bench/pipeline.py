"""``digest bench pipeline``: the whole daily send, end to end, as operators run it.

A fresh database (a SQLite file in a temporary folder, or a schema of its own on the PostgreSQL
given) gets synthetic papers made of fixture text and subscribers with fixture-drawn interests, all
due now. Then K worker processes start at once, each a `digest send` (plan, claim, compose,
render, send, record), against a fast SMTP sink on loopback. Reported: total time, digests per
second, what each stage took (summed over workers), peak memory per process, and that the sink
got each digest once.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from digest.bench.data import (
    fixture_papers,
    interest_vocabulary,
    paper_row,
    peak_memory_mb,
    reader_row,
    synthetic_docs,
    synthetic_interests,
    warm_kernels,
)
from digest.bench.sink import Sink
from digest.config import Settings
from digest.deliver.sender import STAGES, Sender
from digest.errors import BenchmarkFailed, UsageError
from digest.mail.transports import transport_for
from digest.model.time import utc
from digest.score.index import corpus_counts
from digest.store import corpus, ledger, scratch
from digest.store.engine import Database
from digest.store.schema import upgrade
from digest.store.urls import backend

KILL_LEASE = 10.0  # seconds; with --kill the survivors take over the killed worker's claims this soon
POLL_SECONDS = 0.1  # how often a worker with nothing left to claim looks at the others' rows


def bench_pipeline(
    *,
    subscribers: int = 10_000,
    papers: int = 2_000,
    workers: int = 1,
    database_url: str | None = None,
    kill: bool = False,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the pipeline once; with ``kill``, SIGKILL a worker holding claims once half the digests
    reached the sink (the others take over its claims when their lease runs out). Raises
    BenchmarkFailed if a digest failed or did not reach the sink, or reached it twice without a sender
    having logged that it might, or if ``kill`` caught no worker holding claims."""
    if kill and workers < 2:
        raise UsageError("--kill needs --workers 2 or more: the survivors take over the killed one's claims.")
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        url, drop = database_for(database_url, Path(folder))
        try:
            database = Database.open(url)
            upgrade(database.engine)
            progress(f"storing {papers:,} papers and {subscribers:,} subscribers")
            _populate(database, subscribers, papers, now)
            scratch.analyze(database)
            database.dispose()
            warm_kernels()  # a first run on a new machine would otherwise time Numba's compile
            ids = Path(folder) / "sink-message-ids.txt"
            with Sink(ids) as sink:
                progress(f"sending with {workers} worker process{'es' if workers > 1 else ''}")
                started = time.perf_counter()
                results, killed = run_workers(
                    url, sink, now, workers, subscribers // 2 if kill else None, progress
                )
                total = time.perf_counter() - started
            at_sink = Counter(ids.read_text(encoding="ascii").split())
            figures = _figures(url, results, at_sink, total, subscribers, papers, workers)
            figures["killed_workers"] = killed
        finally:
            drop()
    return figures


def database_for(given: str | None, folder: Path) -> tuple[str, Callable[[], None]]:
    """The URL to use and how to remove it afterwards."""
    if given is None:
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    if backend(given) != "postgresql":
        raise UsageError(
            "--database-url must be a PostgreSQL URL (the benchmark works in a schema of its own there); "
            "leave it out to use a temporary SQLite file."
        )
    return scratch.scratch_schema(given, "digest_bench")


def _populate(database: Database, subscribers: int, papers: int, now: datetime) -> None:
    rng = random.Random(7)
    docs = synthetic_docs(papers, rng)
    vocabulary = interest_vocabulary(fixture_papers())
    seen = now - timedelta(hours=2)
    paper_rows = [paper_row(doc, seen) for doc in docs]
    snapshots = [
        {"paper_id": doc.id, "taken_at": seen, "upvotes": doc.upvotes, "comments": doc.comments}
        for doc in docs
    ]
    readers = [reader_row(number, synthetic_interests(vocabulary, rng), now) for number in range(subscribers)]
    scratch.load(database, paper_rows, snapshots, readers)
    with database.begin() as session:  # what storing the papers by ingest would have counted
        corpus.add(session, corpus_counts((row["title"], row["abstract"]) for row in paper_rows))


def run_workers(
    url: str, sink: Sink, now: datetime, workers: int, kill_at: int | None, progress: Callable[[str], None]
) -> tuple[list[dict[str, Any]], int]:
    """Start the workers at once and gather what each did; with ``kill_at``, SIGKILL one that holds
    claims once the sink has that many messages (BenchmarkFailed if none was caught holding any).
    Returns the results of the workers that finished and how many were killed. Workers still
    running when this raises are terminated."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    lease = KILL_LEASE if kill_at is not None else None
    processes = [
        context.Process(target=_worker, args=(url, sink.port, now.isoformat(), lease, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    finished = False
    try:
        killed: list[Any] = []
        if kill_at is not None:
            victim = _kill_one_sending(url, sink, kill_at, processes)
            if victim is None:
                raise BenchmarkFailed(
                    "--kill: no worker was caught holding claims after half the digests reached the sink; "
                    "give more --subscribers"
                )
            killed.append(victim)
            progress(f"killed worker pid {victim.pid} with SIGKILL at {sink.received:,} messages in the sink")
        gathered: list[dict[str, Any]] = []
        while len(gathered) < workers - len(killed):
            try:
                gathered.append(results.get(timeout=1))
            except queue.Empty:
                survivors = [p for p in processes if p not in killed]
                failed = [p.exitcode for p in survivors if p.exitcode not in (None, 0)]
                if failed:
                    raise BenchmarkFailed(
                        f"a worker process ended with exit code {failed[0]}; its output above says why"
                    ) from None
                if all(p.exitcode == 0 for p in survivors) and results.empty():
                    raise BenchmarkFailed("a worker process ended without reporting its figures") from None
        finished = True
        return gathered, len(killed)
    finally:
        for process in processes:
            process.join(timeout=60 if finished else 0)
            if process.is_alive():
                process.terminate()
                process.join()


def _kill_one_sending(url: str, sink: Sink, kill_at: int, processes: list[Any]) -> Any:
    """Once the sink has ``kill_at`` messages, SIGKILL a worker that holds claimed rows it has not
    finished (claims name host:pid:random); returns it, or None if none was caught holding any."""
    database = Database.open(url)
    try:
        while any(process.is_alive() for process in processes):
            time.sleep(0.002)
            if sink.received < kill_at:
                continue
            with database.session() as session:
                pids = {int(claimant.rsplit(":", 2)[1]) for claimant in ledger.claimants(session)}
            victim = next((p for p in processes if p.pid in pids and p.is_alive()), None)
            if victim is not None:
                os.kill(victim.pid, signal.SIGKILL)
                victim.join()
                if victim.exitcode == -signal.SIGKILL:  # not if it ended just before
                    return victim
    finally:
        database.dispose()
    return None


def _worker(url: str, port: int, now: str, lease: float | None, results: Any) -> None:
    """`digest send` in this process, run again while other senders' rows are unfinished (their
    lease may run out: then this one takes them over, as a scheduler's next send would); puts its
    failures, possible duplicates, stage times and peak memory on ``results``. The operator's
    DIGEST_* settings are ignored here: the mail must go to the sink, never to a real server."""
    for name in [name for name in os.environ if name.startswith("DIGEST_")]:
        del os.environ[name]
    settings = Settings(
        database_url=SecretStr(url),
        smtp_url=SecretStr(f"smtp://127.0.0.1:{port}"),
        smtp_connections=2,
        mail_from="digest@example.org",
        base_url="https://digest.example.org",
        claim_batch=500,
        **({"claim_lease": lease} if lease is not None else {}),
    )
    database = Database.open(url)
    at = datetime.fromisoformat(now)
    failed, possible_duplicates = 0, []
    with transport_for(settings) as transport:
        sender = Sender(settings, database, transport)
        while True:
            summary = sender.run(at)
            failed += summary.failed
            possible_duplicates += summary.possible_duplicates
            if not _wait_for_others(database):
                break
    database.dispose()
    results.put(
        {
            "failed": failed,
            "possible_duplicates": possible_duplicates,
            "stages": sender.stages,
            "peak_rss_mb": peak_memory_mb(),
        }
    )


def _wait_for_others(database: Database) -> bool:
    """Wait while other senders hold rows under a live lease; True once there is work for this one
    again (a row pending, or a lease run out), False when no row is pending or being sent."""
    while True:
        with database.session() as session:
            pending, sending, lease_until = ledger.open_work(session)
        if pending:
            return True
        if not sending:
            return False
        if lease_until is None or utc(lease_until) <= datetime.now(UTC):
            return True
        time.sleep(POLL_SECONDS)


def _figures(
    url: str,
    results: list[dict[str, Any]],
    at_sink: Counter[str],
    total: float,
    subscribers: int,
    papers: int,
    workers: int,
) -> dict[str, Any]:
    """The run's figures, once checked against the ledger: BenchmarkFailed unless every row is sent
    or skipped, the sink got each sent row's Message-ID, and nothing else, and every Message-ID it
    got twice is one a sender logged as a possible duplicate."""
    database = Database.open(url)
    with database.session() as session:
        statuses = ledger.status_counts(session)
        sent_ids = ledger.sent_message_ids(session)
    database.dispose()
    rows, sent_rows, skipped = sum(statuses.values()), statuses.get("sent", 0), statuses.get("skipped", 0)
    failed = sum(result["failed"] for result in results)
    logged = {message_id for result in results for message_id in result["possible_duplicates"]}
    twice = {message_id for message_id, count in at_sink.items() if count > 1}
    lost, foreign, unlogged = sent_ids - at_sink.keys(), at_sink.keys() - sent_ids, twice - logged
    if failed or rows != subscribers or sent_rows + skipped != rows or lost or foreign or unlogged:
        raise BenchmarkFailed(
            f"the ledger has {statuses} for {subscribers} subscribers; of its sent digests {len(lost)} "
            f"never reached the sink, which also got {len(foreign)} Message-IDs the ledger does not "
            f"record as sent and {len(unlogged)} twice that no sender logged as a possible duplicate. "
            "That is a bug in the send loop: please report it with this output."
        )
    stages = {stage: round(sum(r["stages"][stage] for r in results), 2) for stage in STAGES}
    return {
        "subscribers": subscribers,
        "papers": papers,
        "workers": workers,
        "database": backend(url),
        "digests": sent_rows,
        "skipped": skipped,
        "failed": failed,
        "sink_messages": sum(at_sink.values()),
        "sink_distinct_message_ids": len(at_sink),
        "duplicates_at_sink": sum(at_sink.values()) - len(at_sink),
        "possible_duplicates_logged": len(logged),
        "total_s": round(total, 2),
        "digests_per_s": round(sent_rows / total, 1),
        "peak_rss_mb": round(max(result["peak_rss_mb"] for result in results), 1),
        "peak_rss_mb_per_process": [round(result["peak_rss_mb"], 1) for result in results],
        "stage_s": stages,
        "stage_digests_per_s": {
            stage: round(sent_rows / seconds, 1) if seconds else None for stage, seconds in stages.items()
        },
    }
