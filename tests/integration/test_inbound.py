"""Reports that come back after the send, handled by `digest inbound handle`: a digest a loopback
relay accepted and that later bounces by DSN counts as a hard bounce; a complaint unsubscribes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.store.models import Delivery, Subscriber
from tests.integration.test_smtp import NOW, send, subscribe
from tests.support.cli import digest
from tests.support.data import DATA
from tests.support.reports import dsn
from tests.support.smtp import ScriptedServer, serving

DAY = timedelta(days=1)
BOUNCES = "bounces@digest.example.org"


@pytest.fixture
def relay() -> Iterator[ScriptedServer]:
    with serving(ScriptedServer()) as handler:
        yield handler


@pytest.fixture
def relayed(settings: Settings, relay: ScriptedServer) -> Settings:
    """Mail through the loopback relay, which accepts everything; reports go to BOUNCES."""
    return settings.model_copy(
        update={
            "smtp_url": SecretStr(f"smtp://127.0.0.1:{relay.port}"),
            "max_hard_bounces": 2,
            "bounce_address": BOUNCES,
            "base_url": "https://digest.example.org",
            "send_empty_digest": True,
        }
    )


def handle(tmp_path: Path, url: str, message: bytes, to: str) -> str:
    path = tmp_path / "report.eml"
    path.write_bytes(message)
    result = digest("inbound", "handle", str(path), "--to", to, url=url, env={"DIGEST_MAX_HARD_BOUNCES": "2"})
    assert result.exit_code == 0, result.output
    return result.output


def subscriber(sessions: sessionmaker[Session], address: str) -> Subscriber:
    with sessions() as session:
        return session.scalars(select(Subscriber).where(Subscriber.email == address)).one()


def test_a_digest_that_bounces_after_the_relay_took_it_counts_and_the_limit_stops_the_mail(
    relayed: Settings,
    sessions: sessionmaker[Session],
    relay: ScriptedServer,
    migrated_url: str,
    tmp_path: Path,
) -> None:
    subscribe(sessions, "gone@example.org")
    assert send(relayed, sessions, NOW).sent == 1
    said = handle(tmp_path, migrated_url, dsn("gone@example.org"), relay.senders[-1])
    assert said.startswith("bounced for gone@example.org (delivery 1)")
    assert subscriber(sessions, "gone@example.org").hard_bounces == 1
    handle(tmp_path, migrated_url, dsn("gone@example.org"), relay.senders[-1])  # the relay reports twice
    assert subscriber(sessions, "gone@example.org").hard_bounces == 1

    assert send(relayed, sessions, NOW + DAY).sent == 1  # taken by the relay: not a delivery yet
    assert subscriber(sessions, "gone@example.org").hard_bounces == 1
    handle(tmp_path, migrated_url, dsn("gone@example.org"), relay.senders[-1])
    assert subscriber(sessions, "gone@example.org").status == "bounced"
    assert send(relayed, sessions, NOW + 2 * DAY).sent == 0
    assert len(relay.senders) == 2
    shown = [json.loads(digest("deliveries", "show", str(row), url=migrated_url).output) for row in (1, 2)]
    assert all(row["report"].startswith("bounced: gone@example.org: failed 5.1.1") for row in shown)
    assert all(row["reported_at"] for row in shown)


def test_a_delay_is_recorded_on_the_row_and_counts_nothing(
    relayed: Settings,
    sessions: sessionmaker[Session],
    relay: ScriptedServer,
    migrated_url: str,
    tmp_path: Path,
) -> None:
    subscribe(sessions, "slow@example.org")
    assert send(relayed, sessions, NOW).sent == 1
    said = handle(tmp_path, migrated_url, dsn("slow@example.org", "4.4.7", "delayed"), relay.senders[-1])
    assert said.startswith("delayed for slow@example.org")
    assert subscriber(sessions, "slow@example.org").hard_bounces == 0
    with sessions() as session:
        assert session.scalars(select(Delivery.report)).one().startswith("delayed: slow@example.org")


def test_a_bounce_that_names_no_digest_of_ours_changes_nothing(
    relayed: Settings,
    sessions: sessionmaker[Session],
    relay: ScriptedServer,
    migrated_url: str,
    tmp_path: Path,
) -> None:
    subscribe(sessions, "ada@example.org")
    assert send(relayed, sessions, NOW).sent == 1
    forged = relay.senders[-1].replace(".", "0", 1)  # a token that is not the row's
    assert handle(tmp_path, migrated_url, dsn("ada@example.org"), forged).startswith("unattributed")
    assert subscriber(sessions, "ada@example.org").hard_bounces == 0


@pytest.mark.parametrize(
    ("report", "recipient"),
    [("rfc5965_arf.eml", "user@example.com"), ("jmrp_hotmail.eml", "recipient@hotmail.com")],
    ids=["arf", "microsoft-jmrp"],
)
def test_a_feedback_loop_complaint_unsubscribes_its_recipient_at_once(
    sessions: sessionmaker[Session], migrated_url: str, tmp_path: Path, report: str, recipient: str
) -> None:
    subscribe(sessions, recipient)
    said = handle(tmp_path, migrated_url, (DATA / "inbound" / report).read_bytes(), BOUNCES)
    assert said.startswith(f"complaint for {recipient}")
    assert subscriber(sessions, recipient).status == "unsubscribed"


def test_an_amazon_ses_bounce_forwarded_to_the_return_address_counts_as_a_hard_bounce(
    relayed: Settings,
    sessions: sessionmaker[Session],
    relay: ScriptedServer,
    migrated_url: str,
    tmp_path: Path,
) -> None:
    """SES puts its own Message-ID on what it sends, so the report quotes none of ours: the return
    address it was forwarded to is what ties it to the digest."""
    subscribe(sessions, "bounce@simulator.amazonses.com")
    assert send(relayed, sessions, NOW).sent == 1
    report = (DATA / "inbound" / "ses_02.eml").read_bytes()
    said = handle(tmp_path, migrated_url, report, relay.senders[-1])
    assert said.startswith("bounced for bounce@simulator.amazonses.com (delivery 1)")
    assert subscriber(sessions, "bounce@simulator.amazonses.com").hard_bounces == 1


def test_a_dmarc_failure_report_is_no_complaint_and_unsubscribes_nobody(
    sessions: sessionmaker[Session], migrated_url: str, tmp_path: Path
) -> None:
    subscribe(sessions, "fake.rcpt@example.com")
    report = (DATA / "inbound" / "arf_dmarc.eml").read_bytes()
    assert handle(tmp_path, migrated_url, report, BOUNCES).startswith("feedback")
    assert subscriber(sessions, "fake.rcpt@example.com").status == "active"


def test_an_unreadable_message_file_is_refused_with_what_to_do(migrated_url: str, tmp_path: Path) -> None:
    result = digest("inbound", "handle", str(tmp_path / "missing.eml"), url=migrated_url)
    assert result.exit_code == 2
    assert "Cannot read" in result.output and "standard input" in result.output
