"""``digest bench history``: what the stored history costs the daily work.

Two databases are built the same way but for their size: one holding SMALL stored papers, one
holding the number asked for. In each, the day's DAY papers are first seen two hours ago and listed
today, and the SMALL - DAY before them RECENT_RATE a day on the days before (so the windows digests
choose from are alike); the large one's older papers were listed over the rest of the year, one
listing day at a time. Each paper has a metric snapshot; the subscribers are all due. Then each
operation runs in a process of its own (so that its peak memory is its own), timed after the
process has started and loaded the ranking kernel: `digest score` of one subscriber, `digest
preview` of one, the web front's preview of a sign-up, storing a new 2,000-paper listing (what a
scrape does once the feed is parsed), and a `digest send` of every subscriber's digest to an SMTP
sink on loopback. Each figure is reported beside the small database's, as ``ratio_to_small``.
"""

from __future__ import annotations

import multiprocessing
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
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
from digest.bench.pipeline import database_for, run_workers
from digest.bench.sink import Sink
from digest.config import Settings
from digest.errors import BenchmarkFailed
from digest.parse.record import ParsedPaper
from digest.score.index import corpus_counts
from digest.store import corpus, scratch
from digest.store import sources as stored_sources
from digest.store.engine import Database
from digest.store.schema import upgrade
from digest.store.urls import backend

SMALL = 10_000  # stored papers of the database every figure is compared with
DAY = 2_000  # papers of the day, in both databases
YEAR = 365  # listing days the history is spread over
RECENT_RATE = 1_000  # papers a day before today among the newest (small) ones: arXiv's cs rate
CHUNK = 50_000  # papers made and loaded at a time, so building a million stays within memory
READER = "reader000000@example.org"  # the subscriber score and preview are run for
OPERATIONS = ("score", "preview", "web_preview", "send", "ingest")


def bench_history(
    *,
    stored: int,
    subscribers: int,
    database_url: str | None = None,
    progress: Callable[[str], None] = print,
    small: int = SMALL,
) -> dict[str, Any]:
    """Build both databases (the small one of ``small`` papers) and measure each operation in
    each; returns the figures. Raises BenchmarkFailed when an operation fails or a digest does not
    reach the sink."""
    now = datetime.now(UTC).replace(microsecond=0)
    sizes = {"small": max(small, DAY), "large": max(stored, small, DAY)}
    measured: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        for label, size in sizes.items():
            url, drop = database_for(database_url, Path(folder) / label)
            (Path(folder) / label).mkdir(exist_ok=True)
            try:
                database = Database.open(url)
                upgrade(database.engine)
                progress(f"storing {size:,} papers over {YEAR} listing days and {subscribers:,} subscribers")
                _populate(database, size, sizes["small"], subscribers, now)
                scratch.analyze(database)
                database.dispose()
                warm_kernels()
                measured[label] = {}
                for operation in OPERATIONS:  # the send before the ingest, which adds papers
                    progress(f"{label} ({size:,} stored): {operation.replace('_', ' ')}")
                    if operation == "send":
                        measured[label][operation] = _send(url, now, subscribers, progress)
                    else:
                        measured[label][operation] = _in_own_process(url, operation, now)
            finally:
                drop()
    return _figures(measured, sizes, subscribers, backend(database_url or "sqlite://"))


def _populate(database: Database, size: int, recent: int, subscribers: int, now: datetime) -> None:
    """Store ``size`` papers (listed as _listing_day says), their listings, a snapshot each and
    their corpus statistics, and ``subscribers`` due readers."""
    rng = random.Random(11)
    vocabulary = interest_vocabulary(fixture_papers())
    with database.begin() as session:
        source = stored_sources.add_source(
            session,
            "arxiv",
            "arxiv-rss",
            "https://rss.arxiv.org/rss/cs",
            True,
            now - timedelta(days=YEAR + 1),
        ).id
    readers = [reader_row(number, synthetic_interests(vocabulary, rng), now) for number in range(subscribers)]
    recent = min(recent, size)
    # The newest papers first, from the same seed in every database, so they are alike; then the older.
    blocks = [(size - recent, size, 0)]
    blocks += [
        (start, min(start + CHUNK, size - recent), 1 + start) for start in range(0, size - recent, CHUNK)
    ]
    for first, end, seed in blocks:
        docs = synthetic_docs(end - first, random.Random(seed), first=first)
        rows, snapshots, listings = [], [], []
        for number, doc in enumerate(docs, start=first):
            day = _listing_day(number, size, recent)
            seen = now - timedelta(hours=2) if day == 0 else now - timedelta(days=day)
            rows.append(paper_row(doc, seen))
            snapshots.append(
                {"paper_id": doc.id, "taken_at": seen, "upvotes": doc.upvotes, "comments": doc.comments}
            )
            listings.append(
                {"source_id": source, "paper_id": doc.id, "listed_on": seen.date(), "seen_at": seen}
            )
        scratch.load(database, rows, snapshots, readers if seed == 0 else [], listings)
        with database.begin() as session:  # what storing them by ingest would have counted
            corpus.add(session, corpus_counts((row["title"], row["abstract"]) for row in rows))


