"""Feedback on papers: what the command line records, changes and takes back."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from digest.store.models import DeliveryPaper, Feedback, Paper, Subscriber
from digest.usecases import library
from tests.support.cli import digest
from tests.support.data import FIXTURES, HF_JSON, HF_PAGE, NOW
from tests.support.loopback import LoopbackServer, Reply
from tests.support.store import add_subscriber, context, ingest_fixture, outbox, send

TORA, LLAMA = "2407.21705", "2407.21783"


def listed(url: str, email: str = "ada@example.org") -> dict[str, str]:
    result = digest("feedback", email, "--list", "--json", url=url)
    assert result.exit_code == 0, result.output
    return {row["id"]: row["feedback"] for row in map(json.loads, result.output.splitlines())}


def test_feedback_is_recorded_replaced_and_taken_back(migrated_url, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    said = digest("feedback", "ada@example.org", TORA, "--up", url=migrated_url)
    assert (
        said.exit_code == 0 and "Recorded more like this for ada@example.org: 2407.21705 (Tora" in said.output
    )
    assert (
        "already said more like this"
        in digest("feedback", "ada@example.org", TORA, "--up", url=migrated_url).output
    )
    digest("feedback", "ada@example.org", f"https://arxiv.org/abs/{LLAMA}v2", "--down", url=migrated_url)
    assert listed(migrated_url) == {TORA: "up", LLAMA: "down"}
    digest("feedback", "ada@example.org", TORA, "--down", url=migrated_url)
    took = digest("feedback", "ada@example.org", LLAMA, "--clear", url=migrated_url)
    assert "Took back ada@example.org's feedback on 2407.21783" in took.output
    assert listed(migrated_url) == {TORA: "down"}
    table = digest("feedback", "ada@example.org", "--list", url=migrated_url).output
    assert "less like this" in table and "Tora" in table


def test_taking_back_feedback_on_a_like_line_paper_says_the_line_still_counts(migrated_url, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, interests=f"agents\nlike:{TORA}")
    digest("feedback", "ada@example.org", TORA, "--down", url=migrated_url)
    took = " ".join(digest("feedback", "ada@example.org", TORA, "--clear", url=migrated_url).output.split())
    assert "Took back ada@example.org's feedback on 2407.21705" in took
    assert "A like: line of ada@example.org's interests names it, so it still counts" in took
    plain = " ".join(digest("feedback", "ada@example.org", LLAMA, "--clear", url=migrated_url).output.split())
    assert "like: line" not in plain


def test_feedback_names_a_paper_by_its_title_as_the_mail_shows_it(migrated_url, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    with sessions.begin() as session:
        session.get(Paper, TORA).title = r"$\alpha$-Tora: \textbf{Video}"
    said = digest("feedback", "ada@example.org", TORA, "--up", url=migrated_url)
    assert "2407.21705 (α-Tora: Video)" in " ".join(said.output.split())
    [row] = map(
        json.loads,
        digest("feedback", "ada@example.org", "--list", "--json", url=migrated_url).output.splitlines(),
    )
    assert row["title"] == "α-Tora: Video"


def test_feedback_on_what_is_not_stored_is_refused_with_where_to_look(migrated_url, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    unknown_paper = digest("feedback", "ada@example.org", "2499.00001", "--up", url=migrated_url)
    assert unknown_paper.exit_code == 2 and "No paper '2499.00001' is stored" in unknown_paper.output
    assert "digest papers list" in unknown_paper.output
    unknown_reader = digest("feedback", "bob@example.org", TORA, "--up", url=migrated_url)
    assert unknown_reader.exit_code == 2 and "digest subscribers list" in unknown_reader.output
    half = digest("feedback", "ada@example.org", TORA, url=migrated_url)
    assert half.exit_code == 2 and "--up, --down or --clear" in half.output
    assert listed(migrated_url) == {}


PAPERS = ["2407.21705", "2407.21783", "2407.21646"]
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["ada@example.org", "bob@example.org"]),
        st.sampled_from(PAPERS),
        st.sampled_from(["--up", "--down", "--clear"]),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_any_sequence_of_feedback_leaves_one_state_per_reader_and_paper(
    migrated_url, sessions, steps
) -> None:
    if not listed_subscribers(sessions):
        ingest_fixture(sessions)
        add_subscriber(sessions, "ada@example.org")
        add_subscriber(sessions, "bob@example.org")
    with sessions.begin() as session:
        session.execute(delete(Feedback))
    expected: dict[tuple[str, str], str] = {}
    for email, paper, flag in steps:
        assert digest("feedback", email, paper, flag, url=migrated_url).exit_code == 0
        if flag == "--clear":
            expected.pop((email, paper), None)
        else:
            expected[email, paper] = flag.removeprefix("--")
    with sessions() as session:
        rows = session.execute(select(Feedback.subscriber_id, Feedback.paper_id)).all()
    assert len(rows) == len(set(rows)) == len(expected)
    got = {
        (email, paper): state
        for email in ("ada@example.org", "bob@example.org")
        for paper, state in listed(migrated_url, email).items()
    }
    assert got == expected


def listed_subscribers(sessions) -> bool:
    with sessions() as session:
        return session.scalar(select(Subscriber.id).limit(1)) is not None


def test_a_liked_paper_brings_related_papers_into_the_digest_explained_by_it(
    mail_settings, sessions, migrated_url
) -> None:
    """The reader's line matches nothing of the day; a paper they liked brings its neighbours."""
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(hours=1))
    ingest_fixture(sessions, HF_PAGE, seen=NOW - timedelta(days=30))  # stored long ago
    add_subscriber(sessions, interests="cooking", trending_section=False)
    assert digest("feedback", "ada@example.org", TORA, "--up", url=migrated_url).exit_code == 0
    send(mail_settings, sessions)
    [mail] = outbox(mail_settings)
    text = " ".join(mail.get_body(("plain",)).get_content().split())
    html = mail.get_body(("html",)).get_content()
    said = "Related, because you liked: Tora: Trajectory-oriented Diffusion Transformer for Video Generation"
    assert said in text and text.count("Related, because you liked") == 3  # related_papers
    assert ">related</span> because you liked: Tora" in html
    with sessions() as session:
        kept = session.scalars(select(DeliveryPaper.liked_paper_id)).all()
    assert kept == [TORA] * 3
    scored = digest("score", "ada@example.org", "--all", "--json", url=migrated_url)
    rows = [json.loads(line) for line in scored.output.splitlines()]
    tora = "Tora: Trajectory-oriented Diffusion Transformer for Video Generation"
    assert rows and all(row["liked"] == {"id": TORA, "title": tora} for row in rows)


