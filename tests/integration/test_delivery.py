"""Composing and sending digests through the ledger, on SQLite and PostgreSQL, to the file outbox."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from digest.cli import cli
from digest.store.engine import Database
from digest.store.models import Delivery, DeliveryPaper, Paper, Subscriber, Token
from tests.support.data import FIXTURES, HF_JSON, HF_PAGE, INTERESTS, NOW
from tests.support.data import GOLDEN as GOLDEN_DIR
from tests.support.store import add_subscriber, ingest_fixture, ledger, outbox, send

GOLDEN = GOLDEN_DIR / "digest_2024-08-01.txt"
UPDATE_GOLDEN = os.environ.get("DIGEST_UPDATE_GOLDEN") == "1"  # read before the tests clear DIGEST_*


def test_a_due_subscriber_gets_one_digest_and_a_second_run_sends_nothing(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    first = send(mail_settings, sessions)
    second = send(mail_settings, sessions, NOW + timedelta(hours=3))
    assert (first.planned, first.sent, second.planned, second.sent) == (1, 1, 0, 0)
    [message] = outbox(mail_settings)
    [row] = ledger(sessions)
    assert row.status == "sent" and row.message_id == message["Message-ID"]
    assert message["To"] == "ada@example.org"
    assert message["Subject"].startswith("5 new papers on ")
    with sessions() as session:
        held = session.scalars(select(DeliveryPaper.paper_id).where(DeliveryPaper.section == "main")).all()
        assert len(held) == 5 and "2407.21783" in held


def test_nobody_is_due_before_their_local_send_hour(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, timezone="America/New_York", send_hour=8)
    early = send(mail_settings, sessions, datetime(2026, 11, 24, 12, 59, tzinfo=UTC))  # 07:59 in New York
    late = send(mail_settings, sessions, datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    assert (early.planned, late.planned, late.sent) == (0, 1, 1)
    assert [row.digest_date.isoformat() for row in ledger(sessions)] == ["2026-11-24"]


def test_after_downtime_one_digest_covers_what_was_missed(mail_settings, sessions) -> None:
    ingest_fixture(sessions, seen=NOW - timedelta(days=3))
    add_subscriber(sessions, max_papers=50, trending_section=False)
    assert send(mail_settings, sessions, NOW - timedelta(days=3) + timedelta(hours=1)).sent == 1
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(days=2))
    summary = send(mail_settings, sessions, NOW)  # the sender was down for two days
    assert (summary.planned, summary.sent) == (1, 1)
    rows = ledger(sessions)
    assert [row.digest_date.isoformat() for row in rows] == ["2026-11-21", "2026-11-24"]
    with sessions() as session:
        later = set(
            session.scalars(select(DeliveryPaper.paper_id).where(DeliveryPaper.delivery_id == rows[1].id))
        )
        earlier = set(
            session.scalars(select(DeliveryPaper.paper_id).where(DeliveryPaper.delivery_id == rows[0].id))
        )
    assert later and all(paper.startswith("2606.") for paper in later)
    assert not later & earlier


def test_a_paper_is_never_sent_to_the_same_subscriber_twice(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, trending_section=False)
    send(mail_settings, sessions)
    with sessions.begin() as session:  # the same papers show up again as if first seen later
        session.execute(update(Paper).values(first_seen_at=NOW + timedelta(hours=20)))
    send(mail_settings, sessions, NOW + timedelta(days=1))
    with sessions() as session:
        papers = session.scalars(select(DeliveryPaper.paper_id)).all()
    assert len(papers) == len(set(papers)) > 5


def test_nothing_matched_means_no_mail_unless_asked_for_a_note(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions, interests="quantum chromodynamics", trending_section=False)
    quiet = send(mail_settings, sessions)
    assert (quiet.skipped, quiet.sent, outbox(mail_settings)) == (1, 0, [])
    noted = mail_settings.model_copy(update={"send_empty_digest": True})
    add_subscriber(sessions, "bob@example.org", interests="quantum chromodynamics", trending_section=False)
    assert send(noted, sessions).sent == 1
    [message] = outbox(noted)
    assert message["Subject"].startswith("No new papers on your topics")
    assert "Nothing new matched" in message.get_body(("plain",)).get_content()


def test_weekly_subscribers_get_the_weeks_best_on_their_day(mail_settings, sessions) -> None:
    ingest_fixture(sessions, seen=NOW - timedelta(days=5))
    ingest_fixture(sessions, HF_JSON, seen=NOW - timedelta(days=1))
    add_subscriber(sessions, frequency="weekly", weekly_day="wed", max_papers=8, interests="")
    tuesday, wednesday = NOW, NOW + timedelta(days=1)
    assert send(mail_settings, sessions, tuesday).planned == 0
    assert send(mail_settings, sessions, wednesday).sent == 1
    [message] = outbox(mail_settings)
    assert message["Subject"] == "8 trending papers · week to Wed 25 Nov"
    with sessions() as session:
        held = set(session.scalars(select(DeliveryPaper.paper_id)))
    assert "2407.21783" in held  # the week's most upvoted paper, first seen five days before


def test_every_message_parses_back_with_list_headers_and_text_first(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    send(mail_settings, sessions)
    [message] = outbox(mail_settings)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
        assert message[name], name
    assert message["From"] == "Paper digest <digest@localhost>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://digest.example.org/unsubscribe/")
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    token = message["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    with sessions() as session:
        stored = session.scalars(select(Token)).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in stored.token_hash
    assert len(token) >= 22  # at least 128 bits


def test_a_mailto_unsubscribe_joins_the_https_link(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    send(mail_settings.model_copy(update={"unsubscribe_mailto": "leave@example.org"}), sessions)
    [message] = outbox(mail_settings)
    https, mailto = (part.strip(" <>") for part in message["List-Unsubscribe"].split(","))
    assert https.startswith("https://digest.example.org/unsubscribe/")
    assert mailto == "mailto:leave@example.org?subject=unsubscribe%20ada%40example.org"


def test_deliveries_retry_sends_a_failed_digest_again_with_the_same_message_id(
    mail_settings, sessions, migrated_url, tmp_path
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the outbox folder should be")
    broken = mail_settings.model_copy(update={"outbox_dir": blocked, "retry_deadline": 0.5})
    first = send(broken, sessions)
    assert first.failed_temporary == 1 and ledger(sessions)[0].status == "failed-temporary"
    last = send(broken, sessions, NOW + timedelta(hours=1))
    [row] = ledger(sessions)
    assert last.failed_permanent == 1 and row.status == "failed-permanent" and "gave up" in row.last_error
    assert "cannot write to the outbox" in row.last_error
    env = {"DIGEST_DATABASE_URL": migrated_url, "DIGEST_OUTBOX_DIR": str(mail_settings.outbox_dir)}
    retry_at = (NOW + timedelta(hours=2)).isoformat()
    result = CliRunner().invoke(cli, ["deliveries", "retry", str(row.id), "--now", retry_at], env=env)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["send", "--now", retry_at], env=env)
    assert result.exit_code == 0, result.output
    [message] = outbox(mail_settings)
    assert message["Message-ID"] == row.message_id
    assert ledger(sessions)[0].status == "sent"


def test_send_dry_run_shows_what_is_due_and_stores_nothing(mail_settings, sessions, migrated_url) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    env = {"DIGEST_DATABASE_URL": migrated_url, "DIGEST_OUTBOX_DIR": str(mail_settings.outbox_dir)}
    result = CliRunner().invoke(cli, ["send", "--dry-run", "--now", NOW.isoformat()], env=env)
    assert result.exit_code == 0, result.output
    assert "ada@example.org" in result.output and "5 new papers on" in result.output
    assert ledger(sessions) == [] and outbox(mail_settings) == []


def test_preview_leaves_the_database_byte_for_byte_as_it_was(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    env = {"DIGEST_DATABASE_URL": url, "DIGEST_HOST_MIN_INTERVAL": "0"}
    runner = CliRunner()
    for args in (
        ["db", "upgrade"],
        ["sources", "add", "page", "--kind", "hf-page", "--url", str(HF_PAGE)],
        ["scrape", "--source", "page"],
        ["subscribers", "add", "ada@example.org", "--interests", INTERESTS, "--active"],
    ):
        assert runner.invoke(cli, args, env=env).exit_code == 0
    database = tmp_path / "digest.db"
    before = database.read_bytes(), _dump(database)
    for args in (["preview", "ada@example.org"], ["preview", "--interests", "diffusion", "--format", "eml"]):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 0, result.output
    assert "new papers on" in result.output
    assert (database.read_bytes(), _dump(database)) == before


def _dump(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_the_digest_of_a_fixture_day_renders_the_golden_text_and_html(tmp_path, fmt) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    env = {"DIGEST_DATABASE_URL": url, "DIGEST_HOST_MIN_INTERVAL": "0"}
    runner = CliRunner()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    database = Database.open(url)
    ingest_fixture(database.sessions, seen=datetime(2024, 8, 1, 6, tzinfo=UTC))
    database.dispose()
    args = ["subscribers", "add", "ada@example.org", "--interests", INTERESTS, "--max", "4", "--active"]
    assert runner.invoke(cli, args, env=env).exit_code == 0
    args = ["preview", "ada@example.org", "--date", "2024-08-01", "--format", fmt]
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    golden = GOLDEN.with_suffix(".txt" if fmt == "text" else ".html")
    if golden.exists() and not UPDATE_GOLDEN:
        assert result.output == golden.read_text(encoding="utf-8")
    else:
        golden.write_text(result.output, encoding="utf-8")
    assert "Llama 3 Herd" in result.output
    if fmt == "text":
        assert all(len(line) <= 78 for line in result.output.splitlines() if "://" not in line)


def test_a_subscriber_with_broken_stored_interests_is_told_not_skipped_silently(
    mail_settings, sessions
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    with sessions.begin() as session:
        session.execute(update(Subscriber).values(interests='"unclosed'))
    summary = send(mail_settings, sessions)
    [row] = ledger(sessions)
    assert summary.failed_permanent == 1
    assert row.status == "failed-permanent" and "subscribers edit ada@example.org" in row.last_error


def test_a_hundred_subscribers_get_one_digest_each(mail_settings, sessions) -> None:
    ingest_fixture(sessions)
    for number in range(100):
        add_subscriber(
            sessions, f"reader{number}@example.org", interests=["diffusion", "agents", ""][number % 3]
        )
    settings = mail_settings.model_copy(update={"claim_batch": 7})
    summary = send(settings, sessions)
    assert (summary.planned, summary.sent + summary.skipped) == (100, 100)
    messages = outbox(settings)
    assert len(messages) == summary.sent and len({m["Message-ID"] for m in messages}) == summary.sent
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 100


def test_deliveries_list_and_show_tell_what_was_sent_to_whom(mail_settings, sessions, migrated_url) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    send(mail_settings, sessions)
    env = {"DIGEST_DATABASE_URL": migrated_url}
    listed = CliRunner().invoke(cli, ["deliveries", "list", "--status", "sent", "--json"], env=env)
    [row] = [json.loads(line) for line in listed.output.splitlines()]
    assert (row["email"], row["date"], row["status"]) == ("ada@example.org", "2026-11-24", "sent")
    shown = json.loads(CliRunner().invoke(cli, ["deliveries", "show", str(row["id"])], env=env).output)
    assert shown["message_id"] == row["message_id"] and len(shown["papers"]) == 8  # 5 and 3 trending
    titles = {paper["id"]: paper["title"] for paper in shown["papers"]}
    assert titles["2407.21783"] == "The Llama 3 Herd of Models"
    missing = CliRunner().invoke(cli, ["deliveries", "show", "999"], env=env)
    assert missing.exit_code == 2 and "No delivery 999" in missing.output


def test_a_test_send_of_one_subscriber_goes_out_even_after_their_digest_did(
    mail_settings, sessions, migrated_url
) -> None:
    ingest_fixture(sessions)
    add_subscriber(sessions)
    assert send(mail_settings, sessions).sent == 1  # today's digest is out
    env = {"DIGEST_DATABASE_URL": migrated_url, "DIGEST_OUTBOX_DIR": str(mail_settings.outbox_dir)}
    args = ["send", "--only", "ada@example.org", "--test-to", "me@example.org", "--now", NOW.isoformat()]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert "Sent 1 test messages to me@example.org" in result.output
    [_, test] = outbox(mail_settings)
    assert test["To"] == "me@example.org" and test["Subject"].startswith("[test] ")
    assert len(ledger(sessions)) == 1  # nothing recorded


def test_a_test_send_that_sends_nothing_says_why_and_fails(mail_settings, sessions, migrated_url) -> None:
    env = {"DIGEST_DATABASE_URL": migrated_url, "DIGEST_OUTBOX_DIR": str(mail_settings.outbox_dir)}
    args = ["send", "--test-to", "me@example.org", "--now", NOW.isoformat()]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1 and "Nothing was due, so nothing was sent" in result.output
    assert outbox(mail_settings) == []


def after_the_days_digest(command: str, mail_settings, sessions, migrated_url) -> tuple[Delivery, Result]:
    """Send ada's digest of the day, then run ``command`` for that day: the ledger row and the output."""
    ingest_fixture(sessions)
    add_subscriber(sessions)
    assert send(mail_settings, sessions).sent == 1
    [row] = ledger(sessions)
    env = {"DIGEST_DATABASE_URL": migrated_url, "DIGEST_OUTBOX_DIR": str(mail_settings.outbox_dir)}
    result = CliRunner().invoke(
        cli, [command, "ada@example.org", "--date", row.digest_date.isoformat()], env=env
    )
    assert result.exit_code == 0, result.output
    return row, result


