"""``digest bench parse``: parsing and bulk-ingest speed, beside one paper per transaction."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest.bench.data import HF_PAGE, best_of, hf_page_with, rss_with, synthetic_papers
from digest.ingest.scrape import store_papers
from digest.parse import hf
from digest.parse.feeds import parse_arxiv_rss
from digest.parse.record import ParsedPaper
from digest.store.engine import Database
from digest.store.schema import upgrade
from digest.store.sources import add_source


def bench_parse(*, ingest_papers: int = 10_000, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Parse and ingest speed. Ingest runs in a temporary SQLite file, beside one paper per transaction."""
    real_page = HF_PAGE.read_bytes()
    progress("parsing the real HF page")
    hf_page_s = best_of(21, lambda: hf.parse_listing_page(real_page))
    big_page = hf_page_with(500)
    big_page_s = best_of(5, lambda: hf.parse_listing_page(big_page))
    feed = rss_with(2000)
    progress("parsing a 2,000-item arXiv RSS feed")
    feed_s = best_of(3, lambda: parse_arxiv_rss(feed))
    progress(f"ingesting {ingest_papers:,} papers in bulk, and one by one")
    papers = synthetic_papers(ingest_papers)
    baseline_sample = papers[: min(1000, ingest_papers)]
    with tempfile.TemporaryDirectory() as folder:
        bulk_s = _ingest_seconds(Path(folder) / "bulk.db", [papers])
        single_s = _ingest_seconds(Path(folder) / "single.db", [[paper] for paper in baseline_sample])
    ingest_per_s = len(papers) / bulk_s
    baseline_per_s = len(baseline_sample) / single_s
    return {
        "hf_page_ms": round(hf_page_s * 1000, 2),
        "hf_page_papers": len(hf.parse_listing_page(real_page)),
        "hf_page_500_papers_per_s": round(500 / big_page_s, 1),
        "rss_items": 2000,
        "rss_items_per_s": round(2000 / feed_s, 1),
        "ingest_papers": len(papers),
        "ingest_per_s": round(ingest_per_s, 1),
        "ingest_baseline_papers": len(baseline_sample),
        "ingest_baseline_per_s": round(baseline_per_s, 1),
        "ingest_ratio": round(ingest_per_s / baseline_per_s, 2),
    }


def _ingest_seconds(path: Path, batches: list[list[ParsedPaper]]) -> float:
    """Seconds to store each batch in its own transaction into a fresh, migrated SQLite database."""
    database = Database.open(f"sqlite:///{path}")
    upgrade(database.engine)
    with database.begin() as session:
        source_id = add_source(session, "bench", "hf-page", "bench", True, datetime.now(UTC)).id
    start = time.perf_counter()
    for batch in batches:
        with database.begin() as session:
            store_papers(session, source_id, batch, datetime.now(UTC))
    elapsed = time.perf_counter() - start
    database.dispose()
    return elapsed