def _listing_day(number: int, size: int, recent: int) -> int:
    """How many days ago paper ``number`` of ``size`` was listed: the last DAY today, the ``recent``
    before them RECENT_RATE a day (alike in every database: the windows digests choose from), the
    older ones spread over the rest of the year."""
    if number >= size - DAY:
        return 0
    older = size - recent
    if number >= older:
        return 1 + (size - DAY - 1 - number) // RECENT_RATE
    recent_days = 1 + (recent - DAY) // RECENT_RATE
    return recent_days + 1 + (older - 1 - number) * (YEAR - recent_days - 1) // older


def _in_own_process(url: str, operation: str, now: datetime) -> dict[str, float]:
    """Run ``operation`` in a new process; its seconds and the process's peak memory."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_operation, args=(url, operation, now.isoformat(), results))
    process.start()
    process.join()
    if process.exitcode != 0 or results.empty():
        raise BenchmarkFailed(
            f"{operation} ended with exit code {process.exitcode}; its output above says why"
        )
    return results.get()


def _operation(url: str, operation: str, now: str, results: Any) -> None:
    """The child's side of _in_own_process."""
    from digest.ingest.scrape import store_papers
    from digest.usecases import digests
    from digest.usecases.context import Context
    from digest.usecases.preferences import Preferences

    at = datetime.fromisoformat(now)
    ctx = Context(
        Settings(database_url=SecretStr(url), base_url="https://digest.example.org"), clock=lambda: at
    )
    warm_kernels()
    with ctx.session() as session:  # open the connection pool before the clock starts
        session.connection()
    started = time.perf_counter()
    if operation == "score":
        digests.score(ctx, READER)
    elif operation == "preview":
        digests.preview(ctx, READER)
    elif operation == "web_preview":
        wish = Preferences(email="new@example.org", interests="diffusion models\nreinforcement learning")
        digests.web_preview(ctx, wish.validated(), at)
    else:
        with ctx.database.begin() as session:
            store_papers(session, source_id(session), list(_listing(at.date())), at)
    results.put(
        {
            "s": time.perf_counter() - started,
            "peak_rss_mb": peak_memory_mb(),
        }
    )


def source_id(session: Any) -> int:
    found = stored_sources.source_by_name(session, "arxiv")
    assert found is not None  # made by _populate
    return found.id


def _listing(day: date) -> Iterator[ParsedPaper]:
    """A new listing of DAY papers not stored before, as a parsed feed gives them."""
    for doc in synthetic_docs(DAY, random.Random(13), first=10_000_000):
        yield ParsedPaper(
            id=doc.id,
            title=doc.title,
            abstract=doc.abstract,
            authors=doc.authors,
            published=day,
            url=f"https://arxiv.org/abs/{doc.id}",
            kind="arxiv-rss",
            categories=doc.categories,
            listed_on=day,
        )


def _send(url: str, now: datetime, subscribers: int, progress: Callable[[str], None]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="digest-sink-") as folder, Sink(Path(folder) / "ids.txt") as sink:
        started = time.perf_counter()
        results, _ = run_workers(url, sink, now, 1, None, progress)
        total = time.perf_counter() - started
        if sink.received != subscribers or any(result["failed"] for result in results):
            raise BenchmarkFailed(
                f"the send put {sink.received} messages in the sink for {subscribers} subscribers; "
                "that is a bug in the send loop: please report it with this output."
            )
    return {"s": total, "peak_rss_mb": results[0]["peak_rss_mb"]}


def _figures(
    measured: dict[str, dict[str, dict[str, float]]], sizes: dict[str, int], subscribers: int, database: str
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "stored": sizes["large"],
        "small_stored": sizes["small"],
        "day_papers": DAY,
        "subscribers": subscribers,
        "database": database,
    }
    for operation in OPERATIONS:
        small, large = measured["small"][operation], measured["large"][operation]
        figures[operation] = {
            "s": round(large["s"], 3),
            "small_s": round(small["s"], 3),
            "ratio_to_small": round(large["s"] / small["s"], 2) if small["s"] else None,
            "peak_rss_mb": round(large["peak_rss_mb"], 1),
            "small_peak_rss_mb": round(small["peak_rss_mb"], 1),
        }
    figures["worst_ratio_to_small"] = max(
        figures[operation]["ratio_to_small"] or 0 for operation in OPERATIONS
    )
    figures["peak_rss_mb"] = max(figures[operation]["peak_rss_mb"] for operation in OPERATIONS)
    return figures
