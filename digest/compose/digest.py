"""A digest as plain data to render: the papers picked for a subscriber, each explained, and the
subject line; and the rules that pick them from a ranking (leave out what was sent before, add the
trending section). No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from digest.score.explain import Snippet, explain, listed_terms
from digest.score.index import Index
from digest.score.interests import InterestError, InterestLine, parse_interests
from digest.score.rank import Pick, Profile

MAX_TOPICS_IN_SUBJECT = 2
TOPIC_CHARS = 40
FULL_AUTHOR_LIST = 4
EXPLAINED_KEPT = 200_000  # explanations one index remembers before it starts over (memory bound)


@dataclass(frozen=True, slots=True)
class PaperView:
    """What a mail shows of a paper besides why it was picked."""

    id: str
    title: str
    url: str
    authors: tuple[str, ...] = ()
    upvotes: int | None = None
    comments: int | None = None
    trending_rank: int | None = None  # place on Hugging Face's trending list, when a source ranks it
    pdf_url: str | None = None
    code_url: str | None = None
    project_url: str | None = None
    hf_url: str | None = None
    tldr: str = ""  # the one line under the title (digest.compose.tldr)

    @property
    def more_authors(self) -> bool:
        """Too many authors to list them all."""
        return len(self.authors) > FULL_AUTHOR_LIST

    @property
    def lead_authors(self) -> str:
        """All authors when there are few; else the first three."""
        return ", ".join(self.authors[:3] if self.more_authors else self.authors)

    @property
    def short_authors(self) -> str:
        """All authors when there are few; else the first three and how many in all."""
        if not self.more_authors:
            return self.lead_authors
        return f"{self.lead_authors} et al. ({len(self.authors)} authors)"


@dataclass(frozen=True, slots=True)
class Item:
    """A paper in a digest, with why it is there."""

    paper: PaperView
    score: float
    relevance: float
    trending: float
    line: int | None
    line_text: str | None
    matched: tuple[str, ...]
    where: tuple[str, ...]
    snippet: Snippet
    liked: str = ""  # for a related paper: the title of the liked paper it is near

    @property
    def related(self) -> bool:
        return bool(self.liked) and not self.matched

    @property
    def why(self) -> str:
        """E.g. 'Matched "video generation", diffusion in abstract and title', or for a related
        paper 'Related, because you liked: <title>'."""
        if self.related:
            return f"Related, because you liked: {self.liked}"
        return f"Matched {listed_terms(self.matched)} in {' and '.join(self.where)}"


@dataclass(frozen=True, slots=True)
class Links:
    view: str
    preferences: str
    unsubscribe: str
    feedback: str  # "more like this" and "less like this": add ?paper=ID&verdict=up (or down)


def links(base_url: str, token: str) -> Links:
    """The links a digest carries, made with its link token."""
    return Links(
        f"{base_url}/d/{token}",
        f"{base_url}/preferences/{token}",
        f"{base_url}/unsubscribe/{token}",
        f"{base_url}/feedback/{token}",
    )


@dataclass(frozen=True, slots=True)
class Digest:
    """One subscriber's mail for one date, ready to render."""

    email: str
    digest_date: date
    frequency: str
    items: tuple[Item, ...]
    trending: tuple[Item, ...]
    links: Links
    has_interests: bool = True
    notes: tuple[str, ...] = ()  # lines above the papers: a listing that had not arrived, say
    quiet: str = ""  # why an empty digest is empty, when nothing new came (every source rests)

    @property
    def empty(self) -> bool:
        return not self.items and not self.trending

    @property
    def topics(self) -> list[str]:
        """The interests that matched, in the order of the papers they brought."""
        seen: list[str] = []
        for item in self.items:
            label = topic_label(item.line_text)
            if label and label not in seen:
                seen.append(label)
        return seen


@lru_cache(maxsize=16_384)
def topic_label(line: str | None) -> str:
    """A short human name for an interest line: what it asks for as the reader wrote it (its words,
    phrases, authors and categories, without quotes, weights or exclusions)."""
    try:
        parsed = parse_interests(line or "")
    except InterestError:
        return ""
    label = " ".join(atom.label for line in parsed[:1] for atom in line.atoms if not atom.exclude)
    return label if len(label) <= TOPIC_CHARS else label[: TOPIC_CHARS - 1].rstrip() + "…"


