"""The inbound listener driven as an MTA drives it, by smtplib's LMTP and SMTP clients on loopback:
digest's addresses only, a bounce acted on, a command answered, a size cap, and 451 (not a lost
message) when the database is away."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.listener import Listener
from digest.store.engine import Database
from digest.usecases.context import Context
from tests.integration.test_mail_commands import COMMANDS, answers, letter, subscriber
from tests.support.cli import digest
from tests.support.data import DATA
from tests.support.smtp import free_port
from tests.support.store import add_subscriber, context

BOUNCES = "bounces@digest.example.org"


@pytest.fixture
def inbound_settings(mail_settings: Settings) -> Settings:
    return mail_settings.model_copy(
        update={
            "commands_address": COMMANDS,
            "bounce_address": BOUNCES,
            "mail_from": "digest@digest.example.org",
            "inbound_max_bytes": 20_000,
        }
    )


@pytest.fixture(params=["lmtp", "smtp"])
def listening(
    request: pytest.FixtureRequest, inbound_settings: Settings, sessions: sessionmaker[Session]
) -> Iterator[tuple[Listener, type[smtplib.SMTP]]]:
    lmtp = request.param == "lmtp"
    listener = Listener(context(inbound_settings, sessions), "127.0.0.1", free_port(), lmtp)
    listener.start()
    try:
        yield listener, smtplib.LMTP if lmtp else smtplib.SMTP
    finally:
        listener.stop()


def wire(raw: bytes) -> bytes:
    """``raw`` with CRLF line ends, as an MTA sends it (smtplib sends bytes as they are)."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


def client(listening: tuple[Listener, type[smtplib.SMTP]]) -> smtplib.SMTP:
    listener, kind = listening
    return kind("127.0.0.1", listener.port, timeout=10)


def test_the_listener_takes_only_digests_addresses(listening) -> None:
    with client(listening) as mta:
        refused = mta.sendmail(
            "someone@mail.example", ["stranger@digest.example.org", COMMANDS], letter("a@example.org", "help")
        )
    assert refused == {"stranger@digest.example.org": (550, b"5.1.1 not an address of this digest")}


def test_a_command_by_lmtp_or_smtp_is_answered(listening, inbound_settings: Settings) -> None:
    with client(listening) as mta:
        assert mta.sendmail("ada@example.org", [COMMANDS], letter("ada@example.org", "help")) == {}
    [answer] = answers(inbound_settings)
    assert answer["To"] == "ada@example.org" and answer["Auto-Submitted"] == "auto-replied"


def test_a_complaint_handed_over_unsubscribes_its_recipient(
    listening, sessions: sessionmaker[Session]
) -> None:
    add_subscriber(sessions, "user@example.com")
    with client(listening) as mta:
        assert mta.sendmail("", [BOUNCES], wire((DATA / "inbound" / "rfc5965_arf.eml").read_bytes())) == {}
    assert subscriber(sessions, "user@example.com").status == "unsubscribed"


def test_a_command_from_the_null_sender_is_not_answered(listening, inbound_settings: Settings) -> None:
    with client(listening) as mta:
        mta.sendmail("", [COMMANDS], letter("ada@example.org", "help"))
    assert answers(inbound_settings) == []


def test_a_message_that_is_no_mail_at_all_is_taken_logged_and_the_listener_goes_on(
    listening, inbound_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = b"\x00\xff--\r\nContent-Type: multipart/report; boundary=\r\n\r\n\xfe\xfd" * 50
    with caplog.at_level("INFO", logger="digest.usecases.inbound"), client(listening) as mta:
        assert mta.sendmail("", [BOUNCES], garbage) == {}
        assert mta.sendmail("ada@example.org", [COMMANDS], garbage) == {}
        assert mta.sendmail("ada@example.org", [COMMANDS], letter("ada@example.org", "help")) == {}
    assert len(answers(inbound_settings)) == 1
    outcomes = [(record.levelname, record.message.split(" ")[1]) for record in caplog.records]
    assert outcomes == [("WARNING", "malformed"), ("INFO", "ignored"), ("INFO", "help")]


def test_a_message_over_the_size_cap_is_refused_with_552(listening) -> None:
    with (
        client(listening) as mta,
        pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused,
    ):
        mta.sendmail(
            "ada@example.org", [COMMANDS], wire(letter("ada@example.org", "help\n" + ("x" * 70 + "\n") * 400))
        )
    assert refused.value.smtp_code == 552


def test_when_the_database_is_away_the_mta_is_told_to_try_again(inbound_settings: Settings) -> None:
    away = Database.open("postgresql+psycopg://postgres@127.0.0.1:9/test")  # nothing listens on 9
    listener = Listener(Context(inbound_settings, database=away), "127.0.0.1", free_port())
    listener.start()
    try:
        with (
            smtplib.LMTP("127.0.0.1", listener.port, timeout=10) as mta,
            pytest.raises(smtplib.SMTPDataError) as later,
        ):
            mta.sendmail("ada@example.org", [COMMANDS], letter("ada@example.org", "help"))
        assert later.value.smtp_code == 451
    finally:
        listener.stop()
        away.dispose()


def test_digest_inbound_serve_says_how_to_fix_a_listen_address(migrated_url: str) -> None:
    result = digest("inbound", "serve", "--listen", "localhost", url=migrated_url)
    assert result.exit_code == 2 and "is not HOST:PORT; give one such as 127.0.0.1:8024" in result.output
