"""A reader's library (a reference manager's export, or pasted ids) recorded as papers they like:
the one path for `digest subscribers import-library` and the web sign-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.errors import UsageError
from digest.fetch.http import Fetcher
from digest.ingest.lookup import look_up
from digest.model.feedback import FeedbackOrigin, Verdict
from digest.parse.library import read_library
from digest.store import feedback as stored
from digest.store import papers
from digest.usecases.context import Context
from digest.usecases.subscribers import require_subscriber

__all__ = ["MAX_GIVEN", "Given", "Imported", "import_library", "papers_given", "stored_of"]

MAX_GIVEN = 500  # papers a sign-up may bring: a confirmation link carries their ids


@dataclass
class Imported:
    """What ``import_library`` did: papers now liked, papers rated before (left as they were),
    papers fetched from arXiv on the way, papers not stored here (by arXiv id), papers arXiv does
    not have, and each entry it could not use. ``fetch_error`` says why a lookup stopped."""

    email: str
    kind: str
    liked: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    not_on_arxiv: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fetch_error: str | None = None

    @property
    def complete(self) -> bool:
        """Every paper the library names is now rated, and every entry was read."""
        return not (self.missing or self.not_on_arxiv or self.problems or self.fetch_error)


def import_library(ctx: Context, email: str, text: str, *, fetch: bool = False) -> Imported:
    """Record the papers of a reference manager's export (BibTeX, RIS or a list of arXiv ids and
    URLs; see digest.parse.library) as liked by the subscriber ``email``, leaving any paper they
    rated before as it is. With ``fetch``, papers not stored here are first looked up on the arXiv
    API and stored as not listed (no digest takes them for new). Raises UsageError for an unknown
    subscriber; a lookup that fails is reported in the result, with what it could do recorded."""
    library = read_library(text)
    now = ctx.now()
    wanted = list(dict.fromkeys(reference.paper_id for reference in library.references))
    done = Imported(email, library.kind, problems=library.problems)
    with ctx.session() as session:
        done.email = require_subscriber(session, email).email
        stored_before = papers.titles(session, wanted)
    absent = [paper for paper in wanted if paper not in stored_before]
    if fetch and absent:
        with Fetcher(ctx.settings) as fetcher:
            lookup = look_up(ctx.database, fetcher, ctx.settings.arxiv_api_url, absent, now)
        done.fetched, done.not_on_arxiv, done.fetch_error = lookup.stored, lookup.not_found, lookup.error
    with ctx.database.begin() as session:
        subscriber = require_subscriber(session, email)
        known = papers.titles(session, wanted)
        present = [paper for paper in wanted if paper in known]
        added = stored.add_new(session, subscriber.id, present, int(Verdict.UP), FeedbackOrigin.LIBRARY, now)
    done.liked = [paper for paper in present if paper in added]
    done.kept = [paper for paper in present if paper not in added]
    done.missing = [paper for paper in wanted if paper not in known and paper not in done.not_on_arxiv]
    return done


@dataclass(frozen=True)
class Given:
    """The papers a sign-up form names (arXiv ids, in order), and how many of its entries named
    none (or could not be read)."""

    papers: tuple[str, ...] = ()
    passed_over: int = 0


def papers_given(pasted: str, upload: bytes | None) -> Given:
    """The arXiv ids a sign-up form names: in ``pasted`` (ids or links, or an export's text) and in
    ``upload`` (a BibTeX, RIS or id-list file). Entries that name no arXiv id are passed over.
    Raises UsageError, in words for the reader, for a file that is not UTF-8 text, for input that
    names no arXiv paper, and for more than MAX_GIVEN papers (or twice as many entries: reading
    is bounded, whatever is sent)."""
    texts = [pasted] if pasted.strip() else []
    if upload:
        try:
            texts.append(upload.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise UsageError(
                "The file is not UTF-8 text. Export the library as BibTeX or RIS in UTF-8, or paste "
                "the arXiv ids."
            ) from None
    if not texts:
        return Given()
    read = [read_library(text, most=2 * MAX_GIVEN) for text in texts]
    if any(library.cut for library in read):
        raise UsageError(
            f"That is more than {2 * MAX_GIVEN:,} entries; export only the papers that matter most "
            f"(at most {MAX_GIVEN})."
        )
    named = tuple(dict.fromkeys(reference.paper_id for library in read for reference in library.references))
    if not named:
        raise UsageError(
            "The papers you gave name no arXiv paper. Give arXiv ids or links (such as 2401.12345), "
            "or a BibTeX or RIS export whose entries carry them."
        )
    if len(named) > MAX_GIVEN:
        raise UsageError(
            f"That is {len(named):,} papers; give at most {MAX_GIVEN} (the ones that matter most)."
        )
    return Given(named, sum(len(library.problems) for library in read))


def stored_of(ctx: Context, paper_ids: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``paper_ids`` that are stored here, in order. Reads only."""
    if not paper_ids:
        return ()
    with ctx.session() as session:
        known = papers.titles(session, list(paper_ids))
    return tuple(paper for paper in paper_ids if paper in known)
