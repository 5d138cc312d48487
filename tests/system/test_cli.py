"""The command line as an operator uses it: messages, exit codes, JSON contracts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from tests.support.cli import add_fixture_page_source, digest
from tests.support.data import FIXTURES
from tests.support.loopback import LoopbackServer, Reply

REQUIRED_PAPER_KEYS = {"id", "title", "authors", "abstract", "published", "url", "upvotes", "kind"}


def test_commands_refuse_a_database_behind_head(database_url: str) -> None:
    result = digest("sources", "list", url=database_url)
    assert result.exit_code == 3
    assert "Run `digest db upgrade`" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_creates_the_schema_and_is_idempotent(database_url: str) -> None:
    first = digest("db", "upgrade", url=database_url)
    assert first.exit_code == 0 and "migrated from an empty database" in first.output
    second = digest("db", "upgrade", url=database_url)
    assert "already at revision" in second.output
    assert "up to date" in digest("db", "current", url=database_url).output


def test_check_config_masks_the_database_password() -> None:
    result = digest(
        "check-config", "--json", env={"DIGEST_DATABASE_URL": "postgresql+psycopg://me:s3cret@db/x"}
    )
    shown = json.loads(result.output)
    assert "s3cret" not in result.output
    assert shown["database_url"] == "postgresql+psycopg://me:***@db/x"


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('fetch_retries = 7\ncontact_url = "https://example.org/me"\n', encoding="utf-8")
    result = digest("--config", str(config), "check-config", "--json", env={"DIGEST_FETCH_RETRIES": "1"})
    shown = json.loads(result.output)
    assert shown["fetch_retries"] == 1 and shown["contact_url"] == "https://example.org/me"


@pytest.mark.parametrize(
    ("content", "env", "expected"),
    [
        ("fetch_retries = [", {}, "is not valid TOML"),
        ("fetch_retriez = 2", {}, "fetch_retriez: unknown setting"),
        ("", {"DIGEST_CONNECT_TIMEOUT": "soon"}, "connect_timeout (DIGEST_CONNECT_TIMEOUT)"),
        ("", {"DIGEST_DATABASE_URL": "not a url"}, "not a database URL"),
    ],
)
def test_bad_settings_name_the_setting_and_the_fix(
    tmp_path: Path, content: str, env: dict, expected: str
) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(content, encoding="utf-8")
    result = digest("--config", str(config), "check-config", env=env)
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = digest("--config", str(tmp_path / "nope.toml"), "check-config")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_parse_json_prints_the_contract_fields_for_every_fixture() -> None:
    for fixture in sorted(FIXTURES.glob("*.*")):
        if fixture.suffix not in {".json", ".xml", ".html"}:
            continue
        result = digest("parse", str(fixture), "--json")
        assert result.exit_code == 0, (fixture.name, result.output)
        rows = [json.loads(line) for line in result.output.splitlines()]
        assert rows, fixture.name
        for row in rows:
            assert REQUIRED_PAPER_KEYS <= row.keys()
            assert "\n" not in row["title"] and "\n" not in row["abstract"]
            assert row["upvotes"] is None or isinstance(row["upvotes"], int)


def test_parse_of_an_unknown_document_says_which_kinds_exist(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("just some notes", encoding="utf-8")
    result = digest("parse", str(junk))
    assert result.exit_code == 2
    assert "--kind" in result.output and "Traceback" not in result.output


def test_sources_add_enable_disable_remove(migrated_url: str) -> None:
    added = digest(
        "sources",
        "add",
        "ml",
        "--kind",
        "arxiv-rss",
        "--url",
        "https://rss.arxiv.org/rss/cs.LG",
        url=migrated_url,
    )
    assert added.exit_code == 0
    assert digest("sources", "add", "ml", "--kind", "feed", "--url", "x", url=migrated_url).exit_code == 2
    digest("sources", "disable", "ml", url=migrated_url)
    rows = {
        row["name"]: row
        for row in map(json.loads, digest("sources", "list", "--json", url=migrated_url).output.splitlines())
    }
    assert rows["ml"]["enabled"] is False and rows["hf-daily"]["enabled"] is True
    digest("sources", "enable", "ml", url=migrated_url)
    assert digest("sources", "remove", "ml", url=migrated_url).exit_code == 0
    missing = digest("sources", "remove", "ml", url=migrated_url)
    assert missing.exit_code == 2 and "Known sources: hf-daily" in missing.output


def test_scrape_summarises_each_source_and_fails_only_when_all_fail(
    migrated_url: str, tmp_path: Path
) -> None:
    digest("sources", "disable", "hf-daily", url=migrated_url)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    digest("sources", "add", "broken", "--kind", "hf-daily", "--url", str(broken), url=migrated_url)
    add_fixture_page_source(migrated_url)
    mixed = digest("scrape", url=migrated_url)
    assert mixed.exit_code == 0
    assert "broken" in mixed.output and "failed" in mixed.output and "added 13 new papers" in mixed.output
    only_broken = digest("scrape", "--source", "broken", url=migrated_url)
    assert only_broken.exit_code == 1


def test_papers_list_and_show(migrated_url: str) -> None:
    add_fixture_page_source(migrated_url)
    digest("scrape", "--source", "page", url=migrated_url)
    listed = [
        json.loads(line)
        for line in digest("papers", "list", "--json", "--limit", "5", url=migrated_url).output.splitlines()
    ]
    assert len(listed) == 5 and all(row["upvotes"] is not None for row in listed)
    shown = json.loads(digest("papers", "show", "2407.21783", "--json", url=migrated_url).output)
    assert shown["title"] == "The Llama 3 Herd of Models"
    assert shown["listings"][0]["source"] == "page" and shown["metrics"][0]["upvotes"] == 94
    assert digest("papers", "show", "0000.00000", url=migrated_url).exit_code == 2


def test_python_dash_m_runs_without_a_traceback_on_an_unmigrated_database(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DIGEST_")}
    env["DIGEST_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "digest", "scrape"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 3
    assert "digest db upgrade" in done.stderr and "Traceback" not in done.stderr


def test_check_config_masks_a_password_in_the_url_query() -> None:
    url = "postgresql+psycopg://me@db/x?password=hunter2&sslmode=require"
    result = digest("check-config", "--json", env={"DIGEST_DATABASE_URL": url})
    assert "hunter2" not in result.output and "sslmode=require" in result.output


def test_sources_add_stores_a_local_path_as_absolute(migrated_url: str, tmp_path: Path) -> None:
    (tmp_path / "page.html").write_bytes((FIXTURES / "hf_papers_page_2024-08-01.html").read_bytes())
    digest("sources", "add", "local", "--kind", "hf-page", "--url", "page.html", url=migrated_url)
    rows = [
        json.loads(line) for line in digest("sources", "list", "--json", url=migrated_url).output.splitlines()
    ]
    assert {row["name"]: row["url"] for row in rows}["local"] == str(tmp_path / "page.html")


def test_scrape_date_and_since_fetch_the_dated_listings(migrated_url: str) -> None:
    with LoopbackServer() as server:
        for day in ("2026-06-11", "2026-06-12"):
            server.routes[f"/api/daily_papers?date={day}"] = Reply(body=b"[]")
        server.routes["/api/daily_papers?date=2026-06-10"] = Reply(
            body=(FIXTURES / "hf_daily_papers_api_2026-06-12_raw.json").read_bytes()
        )
        digest("sources", "remove", "hf-daily", url=migrated_url)
        digest(
            "sources",
            "add",
            "hf",
            "--kind",
            "hf-daily",
            "--url",
            server.url("/api/daily_papers"),
            url=migrated_url,
        )
        one = digest("scrape", "--date", "2026-06-10", url=migrated_url)
        assert one.exit_code == 0 and "added 30 new papers" in one.output
        days = [seen.path.rsplit("=", 1)[1] for seen in server.seen if "date=" in seen.path]
        assert days == ["2026-06-10"]
    assert digest("scrape", "--date", "June 10", url=migrated_url).exit_code == 2
    assert "in the future" in digest("scrape", "--since", "2999-01-01", url=migrated_url).output


def test_bench_parse_reports_its_figures_as_json() -> None:
    result = digest("bench", "parse", "--papers", "100", "--json")
    figures = json.loads(result.output.splitlines()[-1])
    for key in ("hf_page_ms", "rss_items_per_s", "ingest_per_s", "ingest_baseline_per_s", "ingest_ratio"):
        assert figures[key] > 0
    assert figures["hf_page_papers"] == 13


def test_parsing_a_file_that_is_not_there_is_bad_input(tmp_path: Path) -> None:
    result = digest("parse", str(tmp_path / "missing.html"))
    assert result.exit_code == 2 and "No such file" in result.output and "Traceback" not in result.output


def test_a_setting_can_come_from_a_file_as_container_secrets_do(tmp_path: Path) -> None:
    secret = tmp_path / "smtp_url"
    secret.write_text("smtp://me:s3cret@mail.example.org:587\n", encoding="utf-8")
    shown = json.loads(digest("check-config", "--json", env={"DIGEST_SMTP_URL_FILE": str(secret)}).output)
    assert shown["smtp_url"] == "smtp://me:***@mail.example.org:587"
    secret.write_text("not a url", encoding="utf-8")
    bad = CliRunner().invoke(cli, ["check-config"], env={"DIGEST_SMTP_URL_FILE": str(secret)})
    assert bad.exit_code == 2 and "(DIGEST_SMTP_URL_FILE)" in bad.output
    missing = CliRunner().invoke(cli, ["check-config"], env={"DIGEST_SMTP_URL_FILE": str(tmp_path / "nope")})
    assert missing.exit_code == 2 and "DIGEST_SMTP_URL_FILE names" in missing.output
    assert "Traceback" not in missing.output


def test_json_logs_are_one_object_a_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'digest.db'}",
        "DIGEST_LOG_FORMAT": "json",
        "DIGEST_LOG_LEVEL": "INFO",
    }
    run = subprocess.run(
        [sys.executable, "-m", "digest", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert run.returncode == 0 and lines
    assert {"level", "name", "message", "timestamp"} <= set(lines[0])
    assert any(line["name"].startswith("alembic") for line in lines)


def test_digest_run_mails_the_papers_it_has_just_fetched(migrated_url: str, tmp_path: Path) -> None:
    """The daily job's send acts after its fetch: what the fetch stored goes into today's digest."""
    env = {"DIGEST_OUTBOX_DIR": str(tmp_path / "outbox")}
    assert digest("sources", "disable", "hf-daily", url=migrated_url).exit_code == 0
    add_fixture_page_source(migrated_url)
    interests = '"language model"\ndiffusion video\nagents'
    added = digest(
        "subscribers",
        "add",
        "ada@example.org",
        "--interests",
        interests,
        "--hour",
        "0",
        "--active",
        url=migrated_url,
    )
    assert added.exit_code == 0, added.output
    result = digest("run", url=migrated_url, env=env)
    assert result.exit_code == 0, result.output
    assert "1 digest delivered" in result.output
    [mail] = (tmp_path / "outbox").glob("*.eml")
    assert "Llama 3 Herd" in mail.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("htp://example.org/feed", "only http(s) URLs, file:// URLs and local paths can be fetched"),
        ("my favourite feed", "No such file: my favourite feed. Check the path or URL."),
        ("/no/such/listing.xml", "No such file: /no/such/listing.xml"),
        ("http:///listing.xml", "has no host name; write it as https://host/path"),
        (str(FIXTURES), "is a folder, not a file"),
    ],
)
def test_sources_add_refuses_what_scrape_would_refuse_in_the_same_words(
    migrated_url: str, location: str, says: str
) -> None:
    added = digest("sources", "add", "bad", "--kind", "feed", "--url", location, url=migrated_url)
    assert added.exit_code == 2 and says in added.output
    assert says in digest("parse", location).output  # a fetch of it says the same
    assert "bad" not in digest("sources", "list", url=migrated_url).output


@pytest.mark.parametrize("form", [[], ["--json"]], ids=["table", "json"])
def test_a_listing_whose_reader_went_away_ends_quietly_with_status_0(form: list[str]) -> None:
    """`digest parse FILE | head -1`: the pipe closes before digest is done writing."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before a byte is written: every write meets a closed pipe
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "digest",
                "parse",
                str(FIXTURES / "hf_papers_page_2024-08-01.html"),
                *form,
            ],
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, b"")


