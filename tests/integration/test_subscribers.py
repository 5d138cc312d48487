"""Subscribers from the command line: validation, CSV round trip, and scoring a subscriber."""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import Settings
from digest.usecases import subscribers
from digest.usecases.context import Context
from tests.support.cli import digest
from tests.support.data import FIXTURES
from tests.support.smtp import free_port

SCORE_KEYS = {"id", "title", "score", "relevance", "trending", "matched", "line"}


def test_add_normalises_the_address_and_refuses_a_second_in_any_case(migrated_url: str) -> None:
    added = digest(
        "subscribers", "add", "Ada.Lovelace@Example.ORG", "--interests", "LLM agents", url=migrated_url
    )
    assert added.exit_code == 0 and "ada.lovelace@example.org (pending)" in added.output
    again = digest("subscribers", "add", "ADA.LOVELACE@example.org", url=migrated_url)
    assert again.exit_code == 2 and "subscribed already" in again.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["not-an-address"], "not a valid email address"),
        (["a@example.org", "--tz", "Europe/Pariss"], "Unknown time zone 'Europe/Pariss'"),
        (["a@example.org", "--hour", "24"], "send hour must be from 0 to 23"),
        (["a@example.org", "--max", "0"], "maximum papers must be from 1 to 100"),
        (["a@example.org", "--weekly", "someday"], "needs a day"),
        (["a@example.org", "--weekly", "monkey"], "needs a day"),
        (["a@example.org", "--interests", 'diffusion\n"open quote'], "interests line 2, column 1"),
    ],
)
def test_invalid_input_is_refused_with_what_and_where(migrated_url: str, args: list[str], says: str) -> None:
    result = digest("subscribers", "add", *args, url=migrated_url)
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
    assert json.loads(digest("subscribers", "list", "--json", url=migrated_url).output or "null") is None


def test_edit_changes_only_what_is_given_and_stamps_confirmation(migrated_url: str) -> None:
    digest(
        "subscribers", "add", "ada@example.org", "--interests", "diffusion", "--hour", "9", url=migrated_url
    )
    digest("subscribers", "edit", "ada@example.org", "--status", "active", "--max", "5", url=migrated_url)
    shown = json.loads(digest("subscribers", "show", "ada@example.org", url=migrated_url).output)
    assert (shown["status"], shown["max_papers"], shown["send_hour"]) == ("active", 5, 9)
    assert shown["interests"] == "diffusion" and shown["confirmed_at"]
    digest("subscribers", "edit", "ada@example.org", "--weekly", "Monday", url=migrated_url)
    shown = json.loads(digest("subscribers", "show", "ada@example.org", url=migrated_url).output)
    assert (shown["frequency"], shown["weekly_day"]) == ("weekly", "mon")


def test_export_then_import_round_trips(migrated_url: str, database_url: str, tmp_path: Path) -> None:
    digest(
        "subscribers",
        "add",
        "ada@example.org",
        "--interests",
        'a "b c"\nauthor:"Dé Zoë"',
        "--tz",
        "Asia/Tokyo",
        "--weekly",
        "fri",
        "--min-score",
        "1.5",
        "--no-trending",
        "--active",
        url=migrated_url,
    )
    digest("subscribers", "add", "bob@example.org", url=migrated_url)
    exported = digest("subscribers", "export", url=migrated_url).output
    (tmp_path / "subscribers.csv").write_text(exported, encoding="utf-8")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    digest("db", "upgrade", url=other)
    imported = digest("subscribers", "import", str(tmp_path / "subscribers.csv"), url=other)
    assert "2 added" in imported.output
    assert digest("subscribers", "export", url=other).output == exported


