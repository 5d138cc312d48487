"""The corpus statistics kept as papers are stored (document frequencies, acronym definitions,
the number of papers) equal a full recount of the stored papers after ingesting, re-ingesting with
a new text, storing a reader's library, deleting a source, upgrading a database stored before
them, and copying the database to PostgreSQL; `digest db corpus` checks and rebuilds them."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from digest.cli import cli
from digest.config import Settings
from digest.ingest.scrape import store_papers
from digest.model.source import AUTHORITY
from digest.parse import parse_document
from digest.score.index import corpus_counts
from digest.store import corpus, schema
from digest.store import engine as db
from digest.store import papers as stored_papers
from digest.store.models import Paper, Source
from digest.usecases import library
from tests.integration.test_feedback import AEW10, ID_LIST
from tests.support.cli import digest
from tests.support.data import HF_JSON, HF_PAGE, NOW
from tests.support.loopback import LoopbackServer, Reply
from tests.support.store import add_subscriber, context, ingest_fixture

# A new text that defines an acronym and holds a word no stored paper holds.
RETEXT = " Zebrafish larvae (ZL) are studied; zebrafish larvae (ZL) again."


def recount(session: Session) -> tuple[int, dict, dict]:
    counts = corpus_counts(stored_papers.paper_texts(session))
    return counts.papers, dict(counts.df), dict(counts.definitions)


def assert_statistics_are_a_recount(sessions: sessionmaker[Session]) -> tuple[int, dict, dict]:
    with sessions() as session:
        stored, expected = corpus.everything(session), recount(session)
    assert stored[0] == expected[0]
    assert stored[1] == expected[1]
    assert stored[2] == expected[2]
    return stored


def add_source(sessions: sessionmaker[Session], name: str, kind: str) -> int:
    with sessions.begin() as session:
        source = Source(name=name, kind=kind, url=f"https://example.org/{name}", created_at=NOW)
        session.add(source)
        session.flush()
        return source.id


def test_storing_papers_keeps_the_statistics_a_recount(sessions: sessionmaker[Session]) -> None:
    ingest_fixture(sessions)
    papers, terms, _ = assert_statistics_are_a_recount(sessions)
    assert papers > 10 and terms["model"] > 1
    again = add_source(sessions, "again", "hf-page")
    with sessions.begin() as session:  # the same listing by another source: nothing counted twice
        store_papers(
            session, again, parse_document(HF_PAGE.read_bytes()), NOW, authority=AUTHORITY["hf-page"]
        )
    assert assert_statistics_are_a_recount(sessions)[0] == papers


def test_a_new_text_replaces_the_old_one_in_the_statistics(sessions: sessionmaker[Session]) -> None:
    feed = add_source(sessions, "feed", "feed")
    arxiv = add_source(sessions, "hf", "hf-daily")
    listed = parse_document(HF_JSON.read_bytes())
    with sessions.begin() as session:
        store_papers(session, feed, listed, NOW, authority=AUTHORITY["feed"])
    first = assert_statistics_are_a_recount(sessions)
    retexted = [dataclasses.replace(paper, abstract=paper.abstract + RETEXT) for paper in listed[:3]]
    with sessions.begin() as session:
        store_papers(session, arxiv, retexted, NOW + timedelta(hours=1), authority=AUTHORITY["hf-daily"])
    second = assert_statistics_are_a_recount(sessions)
    assert second[0] == first[0] and second[1]["zebrafish"] == 3
    assert ("zl", "zebrafish larva", "ZL", "zebrafish larvae") in second[2]
    with sessions.begin() as session:  # the authority's text again, without the words
        store_papers(session, arxiv, listed[:3], NOW + timedelta(hours=2), authority=AUTHORITY["hf-daily"])
    third = assert_statistics_are_a_recount(sessions)
    assert "zebrafish" not in third[1] and not any(key[0] == "zl" for key in third[2])


def test_a_readers_library_and_a_deleted_source_keep_the_statistics_a_recount(
    mail_settings: Settings, sessions: sessionmaker[Session], migrated_url: str
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, "ada@example.org")
    with LoopbackServer() as server:
        server.routes[f"/api/query?id_list={AEW10}&max_results=1"] = Reply(
            body=json.loads(ID_LIST.read_text())["body"].encode()
        )
        settings = mail_settings.model_copy(
            update={"arxiv_api_url": server.url("/api/query"), "fetch_allowed_networks": "127.0.0.0/8"}
        )
        done = library.import_library(context(settings, sessions), "ada@example.org", AEW10, fetch=True)
    assert done.fetched == [AEW10]
    assert_statistics_are_a_recount(sessions)
    assert digest("sources", "remove", "hf_papers_page_2024-08-01", url=migrated_url).exit_code == 0
    assert_statistics_are_a_recount(sessions)


def test_papers_inserted_meanwhile_by_another_process_are_not_counted_again(
    sessions: sessionmaker[Session],
) -> None:
    source = add_source(sessions, "feed", "feed")
    listed = parse_document(HF_JSON.read_bytes())[:5]
    with sessions.begin() as session:
        store_papers(session, source, listed, NOW)
    with sessions.begin() as session:  # as if another process stored them between read and write
        rows = [
            {"id": paper.id, "title": "x", "abs_url": paper.url, "first_seen_at": NOW, "updated_at": NOW}
            for paper in listed
        ]
        assert stored_papers.insert_papers(session, rows) == []
    assert_statistics_are_a_recount(sessions)


def test_upgrading_a_database_stored_before_them_counts_its_papers(database_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(database_url)
    schema.upgrade(engine, "0012")
    sessions = db.session_factory(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO papers (id, title, abstract, authors, abs_url, categories, ai_keywords,"
                " first_seen_at, updated_at)"
                " VALUES (:id, :title, :abstract, '[]', :url, '[]', '[]', :now, :now)"
            ),
            [
                {
                    "id": f"p{n}",
                    "title": f"Paper {n} on vision transformers (ViT)",
                    "abstract": "vision transformers (ViT) for images",
                    "url": f"https://example.org/{n}",
                    "now": NOW,
                }
                for n in range(3)
            ],
        )
    schema.upgrade(engine)
    papers, terms, definitions = assert_statistics_are_a_recount(sessions)
    engine.dispose()
    assert (
        papers == 3
        and terms["vision"] == 3
        and definitions[("vit", "vision transform", "ViT", "vision transformers")] == 3
    )


def test_the_statistics_are_copied_to_postgresql_as_they_are(tmp_path: Path, postgres_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'digest.db'}"
    source = db.make_engine(sqlite_url)
    schema.upgrade(source)
    ingest_fixture(db.session_factory(source))
    target = db.make_engine(postgres_url)
    schema.upgrade(target)
    result = CliRunner().invoke(cli, ["db", "copy", postgres_url], env={"DIGEST_DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result.output
    copied = assert_statistics_are_a_recount(db.session_factory(target))
    with db.session_factory(source)() as session:
        assert copied == corpus.everything(session)
    target.dispose()
    source.dispose()


def test_digest_db_corpus_finds_statistics_gone_wrong_and_rebuilds_them(
    sessions: sessionmaker[Session], migrated_url: str
) -> None:
    ingest_fixture(sessions)
    agreed = digest("db", "corpus", url=migrated_url)
    assert agreed.exit_code == 0 and "0 counted wrong; acronym definitions" in agreed.output
    with sessions.begin() as session:
        session.execute(text("UPDATE corpus_terms SET papers = papers + 1 WHERE stem = 'model'"))
        session.execute(text("DELETE FROM corpus_definitions"))
    wrong = digest("db", "corpus", url=migrated_url)
    assert wrong.exit_code == 1 and "stems: " in wrong.output and "1 counted wrong" in wrong.output
    assert "digest db corpus --rebuild" in wrong.output
    rebuilt = digest("db", "corpus", "--rebuild", url=migrated_url)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert_statistics_are_a_recount(sessions)
    with sessions() as session:
        assert session.scalar(select(Paper.id).limit(1)) is not None


def test_the_pipeline_benchmarks_database_holds_the_statistics_ingest_keeps(database_url: str) -> None:
    """It loads its papers in bulk, not through ingest: scores there must still see a true corpus."""
    from digest.bench.pipeline import _populate

    database = db.Database.open(database_url)
    schema.upgrade(database.engine)
    _populate(database, subscribers=3, papers=200, now=NOW)
    papers, _, _ = assert_statistics_are_a_recount(database.sessions)
    database.dispose()
    assert papers == 200
