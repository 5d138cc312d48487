"""Benchmarks behind ``digest bench``. Each returns plain figures; the CLI prints them.

Inputs are built from real captured listings shipped in digest/bench_data, repeated with fresh ids.
"""

from __future__ import annotations

import html
import json
import random
import re
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest import db, ingest, scoring
from digest.interests import parse_interests
from digest.models import Source
from digest.sources import hf
from digest.sources.base import ParsedPaper
from digest.sources.feeds import parse_arxiv_rss

DATA = Path(__file__).resolve().parent / "bench_data"
CATEGORIES = ("cs.CV", "cs.CL", "cs.LG", "cs.AI", "stat.ML", "cs.RO", "eess.IV")
HF_PAGE = DATA / "hf_papers_page_2024-08-01.html"
ARXIV_RSS = DATA / "arxiv_rss_new_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_trimmed.xml"


def warm_kernels() -> None:
    """Compile the ranking kernel, or load it from Numba's on-disk cache, so that no timed run (and
    no process started after this one) pays for the compilation."""
    docs = synthetic_docs(20, random.Random(1))
    profiles = scoring.ProfileSet.build([scoring.Profile(parse_interests("model"))])
    corpus = scoring.corpus_from((doc.title, doc.abstract) for doc in docs)
    scoring.rank(scoring.build_index(docs, corpus, scoring.Weights(), profiles.atoms), profiles)


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


# --- scoring ----------------------------------------------------------------------------------------


def fixture_papers() -> list[ParsedPaper]:
    """Every paper of the captured listings shipped in bench_data."""
    papers = hf.parse_listing_page(HF_PAGE.read_bytes()) + parse_arxiv_rss(ARXIV_RSS.read_bytes())
    for listing in sorted(DATA.glob("hf_daily_papers_api_*.json")):
        papers += hf.parse_daily_api(listing.read_bytes())
    return papers


def synthetic_docs(count: int, rng: random.Random) -> list[scoring.Doc]:
    """Papers made of fixture text: a real title, two real abstract sentences (so phrases occur as
    they do in print) and about 120 words drawn by their frequency in the fixture abstracts (so a
    topical word is as rare across 2,000 papers as in a day of arXiv), with Pareto-like upvotes."""
    papers = fixture_papers()
    sentences = [s.strip() + "." for p in papers for s in p.abstract.split(". ") if len(s.split()) > 4]
    words = [word for p in papers for word in p.abstract.split()]
    titles = [p.title for p in papers]
    authors = [name for p in papers for name in p.authors]
    return [
        scoring.Doc(
            id=f"2611.{index:05d}",
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


def naive_rank(
    index: scoring.Index, profile: scoring.Profile, doc_values: list[dict[int, float]]
) -> list[tuple[float, str]]:
    """The straightforward way: every line against every paper in Python, then a sort.

    ``doc_values`` maps each paper's features to their BM25 values (``paper_values``). Returns
    (-final score, paper id) pairs, best first, as ``scoring.rank`` picks them.
    """
    columns = index.columns
    results = []
    for row, doc in enumerate(index.docs):
        values = doc_values[row]
        best = 0.0
        for line in profile.lines:
            wanted = [(values.get(columns.get(atom.key, -1), 0.0), atom.weight) for atom in line.positive]
            if any(value == 0.0 for value, _ in wanted):
                continue
            if any(values.get(columns.get(atom.key, -1), 0.0) > 0 for atom in line.excluded):
                continue
            if not _passes_filters(line, doc):
                continue
            score = (
                sum(value * weight for value, weight in wanted) if wanted else scoring.FILTER_ONLY_RELEVANCE
            )
            best = max(best, score)
        final = index.weights.relevance * best + index.weights.trending * index.trending[row]
        if best > 0 and final >= profile.min_score:
            results.append((-final, doc.id))
    return sorted(results)[: profile.limit]


def paper_values(index: scoring.Index) -> list[dict[int, float]]:
    """For each paper, its features' BM25 values: the naive loop's view of the index."""
    by_paper = index.bm25.T.tocsr()
    return [
        dict(zip(by_paper.indices[start:end].tolist(), by_paper.data[start:end].tolist(), strict=True))
        for start, end in zip(by_paper.indptr[:-1], by_paper.indptr[1:], strict=True)
    ]


def _passes_filters(line: Any, doc: scoring.Doc) -> bool:
    for kind in ("author", "cat"):
        wanted = [atom for atom in line.filters if atom.kind == kind and not atom.exclude]
        refused = [atom for atom in line.filters if atom.kind == kind and atom.exclude]
        if wanted and not any(scoring._where(atom, doc, [], []) for atom in wanted):
            return False
        if any(scoring._where(atom, doc, [], []) for atom in refused):
            return False
    return True


def bench_score(
    *,
    subscribers: int,
    papers: int,
    baseline_sample: int = 100,
    seed: int = 7,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Vectorised scoring of ``subscribers`` x ``papers`` beside the naive loop on a sample.

    ``subscribers_per_s`` times the daily work: building the papers' index and ranking every
    subscriber. Compiling the subscribers' interests into arrays (done once per subscriber list,
    reused every day) is timed apart and also folded into ``subscribers_per_s_with_compile``.
    """
    rng = random.Random(seed)
    progress(f"making {papers:,} papers and {subscribers:,} subscribers (5 interest lines each)")
    docs = synthetic_docs(papers, rng)
    vocabulary = interest_vocabulary(fixture_papers())
    profiles = [
        scoring.Profile(parse_interests(synthetic_interests(vocabulary, rng)), limit=10)
        for _ in range(subscribers)
    ]
    corpus = scoring.corpus_from((doc.title, doc.abstract) for doc in docs)
    weights = scoring.Weights()
    warm = scoring.ProfileSet.build(profiles[:10])
    scoring.rank(
        scoring.build_index(docs[:50], corpus, weights, warm.atoms), warm
    )  # load the compiled kernel
    progress("compiling interests, building the index, ranking")
    start = time.perf_counter()
    profile_set = scoring.ProfileSet.build(profiles)
    compiled = time.perf_counter()
    index = scoring.build_index(docs, corpus, weights, profile_set.atoms)
    built = time.perf_counter()
    ranking = scoring.rank(index, profile_set)
    done = time.perf_counter()
    sample = profiles[: min(baseline_sample, subscribers)]
    progress(f"scoring {len(sample)} subscribers with the naive loop")
    values = paper_values(index)
    naive_start = time.perf_counter()
    for profile in sample:
        naive_rank(index, profile, values)
    naive_s = time.perf_counter() - naive_start
    daily_s = done - compiled
    rate = subscribers / daily_s
    baseline = len(sample) / naive_s
    picked = int((ranking.doc >= 0).sum())
    return {
        "subscribers": subscribers,
        "papers": papers,
        "profile_compile_s": round(compiled - start, 3),
        "index_build_s": round(built - compiled, 3),
        "rank_s": round(done - built, 3),
        "subscribers_per_s": round(rate, 1),
        "subscribers_per_s_with_compile": round(subscribers / (done - start), 1),
        "baseline_subscribers": len(sample),
        "baseline_subscribers_per_s": round(baseline, 1),
        "ratio": round(rate / baseline, 1),
        "picks_per_subscriber": round(picked / max(1, subscribers), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