def test_an_import_with_a_bad_row_imports_nothing_and_names_the_line(
    migrated_url: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "people.csv"
    sheet.write_text("email,timezone\nada@example.org,UTC\nbob@example.org,Moon/Base\n", encoding="utf-8")
    result = digest("subscribers", "import", str(sheet), url=migrated_url)
    assert result.exit_code == 2 and "line 3" in result.output and "Moon/Base" in result.output
    assert digest("subscribers", "list", "--json", url=migrated_url).output == ""


def test_remove_deletes_the_subscriber(migrated_url: str) -> None:
    digest("subscribers", "add", "ada@example.org", url=migrated_url)
    assert digest("subscribers", "remove", "ada@example.org", url=migrated_url).exit_code == 0
    assert digest("subscribers", "remove", "ada@example.org", url=migrated_url).exit_code == 2


def test_score_ranks_a_subscribers_papers_with_explanations(migrated_url: str) -> None:
    digest(
        "sources",
        "add",
        "api",
        "--kind",
        "hf-daily",
        "--url",
        str(FIXTURES / "hf_daily_papers_api_2026-06-12_raw.json"),
        url=migrated_url,
    )
    digest("scrape", "--source", "api", url=migrated_url)
    digest(
        "subscribers",
        "add",
        "ada@example.org",
        "--interests",
        "LLM agents\nsparse attention",
        "--max",
        "3",
        url=migrated_url,
    )
    rows = [
        json.loads(line)
        for line in digest("score", "ada@example.org", "--json", url=migrated_url).output.splitlines()
    ]
    assert 1 <= len(rows) <= 3
    assert all(SCORE_KEYS <= row.keys() for row in rows)
    assert rows[0]["line"] in ("LLM agents", "sparse attention") and rows[0]["matched"]
    assert [row["score"] for row in rows] == sorted((row["score"] for row in rows), reverse=True)
    dated = digest("score", "ada@example.org", "--listed", "2026-06-12", "--json", url=migrated_url).output
    assert dated.splitlines()[0] == json.dumps(rows[0], ensure_ascii=False)
    adhoc = digest("score", "--interests", "", "--all", "--limit", "2", "--json", url=migrated_url)
    assert len(adhoc.output.splitlines()) == 2
    assert digest("score", url=migrated_url).exit_code == 2


def test_bench_score_reports_its_figures() -> None:
    result = digest(
        "bench", "score", "--subscribers", "300", "--papers", "200", "--baseline-sample", "5", "--json"
    )
    figures = json.loads(result.output.splitlines()[-1])
    for key in ("subscribers_per_s", "baseline_subscribers_per_s", "ratio", "peak_rss_mb"):
        assert figures[key] > 0


def test_bench_score_with_feedback_reports_both_figures_and_finds_related_papers() -> None:
    result = digest(
        "bench", "score", "--subscribers", "300", "--papers", "200", "--baseline-sample", "5",
        "--feedback", "5", "--json",
    )  # fmt: skip
    figures = json.loads(result.output.splitlines()[-1])
    for key in ("subscribers_per_s", "feedback_subscribers_per_s", "feedback_peak_rss_mb", "space_fit_s"):
        assert figures[key] > 0
    assert figures["feedback_items"] == 5 and 0 < figures["related_per_subscriber"] <= 3


def test_a_partial_import_changes_only_the_columns_it_gives(migrated_url: str, tmp_path: Path) -> None:
    digest(
        "subscribers",
        "add",
        "ada@example.org",
        "--interests",
        "diffusion",
        "--tz",
        "Europe/London",
        "--active",
        url=migrated_url,
    )
    sheet = tmp_path / "limits.csv"
    sheet.write_text("email,max_papers\nADA@example.org,5\nnew@example.org,\n", encoding="utf-8")
    imported = digest("subscribers", "import", str(sheet), "--active", url=migrated_url).output
    assert "Imported 2 rows: 1 added (1 made active by --active), 1 updated." in imported
    ada = json.loads(digest("subscribers", "show", "ada@example.org", url=migrated_url).output)
    assert (ada["max_papers"], ada["status"], ada["interests"], ada["timezone"]) == (
        5,
        "active",
        "diffusion",
        "Europe/London",
    )
    new = json.loads(digest("subscribers", "show", "new@example.org", url=migrated_url).output)
    assert (new["status"], new["max_papers"]) == ("active", 10)


def test_an_import_names_every_bad_row_at_once(migrated_url: str, tmp_path: Path) -> None:
    sheet = tmp_path / "people.csv"
    sheet.write_text(
        "email,timezone,status\n"
        "ada@example.org,Moon/Base,active\n"
        "bob@example.org,UTC,\n"
        ",UTC,active\n"
        "cy@example.org,UTC,active\n"
        "dee@example.org,UTC,sleeping\n",
        encoding="utf-8",
    )
    result = digest("subscribers", "import", str(sheet), url=migrated_url)
    assert result.exit_code == 2 and "4 rows cannot be imported, so nothing was:" in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in lines] == ["line 2", "line 3", "line 4", "line 6"]
    assert "Moon/Base" in lines[0] and "--active" in lines[1] and "email is empty" in lines[2]
    assert digest("subscribers", "list", "--json", url=migrated_url).output == ""  # cy neither


