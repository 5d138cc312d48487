"""Benchmarks behind ``digest bench``. Each returns plain figures; the CLI prints them.

Inputs are built from real captured listings shipped in digest/bench_data, repeated with fresh ids.
"""

from __future__ import annotations

import html
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest import db, ingest
from digest.models import Source
from digest.sources import hf
from digest.sources.base import ParsedPaper
from digest.sources.feeds import parse_arxiv_rss

DATA = Path(__file__).resolve().parent / "bench_data"
HF_PAGE = DATA / "hf_papers_page_2024-08-01.html"
ARXIV_RSS = DATA / "arxiv_rss_new_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_trimmed.xml"


def _best_of(runs: int, work: Callable[[], Any]) -> float:
    """Median seconds of ``runs`` calls of ``work``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hf_page_with(papers: int) -> bytes:
    """The real HF listing page with its dailyPapers repeated (fresh ids) up to ``papers`` items."""
    page = HF_PAGE.read_text(encoding="utf-8")
    match = re.search(r'data-target="DailyPapers" data-props="([^"]*)"', page)
    assert match, "bench page lost its DailyPapers element"
    props = json.loads(html.unescape(match.group(1)))
    items = props["dailyPapers"]
    grown = []
    for index in range(papers):
        item = json.loads(json.dumps(items[index % len(items)]))
        item["paper"]["id"] = f"2407.{90000 + index:05d}"
        grown.append(item)
    props["dailyPapers"] = grown
    attribute = html.escape(json.dumps(props), quote=True)
    return (page[: match.start(1)] + attribute + page[match.end(1) :]).encode("utf-8")


def rss_with(items: int) -> bytes:
    """The real arXiv RSS feed with its items repeated (fresh ids) up to ``items`` items."""
    feed = ARXIV_RSS.read_text(encoding="utf-8")
    originals = re.findall(r"<item>.*?</item>", feed, flags=re.DOTALL)
    grown = []
    for index in range(items):
        item = originals[index % len(originals)]
        grown.append(re.sub(r"\d{4}\.\d{5}", f"2609.{index:05d}", item))
    head, tail = feed.split(originals[0], 1)
    tail = tail.rsplit(originals[-1], 1)[1]
    return (head + "\n".join(grown) + tail).encode("utf-8")


def synthetic_papers(count: int) -> list[ParsedPaper]:
    """``count`` distinct papers shaped like the real HF listing's, with upvotes."""
    base = hf.parse_listing_page(HF_PAGE.read_bytes())
    return [
        replace(base[index % len(base)], id=f"2601.{index:05d}", rank=index + 1, upvotes=index % 97)
        for index in range(count)
    ]


def bench_parse(*, ingest_papers: int = 10_000, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Parse and ingest speed. Ingest runs in a temporary SQLite file, beside one paper per transaction."""
    real_page = HF_PAGE.read_bytes()
    progress("parsing the real HF page")
    hf_page_s = _best_of(21, lambda: hf.parse_listing_page(real_page))
    big_page = hf_page_with(500)
    big_page_s = _best_of(5, lambda: hf.parse_listing_page(big_page))
    feed = rss_with(2000)
    progress("parsing a 2,000-item arXiv RSS feed")
    feed_s = _best_of(3, lambda: parse_arxiv_rss(feed))
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
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    with sessions.begin() as session:
        source = Source(name="bench", kind="hf-page", url="bench", created_at=datetime.now(UTC))
        session.add(source)
        session.flush()
        source_id = source.id
    start = time.perf_counter()
    for batch in batches:
        with sessions.begin() as session:
            ingest.store(session, source_id, batch)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed
