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
import random
import resource
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from digest import bench, db, delivery, mailer
from digest.bench_mail import Sink
from digest.config import Settings
from digest.errors import UsageError
from digest.models import Delivery, MetricSnapshot, Paper, Subscriber

CHUNK = 5_000


def bench_pipeline(
    *,
    subscribers: int = 10_000,
    papers: int = 2_000,
    workers: int = 1,
    database_url: str | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the pipeline once; raises RuntimeError if any digest did not reach the sink exactly once."""
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        url, drop = _database(database_url, Path(folder))
        try:
            engine = db.make_engine(url)
            db.upgrade(engine)
            progress(f"storing {papers:,} papers and {subscribers:,} subscribers")
            _populate(engine, subscribers, papers, now)
            engine.dispose()
            with Sink() as sink:
                progress(f"sending with {workers} worker process{'es' if workers > 1 else ''}")
                started = time.perf_counter()
                results = _run_workers(url, sink.port, now, workers)
                total = time.perf_counter() - started
                received = sink.received
            figures = _figures(url, results, received, total, subscribers, papers, workers)
        finally:
            drop()
    return figures


def _database(given: str | None, folder: Path) -> tuple[str, Callable[[], None]]:
    """The URL to use and how to remove it afterwards."""
    if given is None:
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    if make_url(given).get_backend_name() != "postgresql":
        raise UsageError(
            "--database-url must be a PostgreSQL URL (the benchmark works in a schema of its own there); "
            "leave it out to use a temporary SQLite file."
        )
    schema = f"digest_bench_{secrets.token_hex(4)}"
    admin = db.make_engine(given)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    url = make_url(given).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), drop


def _populate(engine: Any, subscribers: int, papers: int, now: datetime) -> None:
    rng = random.Random(7)
    docs = bench.synthetic_docs(papers, rng)
    vocabulary = bench.interest_vocabulary(bench.fixture_papers())
    seen = now - timedelta(hours=2)
    with engine.begin() as connection:
        connection.execute(
            insert(Paper),
            [
                {
                    "id": doc.id,
                    "title": doc.title,
                    "abstract": doc.abstract,
                    "authors": list(doc.authors),
                    "categories": list(doc.categories),
                    "abs_url": f"https://arxiv.org/abs/{doc.id}",
                    "pdf_url": f"https://arxiv.org/pdf/{doc.id}",
                    "ai_keywords": [],
                    "first_seen_at": seen,
                    "updated_at": seen,
                }
                for doc in docs
            ],
        )
        connection.execute(
            insert(MetricSnapshot),
            [
                {"paper_id": doc.id, "taken_at": seen, "upvotes": doc.upvotes, "comments": doc.comments}
                for doc in docs
            ],
        )
        for start in range(0, subscribers, CHUNK):
            connection.execute(
                insert(Subscriber),
                [
                    {
                        "email": f"reader{number:06d}@example.org",
                        "status": "active",
                        "interests": bench.synthetic_interests(vocabulary, rng),
                        "timezone": "UTC",
                        "send_hour": 0,
                        "frequency": "daily",
                        "max_papers": 10,
                        "min_score": 0.0,
                        "trending_section": True,
                        "created_at": now - timedelta(days=2),
                        "updated_at": now - timedelta(days=2),
                        "hard_bounces": 0,
                    }
                    for number in range(start, min(start + CHUNK, subscribers))
                ],
            )


def _run_workers(url: str, port: int, now: datetime, workers: int) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        return pool.starmap(_worker, [(url, port, now.isoformat())] * workers)


def _worker(url: str, port: int, now: str) -> dict[str, Any]:
    """One `digest send` in this process; its counts, stage times and peak memory. The operator's
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
    )
    engine = db.make_engine(url)
    with mailer.transport_for(settings) as transport:
        sender = delivery.Sender(settings, db.session_factory(engine), transport)
        summary = sender.run(datetime.fromisoformat(now))
    engine.dispose()
    return {
        "sent": summary.sent,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "stages": sender.stages,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _figures(
    url: str,
    results: list[dict[str, Any]],
    received: int,
    total: float,
    subscribers: int,
    papers: int,
    workers: int,
) -> dict[str, Any]:
    engine = db.make_engine(url)
    with engine.connect() as connection:
        sent_rows = connection.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
        )
        rows = connection.scalar(select(func.count()).select_from(Delivery))
    engine.dispose()
    sent = sum(result["sent"] for result in results)
    failed = sum(result["failed"] for result in results)
    if failed or received != sent or sent_rows != sent or rows != subscribers:
        raise RuntimeError(
            f"the sink got {received} messages, the workers sent {sent} ({failed} failed), "
            f"the ledger has {sent_rows} sent of {rows} rows for {subscribers} subscribers"
        )
    stages = {stage: round(sum(r["stages"][stage] for r in results), 2) for stage in delivery.STAGES}
    return {
        "subscribers": subscribers,
        "papers": papers,
        "workers": workers,
        "database": make_url(url).get_backend_name(),
        "digests": sent,
        "skipped": sum(result["skipped"] for result in results),
        "failed": sum(result["failed"] for result in results),
        "total_s": round(total, 2),
        "digests_per_s": round(sent / total, 1),
        "peak_rss_mb": round(max(result["peak_rss_mb"] for result in results), 1),
        "peak_rss_mb_per_process": [round(result["peak_rss_mb"], 1) for result in results],
        "stage_s": stages,
        "stage_digests_per_s": {
            stage: round(sent / seconds, 1) if seconds else None for stage, seconds in stages.items()
        },
    }