def test_a_like_line_brings_papers_near_its_seed_unless_the_reader_disliked_it(
    mail_settings, sessions, migrated_url
) -> None:
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(hours=1))
    ingest_fixture(sessions, HF_PAGE, seen=NOW - timedelta(days=30))
    add_subscriber(
        sessions, interests=f"cooking\nlike:https://arxiv.org/abs/{TORA}v1", trending_section=False
    )
    scored = digest("score", "ada@example.org", "--all", "--json", url=migrated_url)
    rows = [json.loads(line) for line in scored.output.splitlines()]
    assert len(rows) == 3 and all(row["liked"]["id"] == TORA for row in rows)
    assert TORA not in {row["id"] for row in rows}
    send(mail_settings, sessions)
    [mail] = outbox(mail_settings)
    assert (
        mail["Subject"].startswith("3 new papers")
        and "TRENDING" not in mail.get_body(("plain",)).get_content()
    )
    digest("feedback", "ada@example.org", TORA, "--down", url=migrated_url)
    after = digest("score", "ada@example.org", "--all", "--json", url=migrated_url)
    assert after.exit_code == 0 and after.output.strip() == ""  # "less like this" outweighs the like: line


LIBRARY = Path(__file__).resolve().parents[1] / "data" / "library"


def test_a_zotero_library_is_recorded_as_liked_keeping_earlier_ratings_and_naming_what_it_left(
    migrated_url, sessions
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    digest("feedback", "ada@example.org", LLAMA, "--down", url=migrated_url)
    result = digest(
        "subscribers", "import-library", "ada@example.org", str(LIBRARY / "zotero.bib"), url=migrated_url
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "Recorded 1 paper of" in output and "as liked by ada@example.org" in output
    assert "Kept as rated before (1): 2407.21783" in output
    assert "Not stored here, so not recorded (1): 2499.00001" in output
    assert "line 22: @inproceedings{vaswani_attention_2017: no arXiv id in it" in output
    assert "line 29: this entry cannot be read" in output
    with sessions() as session:
        rows = {row.paper_id: (row.value, row.origin) for row in session.scalars(select(Feedback))}
    assert rows == {TORA: (1, "library"), LLAMA: (-1, "cli")}


def test_a_library_file_that_is_not_text_is_refused_with_what_to_do(migrated_url, sessions, tmp_path) -> None:
    add_subscriber(sessions)
    binary = tmp_path / "library.bib"
    binary.write_bytes(b"\xff\xfe@\x00a\x00")
    result = digest("subscribers", "import-library", "ada@example.org", str(binary), url=migrated_url)
    assert result.exit_code == 2 and "is not UTF-8 text" in result.output and "Traceback" not in result.output


def test_without_feedback_a_line_that_matches_nothing_sends_nothing(mail_settings, sessions) -> None:
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(hours=1))
    add_subscriber(sessions, interests="cooking", trending_section=False)
    send(mail_settings, sessions)
    assert outbox(mail_settings) == []


ID_LIST = FIXTURES / "arxiv_api_recorded_2026_id_list_0808.05394_1707.08567.json"
AEW10 = "1707.08567"  # the one paper of the recorded answer; arXiv has no 0808.05394
ASKED = f"/api/query?id_list={AEW10},0808.05394&max_results=2"


def arxiv_api(server: LoopbackServer) -> dict[str, str]:
    """Settings (as the environment) that send arXiv lookups to ``server``."""
    return {
        "DIGEST_ARXIV_API_URL": server.url("/api/query"),
        "DIGEST_FETCH_ALLOWED_NETWORKS": "127.0.0.0/8",
        "DIGEST_FETCH_RETRIES": "0",
    }


def test_fetch_looks_up_what_is_not_stored_on_arxiv_and_likes_what_it_finds(
    migrated_url, sessions, tmp_path
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{TORA}\nhttps://arxiv.org/abs/{AEW10}v1\narXiv:0808.05394\n")
    without = digest("subscribers", "import-library", "ada@example.org", str(ids), url=migrated_url)
    assert without.exit_code == 0, without.output
    assert "Run it again with --fetch to look them up on arXiv." in " ".join(without.output.split())
    with LoopbackServer() as server:
        server.routes[ASKED] = Reply(body=json.loads(ID_LIST.read_text())["body"].encode())
        result = digest(
            "subscribers", "import-library", "ada@example.org", str(ids), "--fetch",
            url=migrated_url, env=arxiv_api(server),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"Fetched from arXiv (1): {AEW10}." in output and "Recorded 1 paper of" in output
    assert f"Kept as rated before (1): {TORA}." in output
    assert "Not on arXiv, so not recorded (1): 0808.05394." in output
    assert [seen.path for seen in server.seen if seen.path.startswith("/api/")] == [ASKED]
    with sessions() as session:
        rows = {row.paper_id: row.origin for row in session.scalars(select(Feedback))}
        paper = session.get(Paper, AEW10)
    assert rows == {TORA: "library", AEW10: "library"}
    assert paper.title.startswith("Proceedings of Workshop AEW10") and paper.text_authority == 3
    assert not paper.listed  # no digest takes it for new


def test_a_paper_fetched_for_a_library_is_new_to_digests_only_once_a_source_lists_it(
    mail_settings, sessions
) -> None:
    """Fetching a reader's old papers must not hand them to everyone as today's news."""
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(hours=1))
    add_subscriber(sessions, "ada@example.org")
    add_subscriber(sessions, "bob@example.org", interests="information theory", trending_section=False)
    with LoopbackServer() as server:
        server.routes[f"/api/query?id_list={AEW10}&max_results=1"] = Reply(
            body=json.loads(ID_LIST.read_text())["body"].encode()
        )
        settings = mail_settings.model_copy(
            update={"arxiv_api_url": server.url("/api/query"), "fetch_allowed_networks": "127.0.0.0/8"}
        )
        done = library.import_library(
            context(settings, sessions, lambda: NOW - timedelta(hours=3)),
            "ada@example.org",
            AEW10,
            fetch=True,
        )
    assert done.fetched == [AEW10] and done.liked == [AEW10]
    send(mail_settings, sessions)  # Bob gets none: nothing new matches him
    with sessions() as session:
        delivered = set(session.scalars(select(DeliveryPaper.paper_id)))
    assert delivered and AEW10 not in delivered  # (Ada's mail names it: her related papers are near it)
    ingest_fixture(sessions, ID_LIST, seen=NOW + timedelta(hours=2))  # an arXiv source lists it
    send(mail_settings, sessions, NOW + timedelta(days=1))
    [bob] = [mail for mail in outbox(mail_settings) if mail["To"] == "bob@example.org"]
    assert "Proceedings of Workshop AEW10" in bob.get_body(("plain",)).get_content()


def test_a_failed_arxiv_lookup_keeps_what_it_could_record_and_says_to_run_again(
    migrated_url, sessions, tmp_path
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{TORA}\n{AEW10}\n")
    with LoopbackServer() as server:
        server.routes[f"/api/query?id_list={AEW10}&max_results=1"] = Reply(503, b"busy")
        result = digest(
            "subscribers", "import-library", "ada@example.org", str(ids), "--fetch",
            url=migrated_url, env=arxiv_api(server),
        )  # fmt: skip
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in output
    assert "The arXiv lookup stopped:" in output and "503" in output
    assert "run the same command for the rest" in output
    assert f"Not stored here, so not recorded (1): {AEW10}." in output
    with sessions() as session:
        assert set(session.scalars(select(Feedback.paper_id))) == {TORA}


def test_a_library_that_names_no_stored_paper_records_nothing_and_exits_1(
    migrated_url, sessions, tmp_path
) -> None:
    add_subscriber(sessions)
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{AEW10}\n")
    missing = digest("subscribers", "import-library", "ada@example.org", str(ids), url=migrated_url)
    assert missing.exit_code == 1 and "Recorded 0 papers" in missing.output
    ids.write_text("Attention is all you need\n")
    nothing = digest("subscribers", "import-library", "ada@example.org", str(ids), url=migrated_url)
    assert nothing.exit_code == 2 and "names no arXiv paper" in nothing.output