def test_preview_after_the_days_digest_went_out_says_when_and_which(
    mail_settings, sessions, migrated_url
) -> None:
    row, result = after_the_days_digest("preview", mail_settings, sessions, migrated_url)
    assert f"was already sent at {row.sent_at:%H:%M} UTC, Message-ID {row.message_id}" in result.output
    assert "no new paper matched" not in result.output


def test_score_after_the_days_digest_went_out_says_so_and_leaves_the_sent_papers_out(
    mail_settings, sessions, migrated_url
) -> None:
    row, result = after_the_days_digest("score", mail_settings, sessions, migrated_url)
    with sessions() as session:
        sent = session.scalars(
            select(Paper.title).join(DeliveryPaper, DeliveryPaper.paper_id == Paper.id)
        ).all()
    assert f"was already sent at {row.sent_at:%H:%M} UTC, Message-ID {row.message_id}" in result.output
    assert f": {len(sent)} sent to them before are left out." in result.output
    assert sent and not any(title in result.output for title in sent)
    assert "digest scrape" not in result.output


def test_preview_of_a_future_date_is_refused_with_today_named(migrated_url) -> None:
    result = CliRunner().invoke(
        cli,
        ["preview", "--interests", "diffusion", "--date", "2999-01-01"],
        env={"DIGEST_DATABASE_URL": migrated_url},
    )
    assert (
        result.exit_code == 2 and "--date 2999-01-01 is in the future in UTC (today there is" in result.output
    )


