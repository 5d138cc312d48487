"""`digest inbound fetch` against a real IMAP server (Dovecot on loopback): each message is acted on,
then moved to the done folder (the failed one when it cannot be read); one read twice acts once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.usecases import inbound
from tests.integration.test_listener import wire
from tests.integration.test_mail_commands import COMMANDS, answers, letter, subscriber
from tests.support.cli import digest
from tests.support.data import DATA
from tests.support.imap import Dovecot, dovecot
from tests.support.store import add_subscriber, context


@pytest.fixture(scope="module")
def server() -> Iterator[Dovecot]:
    with dovecot() as running:
        yield running


@pytest.fixture
def mailbox(server: Dovecot, request: pytest.FixtureRequest) -> str:
    """A user of its own for each test (its Maildir is made at the first login)."""
    return "t" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]


def env(server: Dovecot, user: str, settings: Settings) -> dict[str, str]:
    return {
        "DIGEST_INBOUND_IMAP_URL": server.url(user),
        "DIGEST_COMMANDS_ADDRESS": COMMANDS,
        "DIGEST_MAIL_FROM": "digest@digest.example.org",
        "DIGEST_MAIL_TRANSPORT": "outbox",
        "DIGEST_OUTBOX_DIR": str(settings.outbox_dir),
        "DIGEST_BASE_URL": "https://digest.example.org",
        "DIGEST_INBOUND_MAX_BYTES": "10000",
    }


def test_fetch_acts_on_each_message_and_files_it_as_done_or_failed(
    server: Dovecot, mailbox: str, mail_settings: Settings, sessions: sessionmaker[Session], migrated_url: str
) -> None:
    add_subscriber(sessions, "user@example.com")
    server.deliver(
        wire(letter("ada@example.org", "help")),
        wire((DATA / "inbound" / "rfc5965_arf.eml").read_bytes()),
        wire(letter("ada@example.org", "help\n" + ("x" * 70 + "\n") * 200)),  # over inbound_max_bytes
        user=mailbox,
    )
    result = digest("inbound", "fetch", url=migrated_url, env=env(server, mailbox, mail_settings))
    assert result.exit_code == 0, result.output
    assert "3 messages: 1 complaint, 1 help, 1 too-large; 1 to the failed folder" in result.output
    assert [server.count(folder, mailbox) for folder in ("INBOX", "digest-done", "digest-failed")] == [
        0,
        2,
        1,
    ]
    assert subscriber(sessions, "user@example.com").status == "unsubscribed"
    [answer] = answers(mail_settings)
    assert answer["To"] == "ada@example.org"
    again = digest("inbound", "fetch", url=migrated_url, env=env(server, mailbox, mail_settings))
    assert "0 messages: nothing waiting" in again.output


def test_a_message_read_again_after_a_crash_is_acted_on_once(
    server: Dovecot, mailbox: str, mail_settings: Settings, sessions: sessionmaker[Session]
) -> None:
    raw = wire(letter("ada@example.org", "help"))
    server.deliver(raw, raw, user=mailbox)  # what a crash between acting and moving leaves behind
    settings = mail_settings.model_copy(
        update={"inbound_imap_url": SecretStr(server.url(mailbox)), "commands_address": COMMANDS}
    )
    fetched = inbound.fetch(context(settings, sessions))
    assert fetched.outcomes == ("help", "repeated")
    assert len(answers(settings)) == 1 and server.count("digest-done", mailbox) == 2


def test_a_refused_login_says_which_setting_to_fix(server: Dovecot, migrated_url: str) -> None:
    wrong = server.url().replace(":secret@", ":wrong@")
    result = digest("inbound", "fetch", url=migrated_url, env={"DIGEST_INBOUND_IMAP_URL": wrong})
    assert result.exit_code == 3
    assert "refused the login of 'inbox'" in result.output and "DIGEST_INBOUND_IMAP_URL" in result.output
