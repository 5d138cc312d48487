"""What the benchmarks run on: the captured listings the tests read (tests/data/fixtures, shipped in
the wheel), grown to any size with fresh ids, and synthetic papers and subscribers made of their
text."""

from __future__ import annotations

import html
import json
import random
import re
import resource
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from digest.parse import hf
from digest.parse.feeds import parse_arxiv_rss
from digest.parse.record import ParsedPaper
from digest.resources import resource_dir
from digest.score.index import Doc
from digest.score.warm import warm_ranking

DATA = resource_dir("fixtures")
# The listings the synthetic papers are made of (the fixtures' other HF dates are left out, so the
# figures stay comparable with those measured before).
HF_DAILY = (DATA / "hf_daily_papers_api_2026-08-21_prettified.json",)
CATEGORIES = ("cs.CV", "cs.CL", "cs.LG", "cs.AI", "stat.ML", "cs.RO", "eess.IV")
HF_PAGE = DATA / "hf_papers_page_2024-08-01.html"
ARXIV_RSS = DATA / "arxiv_rss_new_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_trimmed.xml"


def warm_kernels() -> None:
    """Compile the ranking kernel, or load it from Numba's on-disk cache, so that no timed run (and
    no process started after this one) pays for the compilation."""
    warm_ranking()


def peak_memory_mb() -> float:
    """This process's peak resident memory in MB. Linux's VmHWM, which an exec starts afresh (a
    process started by fork and exec otherwise reports its parent's peak at the fork as its own,
    in ru_maxrss); ru_maxrss where there is no /proc."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_of(runs: int, work: Callable[[], Any]) -> float:
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


def fixture_papers() -> list[ParsedPaper]:
    """Every paper of the captured listings the synthetic ones are made of."""
    papers = hf.parse_listing_page(HF_PAGE.read_bytes()) + parse_arxiv_rss(ARXIV_RSS.read_bytes())
    for listing in HF_DAILY:
        papers += hf.parse_daily_api(listing.read_bytes())
    return papers


def synthetic_docs(count: int, rng: random.Random, first: int = 0) -> list[Doc]:
    """Papers made of fixture text: a real title, two real abstract sentences (so phrases occur as
    they do in print) and about 120 words drawn by their frequency in the fixture abstracts (so a
    topical word is as rare across 2,000 papers as in a day of arXiv), with Pareto-like upvotes;
    numbered from ``first``."""
    papers = fixture_papers()
    sentences = [s.strip() + "." for p in papers for s in p.abstract.split(". ") if len(s.split()) > 4]
    words = [word for p in papers for word in p.abstract.split()]
    titles = [p.title for p in papers]
    authors = [name for p in papers for name in p.authors]
    return [
        Doc(
            id=f"2611.{first + index:05d}",
            title=rng.choice(titles),
            abstract=" ".join(rng.sample(sentences, 2) + rng.choices(words, k=120)),
            authors=tuple(rng.sample(authors, 4)),
            categories=tuple(rng.sample(CATEGORIES, 2)),
            upvotes=int(rng.paretovariate(1.2)) - 1,
            comments=rng.randrange(4),
            stars=rng.choice([None, rng.randrange(500)]),
        )
        for index in range(count)
    ]


def paper_row(doc: Doc, seen: datetime) -> dict[str, Any]:
    """The papers row of ``doc``, first seen at ``seen``."""
    return {
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


def reader_row(number: int, interests: str, now: datetime) -> dict[str, Any]:
    """The subscribers row of active reader ``number``, due at midnight UTC every day."""
    return {
        "email": f"reader{number:06d}@example.org",
        "status": "active",
        "interests": interests,
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


def interest_vocabulary(papers: Sequence[ParsedPaper]) -> Vocabulary:
    """Keyword phrases HF gave the papers, topical abstract words, authors, categories: what people
    subscribe to. Abstract words skip the 300 most frequent ("results", "propose")."""
    keywords = sorted({k for paper in papers for k in paper.ai_keywords if 1 <= len(k.split()) <= 4})
    counts = Counter(
        word.lower() for paper in papers for word in re.findall(r"[A-Za-z][A-Za-z-]{3,}", paper.abstract)
    )
    common = {word for word, _ in counts.most_common(300)}
    words = sorted(word for word in counts if word not in common)
    authors = sorted({name for paper in papers for name in paper.authors})
    categories = sorted({category for paper in papers for category in paper.categories} | set(CATEGORIES))
    return Vocabulary(keywords, words, authors, categories)


@dataclass(frozen=True)
class Vocabulary:
    keywords: list[str]
    words: list[str]
    authors: list[str]
    categories: list[str]


def synthetic_interests(vocabulary: Vocabulary, rng: random.Random, lines: int = 5) -> str:
    """``lines`` interest lines: keyword phrases, words, a few weights, exclusions and filters."""
    keywords, words = vocabulary.keywords, vocabulary.words
    chosen = []
    for _ in range(lines):
        roll = rng.random()
        if roll < 0.40:
            line = rng.choice(keywords)
        elif roll < 0.55:
            line = f'"{rng.choice(keywords)}"'
        elif roll < 0.80:
            line = " ".join(rng.sample(words, rng.randint(1, 2)))
        elif roll < 0.88:
            line = f"{rng.choice(keywords)} -{rng.choice(words)}"
        elif roll < 0.95:
            line = f"{rng.choice(words)} cat:{rng.choice(vocabulary.categories)}"
        else:
            line = f'author:"{rng.choice(vocabulary.authors)}"'
        if roll < 0.80 and rng.random() < 0.05:
            line += "^2"
        chosen.append(line)
    return "\n".join(chosen)