def test_a_misspelt_variable_is_warned_about_with_the_name_it_was_meant_to_be(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DIGEST_")}
    env |= {
        "DIGEST_SMTP_URLL": "smtp://relay.example.org",
        "DIGEST_DATABASE_URL": f"sqlite:///{tmp_path}/d.db",
    }
    done = subprocess.run(
        [sys.executable, "-m", "digest", "check-config"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert (
        "DIGEST_SMTP_URLL is not a digest setting and is ignored; did you mean DIGEST_SMTP_URL?"
        in done.stderr
    )
    assert "DIGEST_DATABASE_URL" not in done.stderr  # a real setting is not warned about


def test_check_config_says_what_auto_means_and_where_the_files_are(tmp_path: Path) -> None:
    result = digest("check-config", env={"DIGEST_DATABASE_URL": "sqlite:///data.db"})
    assert result.exit_code == 0
    assert "mail transport: outbox (auto: smtp_url is not set)" in result.output
    assert f"mail goes to: {tmp_path.resolve()}/outbox/" in result.output
    assert f"database: {tmp_path.resolve()}/data.db" in result.output
    relay = {
        "DIGEST_SMTP_URL": "smtp://me:s3cret@relay.example.org:587",
        "DIGEST_BASE_URL": "https://d.example.org",
    }
    resolved = json.loads(digest("check-config", "--json", env=relay).output)["resolved"]
    assert resolved["mail_transport"] == "smtp (auto: smtp_url is set)"
    assert resolved["mail_goes_to"] == "smtp://me:***@relay.example.org:587"


def test_only_edit_offers_daily_which_only_edit_takes() -> None:
    assert "--daily" not in digest("subscribers", "add", "--help").output
    assert "--daily" in digest("subscribers", "edit", "--help").output


def test_preview_open_without_a_display_says_where_the_file_is(migrated_url: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["preview", "--interests", "diffusion", "--open"],
        env={"DIGEST_DATABASE_URL": migrated_url, "DISPLAY": None, "WAYLAND_DISPLAY": None},
    )
    assert result.exit_code == 0, result.output
    [path] = re.findall(r"open (\S+/preview\.html) yourself", result.output)
    assert Path(path).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