def subject(digest: Digest) -> str:
    """E.g. "6 new papers on diffusion, LLM agents · Tue 24 Nov"."""
    day = digest.digest_date.strftime("%a %d %b").replace(" 0", " ")
    when = f"week to {day}" if digest.frequency == "weekly" else day
    count = len(digest.items)
    if digest.empty:
        return f"No new papers on your topics · {when}"
    if not digest.has_interests or not count:
        papers = len(digest.items or digest.trending)
        return f"{papers} trending {'paper' if papers == 1 else 'papers'} · {when}"
    topics = digest.topics
    named = ", ".join(topics[:MAX_TOPICS_IN_SUBJECT])
    more = " and more" if len(topics) > MAX_TOPICS_IN_SUBJECT else ""
    about = f" on {named}{more}" if named else ""
    return f"{count} new {'paper' if count == 1 else 'papers'}{about} · {when}"


@dataclass(frozen=True, slots=True)
class Selection:
    """The picks of one subscriber: the main list and the trending section."""

    main: tuple[Pick, ...]
    trending: tuple[Pick, ...]


def select(
    index: Index,
    picks: Sequence[Pick],
    profile: Profile,
    excluded: set[str],
    trending_papers: int,
) -> Selection:
    """Drop papers sent before from ``picks`` (ranked with ``profile.limit`` plus ``len(excluded)``
    slots), keep the profile's limit of matched papers and up to ``profile.related`` related ones,
    in score order, and add up to ``trending_papers`` of the most trending others (only to a digest
    that has papers its lines matched: trending alone is no reason to mail)."""
    kept = [pick for pick in picks if index.docs[pick.doc].id not in excluded]
    matched = [pick for pick in kept if not pick.related][: profile.limit]
    related = [pick for pick in kept if pick.related][: profile.related]
    chosen = {pick.doc for pick in (*matched, *related)}
    main = [pick for pick in kept if pick.doc in chosen]
    trending: list[Pick] = []
    if trending_papers and profile.lines and matched:
        taken = {pick.doc for pick in main}
        for doc in index.order.tolist():
            if len(trending) >= trending_papers:
                break
            if doc in taken or index.docs[doc].id in excluded:
                continue
            value = float(index.trending[doc])
            if value <= 0:
                break
            trending.append(Pick(doc, index.weights.trending * value, 0.0, value, None))
    return Selection(tuple(main), tuple(trending))


Why = tuple[tuple[str, ...], tuple[str, ...], Snippet]  # matched, where, snippet


def items(
    index: Index,
    picks: Sequence[Pick],
    profile: Profile,
    papers: Mapping[str, PaperView],
    memo: dict[tuple[int, str | None], Why] | None = None,
    liked: Mapping[str, str] | None = None,
) -> tuple[Item, ...]:
    """Explain each pick and join it with what the mail shows of the paper. ``memo``, kept by the
    caller for one ``index``, remembers each (paper, interest line)'s explanation: a day's digests
    ask for the same pairs again and again. ``liked`` gives the title of each paper of
    ``profile.feedback`` by id, for related picks."""
    made = []
    for pick in picks:
        line: InterestLine | None = profile.lines[pick.line] if pick.line is not None else None
        key = (pick.doc, line.text if line else None)
        why = memo.get(key) if memo is not None else None
        if why is None:
            explained = explain(index, pick, profile)
            why = (
                tuple(explained.matched),
                tuple(sorted({field for match in explained.matches for field in match.fields})),
                explained.snippet,
            )
            if memo is not None:
                if len(memo) >= EXPLAINED_KEPT:
                    memo.clear()
                memo[key] = why
        matched, where, snippet = why
        made.append(
            Item(
                paper=papers[index.docs[pick.doc].id],
                score=pick.score,
                relevance=pick.relevance,
                trending=pick.trending,
                line=pick.line,
                line_text=line.text if line else None,
                matched=matched,
                where=where,
                snippet=snippet,
                liked=(liked or {}).get(profile.liked_for(pick) or "", ""),
            )
        )
    return tuple(made)