def test_an_import_with_confirm_mails_each_new_subscriber_a_link_that_activates_them(
    migrated_url: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "sign-ups.csv"
    sheet.write_text("email,interests\nada@example.org,diffusion\nbob@example.org,agents\n", encoding="utf-8")
    env = {"DIGEST_OUTBOX_DIR": str(tmp_path / "outbox")}
    result = digest("subscribers", "import", str(sheet), "--confirm", url=migrated_url, env=env)
    assert result.exit_code == 0, result.output
    assert (
        "2 added" in result.output and "Mailed a confirmation link to 2 pending subscribers." in result.output
    )
    mails = {
        message["To"]: message
        for message in (
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in (tmp_path / "outbox").glob("*.eml")
        )
    }
    assert set(mails) == {"ada@example.org", "bob@example.org"}
    text = mails["ada@example.org"].get_body(("plain",)).get_content()
    token = re.search(r"/confirm/([A-Za-z0-9_-]+)", text).group(1)
    subscribers.confirm(Context(Settings(database_url=migrated_url)), token, datetime.now(UTC))
    listed = digest("subscribers", "list", "--json", url=migrated_url).output.splitlines()
    listed = [json.loads(line) for line in listed]
    assert {row["email"]: row["status"] for row in listed} == {
        "ada@example.org": "active",
        "bob@example.org": "pending",
    }


def test_an_import_with_confirm_names_each_mail_it_could_not_send_and_exits_1(
    migrated_url: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "sign-ups.csv"
    sheet.write_text("email\nada@example.org\n", encoding="utf-8")
    env = {"DIGEST_SMTP_URL": f"smtp://127.0.0.1:{free_port()}", "DIGEST_SMTP_TIMEOUT": "2"}
    result = digest("subscribers", "import", str(sheet), "--confirm", url=migrated_url, env=env)
    assert result.exit_code == 1 and "1 added" in result.output
    assert "ada@example.org: the confirmation mail was not sent" in result.output
    assert "run the same import with --confirm again" in result.output
    again = digest(
        "subscribers",
        "import",
        str(sheet),
        "--confirm",
        url=migrated_url,
        env={"DIGEST_OUTBOX_DIR": str(tmp_path)},
    )
    assert again.exit_code == 0 and "Mailed a confirmation link to 1 pending subscriber." in again.output
    [mail] = [email.message_from_bytes(path.read_bytes()) for path in tmp_path.glob("*.eml")]
    assert mail["To"] == "ada@example.org"


def test_an_import_with_confirm_stopped_by_a_setting_at_fault_mails_them_once_it_is_fixed(
    migrated_url: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "sign-ups.csv"
    sheet.write_text("email\nada@example.org\n", encoding="utf-8")
    env = {"DIGEST_OUTBOX_DIR": str(tmp_path / "outbox")}
    missing = {"DIGEST_DKIM_SELECTOR": "digest", "DIGEST_DKIM_KEY_FILE": str(tmp_path / "missing.pem")}
    stopped = digest(
        "subscribers", "import", str(sheet), "--confirm", url=migrated_url, env={**env, **missing}
    )
    assert stopped.exit_code == 2 and "Cannot read the DKIM key" in stopped.output
    fixed = digest("subscribers", "import", str(sheet), "--confirm", url=migrated_url, env=env)
    assert "Mailed a confirmation link to 1 pending subscriber." in fixed.output, fixed.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_an_import_with_confirm_run_again_does_not_mail_a_valid_link_again(
    migrated_url: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "sign-ups.csv"
    sheet.write_text("email\nada@example.org\nbob@example.org\n", encoding="utf-8")
    env = {"DIGEST_OUTBOX_DIR": str(tmp_path / "outbox")}
    digest("subscribers", "import", str(sheet), "--confirm", url=migrated_url, env=env)
    sheet.write_text("email\nada@example.org\nbob@example.org\ncy@example.org\n", encoding="utf-8")
    again = digest("subscribers", "import", str(sheet), "--confirm", url=migrated_url, env=env)
    assert again.exit_code == 0, again.output
    assert "Mailed a confirmation link to 1 pending subscriber." in again.output
    assert "Not mailed again: 2 pending subscribers whose confirmation link from before" in again.output
    recipients = sorted(
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["To"]
        for path in (tmp_path / "outbox").glob("*.eml")
    )
    assert recipients == ["ada@example.org", "bob@example.org", "cy@example.org"]


def test_an_import_of_pending_subscribers_says_they_wait_for_a_confirmation(
    migrated_url: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "people.csv"
    sheet.write_text("email,status\nada@example.org,pending\nbob@example.org,active\n", encoding="utf-8")
    result = digest("subscribers", "import", str(sheet), url=migrated_url)
    assert result.exit_code == 0 and "1 of them is pending: no digest until they confirm" in result.output
    assert "--confirm" in result.output
    both = digest("subscribers", "import", str(sheet), "--active", "--confirm", url=migrated_url)
    assert both.exit_code == 2 and "--active or --confirm, not both" in both.output


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("email,timezone\n,UTC\n", "line 2: the email is empty"),
        ("email\nada@example.org,extra\n", "line 2: more values than the header"),
        ("email,email\nada@example.org,bob@example.org\n", "repeated columns email"),
        ("email\nada@example.org\nAda@example.org\n", "line 3: ada@example.org is already on line 2"),
    ],
)
def test_a_malformed_sheet_is_refused_by_line(
    migrated_url: str, tmp_path: Path, content: str, says: str
) -> None:
    sheet = tmp_path / "bad.csv"
    sheet.write_text(content, encoding="utf-8")
    result = digest("subscribers", "import", str(sheet), url=migrated_url)
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