def test_a_mail_names_the_matched_terms_as_the_reader_wrote_them(mail_settings, sessions) -> None:
    """Not the query syntax: no weight, no brackets or commas around a word, one space in a phrase."""
    ingest_fixture(sessions)
    add_subscriber(sessions, interests='(video), "Diffusion  Transformer"^2', trending_section=False)
    send(mail_settings, sessions)
    [mail] = outbox(mail_settings)
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert 'Matched video, "Diffusion Transformer" in abstract and title' in text
    assert ">Diffusion Transformer</span>" in html and ">video</span>" in html
    why = [line.strip() for line in text.splitlines() if "Matched" in line]
    assert why and not any(mark in line for line in why for mark in ("^", "(", ",,", "  "))


def test_a_mail_shows_an_abstracts_tex_as_text(mail_settings, sessions) -> None:
    """The 2024-05-27 listing's 2405.15319 says "a 54.6\\% speedup"; readers see "54.6%"."""
    ingest_fixture(sessions, FIXTURES / "hf_daily_papers_api_2024-05-27_prettified.json")
    add_subscriber(sessions, interests="speedup", trending_section=False)
    send(mail_settings, sessions)
    [mail] = outbox(mail_settings)
    for kind in ("plain", "html"):
        shown = re.sub(r"<[^>]+>|\*", "", " ".join(mail.get_body((kind,)).get_content().split()))
        assert "resulting in a 54.6% speedup" in shown and "\\%" not in shown


def test_each_paper_has_hugging_faces_summary_under_its_title(mail_settings, sessions, migrated_url) -> None:
    """The 2026-06-12 listing carries ``ai_summary``; the mail, the web view and `digest score` show it."""
    listing = json.loads(HF_JSON.read_text(encoding="utf-8"))
    summary = next(item["paper"]["ai_summary"] for item in listing if item["paper"]["id"] == "2606.00467")
    ingest_fixture(sessions, HF_JSON)
    add_subscriber(sessions, interests="annotation priors", trending_section=False)
    send(mail_settings, sessions)
    [mail] = outbox(mail_settings)
    text = " ".join(mail.get_body(("plain",)).get_content().split())
    html = " ".join(mail.get_body(("html",)).get_content().split())
    assert summary in text and summary in html
    assert text.index(summary) < text.index("Matched")
    scored = CliRunner().invoke(
        cli,
        ["score", "--interests", "annotation priors", "--all", "--json"],
        env={"DIGEST_DATABASE_URL": migrated_url},
    )
    assert summary in [json.loads(line)["tldr"] for line in scored.output.splitlines()]
